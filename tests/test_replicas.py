"""End to end, issue 4: several replicas on one database, crash recovery, cards that close
themselves, graceful stop, and an upgrade of an old database at start.

Every app here is the real CLI (`python -m bot run --http`) in its own process, against
loopback fakes of Slack and SMS Partner. Replicas share PostgreSQL (`postgres_url`); what
one process can show on its own runs on SQLite as well (`database_url`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import bindparam, text

from bot.domain import Action, CreditRequest, Status
from bot.flow.policy import Policy
from bot.flow.transfers import CRASH_MARGIN_SECONDS, SEND_DEADLINE_SECONDS, Transfers
from bot.server import DRAIN_MARGIN_SECONDS
from bot.slack.blocks import CONFIRM_ACTION_ID, build_confirmation
from bot.smspartner.client import SMSPartnerClient
from bot.store import Store, schema
from bot.store.schema import UTCDateTime
from bot.texts import Texts
from tests.e2e import (
    API_KEY,
    BOT_TOKEN,
    AppProcess,
    app_env,
    card_now,
    cards_about,
    ephemeral_to,
    open_request,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner

CLICKS = 40
SWEEP_INTERVAL = 0.2
# Long enough that no client timeout ends a held transfer while a test looks at it.
PATIENT_TIMEOUT = "10"
# A new pid namespace with its own /proc; the app dies with `unshare` when that is stopped.
UNSHARE_PID = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")

StartApp = Callable[..., AppProcess]

EN = Texts.for_language("en")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("5000.000")) as fake:
        yield fake


@pytest.fixture
def token(smspartner: FakeSMSPartner) -> str:
    """A fresh sub-account with 100 EUR on it."""
    name = f"sub-{secrets.token_hex(4)}"
    smspartner.add_subaccount(name, Decimal("100.000"))
    return name


@pytest.fixture
def start_app(slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path) -> Iterator[StartApp]:
    """Start app processes on a database; every one still running is stopped afterwards.

    Tests ask for their database fixture before this one: fixtures are torn down in reverse
    order, so the apps stop before their PostgreSQL schema is dropped under them."""
    started: list[AppProcess] = []

    def start(
        database_url: str, *, command_prefix: tuple[str, ...] = (), **overrides: str
    ) -> AppProcess:
        env = app_env(slack=slack, smspartner=smspartner, database_url=database_url, **overrides)
        app = AppProcess(env=env, workdir=tmp_path, command_prefix=command_prefix)
        started.append(app)
        return app.start()

    yield start
    smspartner.reset()  # a held transfer must not hold a stopping app's drain
    for app in started:
        if app.command_prefix:
            app.kill()  # `unshare` does not pass SIGTERM on; killing it kills the app too
        else:
            app.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'credit_bot.db'}"


# -- helpers of our own (the shared ones are in tests/e2e.py) -------------------------------


def _updates_about(slack: FakeSlack, token: str, showing: str = "") -> list[dict[str, Any]]:
    """chat.update calls on the card about `token` (that show `showing`, if given)."""
    return [
        c.args
        for c in slack.calls_to("chat.update")
        if token in json.dumps(c.args) and showing in json.dumps(c.args)
    ]


def _stored(url: str, request_id: str) -> CreditRequest:
    store = Store.from_url(url)
    try:
        request = store.get(request_id)
    finally:
        store.close()
    assert request is not None
    return request


def _wait_for_status(url: str, request_id: str, status: Status, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := _stored(url, request_id).status) is not status:
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} is {now}, wanted {status}")
        time.sleep(0.05)


def _start_together(start_app: StartApp, database_url: str, **overrides: str) -> list[AppProcess]:
    """Two replicas started at once on an empty database: both migrate it, one under the
    other's lock, and both come up."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda _: start_app(database_url, **overrides), range(2)))


def _let_sweeps_run(intervals: int = 5) -> None:
    """Give every replica several sweep passes: the window in which nothing may happen.

    What must not happen cannot be waited on; this only sizes the window, nothing is
    asserted on how long anything took."""
    time.sleep(intervals * SWEEP_INTERVAL)


# -- 1. many clicks, two replicas, one transfer ---------------------------------------------


