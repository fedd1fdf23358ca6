"""The HTTP server's edges, through the real app process: malformed signature headers get
401 (never 500, no traceback), idle and half-sent connections cannot take it offline, and
/healthz says whether the database can be used."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e import BOT_TOKEN, AppProcess, app_env, card_posted
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import FORM, SlackSender, sign

IDLE_CONNECTIONS = 300
HALF_SENT_REQUESTS = 100
# Bounds for answers that must come at once; generous, so a loaded machine does not flake.
ANSWER_TIMEOUT_SECONDS = 10


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner() as fake:
        fake.add_subaccount("edge-sub", Decimal("10.000"))
        yield fake


@pytest.fixture(scope="module")
def database_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("edges") / "data"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def app(slack: FakeSlack, smspartner: FakeSMSPartner, database_dir: Path) -> Iterator[AppProcess]:
    env = app_env(
        slack=slack, smspartner=smspartner, database_url=f"sqlite:///{database_dir / 'bot.db'}"
    )
    process = AppProcess(env=env, workdir=database_dir.parent).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sender(app: AppProcess, slack: FakeSlack) -> SlackSender:
    return app.sender(slack)


def raw_request(port: int, head: bytes, body: bytes = b"") -> int:
    """Send bytes as they are (headers no client library would write); the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(head + b"\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def _post_head(*headers: bytes, length: int | None = 0) -> bytes:
    lines = [b"POST /slack/events HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [b"Content-Type: " + FORM.encode()]
    if length is not None:
        lines.append(b"Content-Length: " + str(length).encode())
    lines += headers
    return b"\r\n".join(lines) + b"\r\n"


NOW = str(int(time.time())).encode()
GOOD_HEX = b"0" * 64
MALFORMED = {
    "no signature headers": [],
    "timestamp only": [b"X-Slack-Request-Timestamp: " + NOW],
    "signature only": [b"X-Slack-Signature: v0=" + GOOD_HEX],
    "timestamp abc": [b"X-Slack-Request-Timestamp: abc", b"X-Slack-Signature: v0=" + GOOD_HEX],
    "timestamp 1.5": [b"X-Slack-Request-Timestamp: 1.5", b"X-Slack-Signature: v0=" + GOOD_HEX],
    "timestamp of 5000 digits": [
        b"X-Slack-Request-Timestamp: " + b"9" * 5000,
        b"X-Slack-Signature: v0=" + GOOD_HEX,
    ],
    "negative timestamp": [b"X-Slack-Request-Timestamp: -1", b"X-Slack-Signature: v0=" + GOOD_HEX],
    "non-ASCII signature": [
        b"X-Slack-Request-Timestamp: " + NOW,
        b"X-Slack-Signature: v0=" + "é".encode("latin-1") * 64,
    ],
    "UTF-8 signature": [
        b"X-Slack-Request-Timestamp: " + NOW,
        b"X-Slack-Signature: v0=" + "€".encode() * 20,
    ],
    "signature too short": [b"X-Slack-Request-Timestamp: " + NOW, b"X-Slack-Signature: v0=ab"],
    "signature of another version": [
        b"X-Slack-Request-Timestamp: " + NOW,
        b"X-Slack-Signature: v1=" + GOOD_HEX,
    ],
    "two signatures": [
        b"X-Slack-Request-Timestamp: " + NOW,
        b"X-Slack-Signature: v0=" + GOOD_HEX,
        b"X-Slack-Signature: v0=" + GOOD_HEX,
    ],
    "empty headers": [b"X-Slack-Request-Timestamp: ", b"X-Slack-Signature: "],
}


@pytest.mark.parametrize("headers", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_signature_headers_get_401(app: AppProcess, headers: list[bytes]) -> None:
    """Each malformed or missing signature header: 401 for an empty and for a form body."""
    start = len(app.logs())
    assert raw_request(app.port, _post_head(*headers)) == 401
    body = b"command=%2Fcredit&text=add+edge-sub+1"
    assert raw_request(app.port, _post_head(*headers, length=len(body)), body) == 401
    _assert_no_traceback(app.logs()[start:])


def test_unsigned_chunked_body_gets_401(app: AppProcess) -> None:
    """A chunked body with no signature (Slack never sends one): 401, no traceback."""
    start = len(app.logs())
    head = _post_head(b"Transfer-Encoding: chunked", length=None)
    assert raw_request(app.port, head, b"5\r\nhello\r\n0\r\n\r\n") == 401
    assert raw_request(app.port, head, b"0\r\n\r\n") == 401
    _assert_no_traceback(app.logs()[start:])


def test_chunked_body_signed_right_is_served(
    app: AppProcess, sender: SlackSender, slack: FakeSlack
) -> None:
    """The body check reads chunked bodies whole: a correctly signed chunked command works."""
    body = urlencode(sender.command_fields("add edge-sub 2", user_id="UREQ")).encode()
    already = _cards(slack)
    timestamp = int(time.time())
    head = _post_head(
        b"Transfer-Encoding: chunked",
        b"X-Slack-Request-Timestamp: " + str(timestamp).encode(),
        b"X-Slack-Signature: " + sign(sender.signing_secret, timestamp, body).encode(),
        length=None,
    )
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    assert raw_request(app.port, head, chunked) == 200
    card_posted(slack, "edge-sub", already)


def _cards(slack: FakeSlack) -> int:
    return len([c for c in slack.calls_to("chat.postMessage") if "edge-sub" in str(c.args)])


HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(timestamp=HEADER_TEXT, signature=HEADER_TEXT)
def test_any_header_text_gets_401(app: AppProcess, timestamp: str, signature: str) -> None:
    """Fuzzed header values (latin-1, as HTTP allows): always 401, never 500."""
    head = _post_head(
        b"X-Slack-Request-Timestamp: " + timestamp.strip().encode("latin-1"),
        b"X-Slack-Signature: " + signature.strip().encode("latin-1"),
    )
    assert raw_request(app.port, head) == 401


def test_fuzzing_left_no_traceback(app: AppProcess) -> None:
    """After everything above, the log holds no error and no traceback."""
    _assert_no_traceback(app.logs())


def _assert_no_traceback(log: str) -> None:
    assert "Traceback" not in log
    records = [json.loads(line) for line in log.split("\n") if line.startswith("{")]
    assert not [r for r in records if r["level"] == "error"]


# -- idle and slow connections -----------------------------------------------------------------


def test_hundreds_of_idle_connections_do_not_take_the_bot_offline(
    app: AppProcess, sender: SlackSender, slack: FakeSlack
) -> None:
    """300 idle connections and 100 half-sent requests open: /healthz and a signed command are
    still answered."""
    with ExitStack() as held:
        for _ in range(IDLE_CONNECTIONS):
            held.enter_context(socket.create_connection(("127.0.0.1", app.port)))
        for _ in range(HALF_SENT_REQUESTS):
            sock = held.enter_context(socket.create_connection(("127.0.0.1", app.port)))
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        health = requests.get(f"{app.base_url}/healthz", timeout=ANSWER_TIMEOUT_SECONDS)
        assert health.status_code == 200
        already = _cards(slack)
        assert sender.command("add edge-sub 1", user_id="UREQ").status_code == 200
        card_posted(slack, "edge-sub", already)


def test_idle_connection_is_closed_by_the_server(app: AppProcess) -> None:
    """A connection that sends nothing is closed by the server (after its channel timeout)."""
    with socket.create_connection(("127.0.0.1", app.port)) as sock:
        sock.settimeout(60)
        assert sock.recv(1) == b""


# -- /healthz and the database -----------------------------------------------------------------


def _wait_health(app: AppProcess, status: int) -> None:
    deadline = time.monotonic() + 30
    while app.health() != status:
        assert time.monotonic() < deadline, f"/healthz never answered {status}"
        time.sleep(0.1)


def test_healthz_is_503_while_the_database_folder_is_gone(
    app: AppProcess, database_dir: Path
) -> None:
    """The SQLite folder moved away: 503; back in place: 200 again."""
    assert app.health() == 200
    away = database_dir.with_name("moved")
    database_dir.rename(away)
    try:
        _wait_health(app, 503)
    finally:
        away.rename(database_dir)
    _wait_health(app, 200)


def test_healthz_is_503_once_the_database_file_is_deleted(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path
) -> None:
    """The SQLite file deleted under the bot: 503, and no new empty file appears in its place."""
    folder = tmp_path / "data"
    folder.mkdir()
    env = app_env(slack=slack, smspartner=smspartner, database_url=f"sqlite:///{folder / 'bot.db'}")
    process = AppProcess(env=env, workdir=tmp_path).start()
    try:
        shutil.rmtree(folder)
        _wait_health(process, 503)
        folder.mkdir()
        _wait_health(process, 503)
        assert not (folder / "bot.db").exists()
    finally:
        process.stop()
