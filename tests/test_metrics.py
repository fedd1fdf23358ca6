"""Prometheus metrics: requests by state read from the database at scrape time, SMS Partner
calls counted and timed from the client's observer, served at GET /metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.domain import Action
from bot.metrics import Metrics
from bot.store import Store
from tests.e2e import BOT_TOKEN, AppProcess, app_env, free_port
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.fakes.socket_mode import FakeSocketMode


@dataclass(frozen=True)
class Call:
    operation: str
    outcome: str
    code: int | None
    seconds: float


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels (the format is parsed
    by prometheus_client's own parser, so a malformed line fails here)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.migrate()
    yield store
    store.close()


def _metrics(store: Store) -> Metrics:
    metrics = Metrics()
    metrics.count_requests_in(store.engine)
    return metrics


def _request(store: Store) -> str:
    return store.create(
        action=Action.ADD,
        subaccount_token="sub-metrics",
        amount=Decimal("3.00"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=60,
    ).id


def test_requests_by_state_come_from_the_database(store: Store) -> None:
    """Two pending, one being sent, one cancelled, one failed: what any replica reports."""
    _request(store)
    _request(store)
    store.claim(request_id=_request(store), approver_id="UAPP", executor="h/1/x")
    store.cancel(request_id=_request(store), canceller_id="UREQ")
    failed = _request(store)
    store.claim(request_id=failed, approver_id="UAPP", executor="h/1/x")
    store.record_failure(request_id=failed, error_code=8, error_message="Insufficient credit")

    found = samples(_metrics(store).exposition().decode())
    assert found[("credit_bot_requests_pending", ())] == 2
    assert found[("credit_bot_requests_executing", ())] == 1
    assert found[("credit_bot_requests_finished_total", (("state", "cancelled"),))] == 1
    assert found[("credit_bot_requests_finished_total", (("state", "failed"),))] == 1
    assert found[("credit_bot_requests_finished_total", (("state", "succeeded"),))] == 0
    assert found[("credit_bot_database_up", ())] == 1


def test_calls_are_counted_by_operation_outcome_and_code(store: Store) -> None:
    """The observer's records: a counter per (operation, outcome, code), a latency histogram."""
    metrics = _metrics(store)
    metrics.observe_call(Call("add", "ok", None, 0.2))
    metrics.observe_call(Call("add", "ok", None, 0.3))
    metrics.observe_call(Call("remove", "refused", 8, 0.1))
    metrics.observe_call(Call("add", "unknown", None, 10.0))
    found = samples(metrics.exposition().decode())
    calls = "credit_bot_smspartner_calls_total"
    assert found[(calls, (("code", ""), ("operation", "add"), ("outcome", "ok")))] == 2
    assert found[(calls, (("code", "8"), ("operation", "remove"), ("outcome", "refused")))] == 1
    assert found[(calls, (("code", ""), ("operation", "add"), ("outcome", "unknown")))] == 1
    latency = "credit_bot_smspartner_call_seconds"
    assert found[(f"{latency}_count", (("operation", "add"),))] == 3
    assert found[(f"{latency}_bucket", (("le", "0.5"), ("operation", "add")))] == 2
    assert found[(f"{latency}_sum", (("operation", "add"),))] == pytest.approx(10.5)


def test_a_database_away_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    """Scraping while the database is gone answers, with credit_bot_database_up 0."""
    path = tmp_path / "gone.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    metrics = _metrics(store)
    for leftover in tmp_path.glob("gone.db*"):
        leftover.unlink()
    try:
        found = samples(metrics.exposition().decode())
    finally:
        store.close()
    assert found[("credit_bot_database_up", ())] == 0
    assert ("credit_bot_requests_pending", ()) not in found


def test_http_mode_serves_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    """`run --http --metrics-port P`: GET /metrics on P in Prometheus's text format."""
    metrics_port = free_port()
    with FakeSlack(bot_token=BOT_TOKEN) as slack, FakeSMSPartner() as smspartner:
        env = app_env(
            slack=slack, smspartner=smspartner, database_url=f"sqlite:///{tmp_path / 'm.db'}"
        )
        # `--metrics-port` is one of `run`'s flags: append it to AppProcess's command line.
        with_metrics = ("sh", "-c", f'exec "$@" --metrics-port {metrics_port}', "sh")
        app = AppProcess(env=env, workdir=tmp_path, command_prefix=with_metrics).start()
        try:
            answer = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        finally:
            app.stop()
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    found = samples(answer.text)
    assert found[("credit_bot_requests_pending", ())] == 0
    assert found[("credit_bot_database_up", ())] == 1


def test_socket_mode_serves_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    """`run --metrics-port P` in Socket Mode: the same /metrics."""
    app_token = "xapp-1-metrics-socket-mode-token"
    metrics_port = free_port()
    with (
        FakeSocketMode() as socket_mode,
        FakeSlack(bot_token=BOT_TOKEN, app_token=app_token) as slack,
        FakeSMSPartner() as smspartner,
    ):
        slack.socket_mode_url = socket_mode.url
        env = app_env(
            slack=slack,
            smspartner=smspartner,
            database_url=f"sqlite:///{tmp_path / 's.db'}",
            SLACK_APP_TOKEN=app_token,
        )
        with (tmp_path / "app.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    "--host",
                    "127.0.0.1",
                    "--metrics-port",
                    str(metrics_port),
                ],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            answer = _get_when_up(f"http://127.0.0.1:{metrics_port}/metrics", process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert answer.status_code == 200
    assert samples(answer.text)[("credit_bot_requests_pending", ())] == 0


def _get_when_up(url: str, process: subprocess.Popen[bytes]) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, "the bot exited"
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"nothing at {url}"
            time.sleep(0.05)