def test_forty_confirms_across_two_replicas_send_once(
    postgres_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """40 concurrent Confirms split over two replicas on PostgreSQL: one SMS Partner call."""
    first, second = _start_together(start_app, postgres_url)
    senders = [first.sender(slack), second.sender(slack)]
    request_id = open_request(senders[0], slack, f"add {token} 7")
    smspartner.delay_seconds = 0.3  # keep the winner busy while the others arrive
    urls = [slack.response_url(f"race-{token}-{n}") for n in range(CLICKS)]

    def click(n: int) -> int:
        return (
            senders[n % 2]
            .click(
                CONFIRM_ACTION_ID,
                request_id,
                user_id="UAPP" if n % 2 else "UAPP2",
                response_url=urls[n],
            )
            .status_code
        )

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        statuses = list(pool.map(click, range(CLICKS)))

    assert statuses == [200] * CLICKS
    card_now(slack, token, "Added")
    # Generous: two replicas answer 39 clicks; under a loaded CI box that can take seconds.
    slack.wait_for(lambda f: len(ephemeral_to(f, f"race-{token}")) == CLICKS - 1, timeout=30)
    answers = ephemeral_to(slack, f"race-{token}")
    assert all("already" in answer for answer in answers)
    assert len(smspartner.transfers) == 1
    assert len(_updates_about(slack, token, "Added")) == 1
    stored = _stored(postgres_url, request_id)
    assert stored.status is Status.SUCCEEDED
    print(
        f"\n[replicas] clicks sent: {CLICKS} over 2 replicas; SMS Partner calls seen: "
        f"{len(smspartner.transfers)}; 'already' answers: {len(answers)}; "
        f"HTTP 200 answers: {statuses.count(200)}"
    )


# -- 2. cards that close themselves ---------------------------------------------------------


def test_expired_card_closes_itself_once_across_two_replicas(
    postgres_url: str, start_app: StartApp, slack: FakeSlack, token: str
) -> None:
    """TTL over, nobody clicks: one of two replicas replaces the card with Expired, once."""
    overrides = {"CONFIRMATION_TTL_SECONDS": "1", "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL)}
    first, second = _start_together(start_app, postgres_url, **overrides)
    request_id = open_request(first.sender(slack), slack, f"add {token} 5")

    expired = card_now(slack, token, "Expired")
    assert "Nothing moved" in json.dumps(expired)
    _let_sweeps_run()
    assert len(_updates_about(slack, token)) == 1
    assert _stored(postgres_url, request_id).status is Status.EXPIRED
    expirers = [
        app.port
        for app in (first, second)
        for line in app.log_events()
        if line.get("event") == "credit.expired" and line.get("request_id") == request_id
    ]
    assert len(expirers) == 1


def test_expired_card_closes_itself_on_sqlite(
    sqlite_url: str, start_app: StartApp, slack: FakeSlack, token: str
) -> None:
    """One process on SQLite: the sweep replaces an expired card with Expired, once."""
    app = start_app(
        sqlite_url, CONFIRMATION_TTL_SECONDS="1", SWEEP_INTERVAL_SECONDS=str(SWEEP_INTERVAL)
    )
    request_id = open_request(app.sender(slack), slack, f"remove {token} 5")

    card_now(slack, token, "Expired")
    _let_sweeps_run()
    assert len(_updates_about(slack, token)) == 1
    assert _stored(sqlite_url, request_id).status is Status.EXPIRED


# -- 3. crash recovery ------------------------------------------------------------------------


def test_crashed_transfer_becomes_unknown_after_restart(
    database_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """SIGKILL mid-transfer, restart: the request ends unknown, the card says so, no re-send."""
    crashed = start_app(database_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    request_id = open_request(crashed.sender(slack), slack, f"add {token} 12")
    smspartner.hang = True
    crashed.sender(slack).click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)
    card_now(slack, token, "Sending to SMS Partner")
    assert crashed.kill() == -signal.SIGKILL
    assert _stored(database_url, request_id).status is Status.EXECUTING

    restarted_at = time.monotonic()
    start_app(database_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    shown = json.dumps(card_now(slack, token, "Outcome unknown"))
    recovered_in = time.monotonic() - restarted_at

    assert "may or may not have happened" in shown
    assert len(_updates_about(slack, token, "Outcome unknown")) == 1
    stored = _stored(database_url, request_id)
    assert stored.status is Status.UNKNOWN
    smspartner.release()
    assert len(smspartner.transfers) == 1
    backend = database_url.split(":", 1)[0]
    print(f"\n[recovery] {backend}: restart to 'Outcome unknown' card: {recovered_in:.2f} s")


def test_live_replica_transfer_is_not_taken_for_crashed(
    postgres_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """A replica starting while another's transfer hangs leaves it executing; it then succeeds."""
    busy = start_app(postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    request_id = open_request(busy.sender(slack), slack, f"add {token} 9")
    smspartner.hang = True
    busy.sender(slack).click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)
    _wait_for_status(postgres_url, request_id, Status.EXECUTING)

    # start() returns once the newcomer's start-up sweep (the crash recovery) is done.
    newcomer = start_app(postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    _let_sweeps_run()
    assert _stored(postgres_url, request_id).status is Status.EXECUTING
    assert not any(e.get("event") == "credit.recovered_unknown" for e in newcomer.log_events())

    smspartner.release()
    card_now(slack, token, "Added")
    assert _stored(postgres_url, request_id).status is Status.SUCCEEDED
    assert len(smspartner.transfers) == 1


def test_dead_replica_transfer_is_recovered_by_a_live_one(
    postgres_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """Replica A dies mid-transfer: live replica B's sweep ends it unknown, with no restart."""
    doomed = start_app(postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    survivor = start_app(postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    request_id = open_request(doomed.sender(slack), slack, f"add {token} 11")
    smspartner.hang = True
    doomed.sender(slack).click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)
    card_now(slack, token, "Sending to SMS Partner")

    killed_at = time.monotonic()
    doomed.kill()
    card_now(slack, token, "Outcome unknown")
    recovered_in = time.monotonic() - killed_at

    assert _stored(postgres_url, request_id).status is Status.UNKNOWN
    assert any(
        e.get("event") == "credit.recovered_unknown" and e.get("request_id") == request_id
        for e in survivor.log_events()
    )
    smspartner.release()
    assert len(smspartner.transfers) == 1
    print(f"\n[recovery] live replica: kill to 'Outcome unknown' card: {recovered_in:.2f} s")


def _can_unshare_pid() -> bool:
    try:
        probe = subprocess.run([*UNSHARE_PID, "true"], check=False, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def test_replica_in_another_pid_namespace_leaves_a_live_transfer_alone(
    postgres_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    tmp_path: Path,
) -> None:
    """Same host name, other pid namespace (containers on host networking): no false crash."""
    if not _can_unshare_pid():
        pytest.skip("needs `unshare --pid` (root or user namespaces) to make a pid namespace")
    busy = start_app(postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    request_id = open_request(busy.sender(slack), slack, f"add {token} 8")
    smspartner.hang = True
    busy.sender(slack).click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)
    _wait_for_status(postgres_url, request_id, Status.EXECUTING)

    # Its own pids, where the busy replica's pid is nobody's (or, in a container, its own 1).
    contained = start_app(
        postgres_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT, command_prefix=UNSHARE_PID
    )
    _let_sweeps_run()
    assert _stored(postgres_url, request_id).status is Status.EXECUTING
    assert not any(e.get("event") == "credit.recovered_unknown" for e in contained.log_events())

    smspartner.release()
    card_now(slack, token, "Added")
    assert _stored(postgres_url, request_id).status is Status.SUCCEEDED


@pytest.mark.parametrize(
    "executor",
    [
        "elsewhere:4026531836/4242/0a0b0c0d",
        # A sibling container on host networking: our host name, its own pids, the same
        # pid as ours (both are often 1), so neither "restarted" nor "pid gone" may apply.
        f"{socket.gethostname()}:1/{os.getpid()}/0a0b0c0d",
    ],
    ids=["other-host", "this-host-name-other-pid-namespace"],
)
def test_unreachable_executor_is_crashed_only_past_timeout_plus_margin(
    database_url: str, executor: str
) -> None:
    """A transfer whose owner cannot be checked is left alone until no live call could last."""
    store = Store.from_url(database_url)
    store.migrate()
    transfers = Transfers(
        store=store,
        client=SMSPartnerClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v1"),
        policy=Policy(approvers=frozenset({"UAPP"})),
        ttl_seconds=900,
        api_timeout_seconds=10,
    )
    request = store.create(
        action=Action.ADD,
        subaccount_token="sub-1",
        amount=Decimal("5"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=900,
    )
    claimed = store.claim(request_id=request.id, approver_id="UAPP", executor=executor)
    assert claimed is not None and claimed.executing_at is not None
    claimed_at = claimed.executing_at

    def claimed_ago(seconds: float) -> None:
        """Move the claim back in time, as the database's clock would see it later."""
        with store.engine.begin() as conn:
            conn.execute(
                schema.credit_requests.update()
                .where(schema.credit_requests.c.id == request.id)
                .values(executing_at=claimed_at - dt.timedelta(seconds=seconds))
            )

    longest_live_call = SEND_DEADLINE_SECONDS + 10 + CRASH_MARGIN_SECONDS
    assert transfers.crash_after_seconds == longest_live_call
    try:
        claimed_ago(longest_live_call - 2)
        assert transfers.recover_crashed() == []
        claimed_ago(longest_live_call + 2)
        recovered = transfers.recover_crashed()
        assert [r.id for r in recovered] == [request.id]
        assert recovered[0].status is Status.UNKNOWN
        assert "could not be recorded within" in (recovered[0].error_message or "")
    finally:
        store.close()


# -- 4. graceful stop -------------------------------------------------------------------------


def test_sigterm_drains_the_transfer_in_flight_then_exits(
    database_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """SIGTERM mid-transfer: 503 to health checks and new requests, the transfer ends, exit 0."""
    app = start_app(database_url, SMSPARTNER_TIMEOUT_SECONDS=PATIENT_TIMEOUT)
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"remove {token} 30")
    smspartner.hang = True
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP2")
    smspartner.wait_for_transfers(1)

    signalled_at = time.monotonic()
    app.signal(signal.SIGTERM)
    deadline = signalled_at + 10
    while app.health() != 503:
        assert time.monotonic() < deadline, "/healthz never answered 503 while draining"
        time.sleep(0.02)
    refused = sender.command(f"add {token} 1")
    assert refused.status_code == 503
    assert _stored(database_url, request_id).status is Status.EXECUTING

    released_at = time.monotonic()
    smspartner.release()
    card_now(slack, token, "Removed")
    drain_limit = float(PATIENT_TIMEOUT) + DRAIN_MARGIN_SECONDS
    assert app.wait(timeout=drain_limit + 5) == 0
    exited_at = time.monotonic()
    assert _stored(database_url, request_id).status is Status.SUCCEEDED
    assert len(smspartner.transfers) == 1
    assert len(cards_about(slack, token)) == 1  # the refused command posted nothing
    backend = database_url.split(":", 1)[0]
    print(
        f"\n[drain] {backend}: SIGTERM to exit {exited_at - signalled_at:.2f} s "
        f"(transfer released after {released_at - signalled_at:.2f} s; "
        f"release to exit {exited_at - released_at:.2f} s; limit {drain_limit:.0f} s)"
    )


# -- 5. an old database, upgraded at start ----------------------------------------------------


def test_app_upgrades_a_version_1_database_and_serves_its_pending_request(
    database_url: str, start_app: StartApp, slack: FakeSlack, token: str
) -> None:
    """A schema-1 database with a pending request: the app upgrades it, a Confirm then works."""
    request_id = "cr_old_pending_e2e_0001"
    now = dt.datetime.now(dt.UTC)
    old = CreditRequest(
        id=request_id,
        action=Action.ADD,
        subaccount_token=token,
        amount=Decimal("12.34"),
        currency="EUR",
        status=Status.PENDING,
        requester_id="UREQ",
        channel_id="CFIN",
        created_at=now,
        expires_at=now + dt.timedelta(hours=1),
    )
    # The card the old version posted, so that the new one has a message to replace.
    posted = requests.post(
        f"{slack.api_url}chat.postMessage",
        json={"channel": "CFIN", **build_confirmation(old, texts=EN)},
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        timeout=5,
    ).json()
    assert posted["ok"]

    store = Store.from_url(database_url)
    with store.engine.begin() as conn:
        schema.migrate(conn, target=1)
        conn.execute(
            text(
                "INSERT INTO credit_requests (id, action, subaccount_token, amount, currency,"
                " status, requester_id, channel_id, message_ts, created_at, expires_at)"
                " VALUES (:id, 'add', :token, '12.34', 'EUR', 'pending', 'UREQ', 'CFIN',"
                " :ts, :created, :expires)"
            ).bindparams(
                bindparam("created", type_=UTCDateTime()),
                bindparam("expires", type_=UTCDateTime()),
            ),
            {
                "id": request_id,
                "token": token,
                "ts": posted["ts"],
                "created": old.created_at,
                "expires": old.expires_at,
            },
        )
    assert store.schema_version() == 1
    store.close()

    app = start_app(database_url)
    assert _stored(database_url, request_id).status is Status.PENDING
    url = slack.response_url(f"old-{token}")
    click = app.sender(slack).click(
        CONFIRM_ACTION_ID, request_id, user_id="UAPP", message_ts=posted["ts"], response_url=url
    )
    assert click.status_code == 200
    shown = json.dumps(card_now(slack, token, "Added"))
    assert "112.340 EUR" in shown
    stored = _stored(database_url, request_id)
    assert stored.status is Status.SUCCEEDED
    assert stored.subaccount_balance == Decimal("112.340")
    check = Store.from_url(database_url)
    assert check.schema_version() == schema.LATEST_VERSION
    check.close()
    assert ephemeral_to(slack, f"old-{token}") == []
