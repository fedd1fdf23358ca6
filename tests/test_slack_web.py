"""bot/slack/web.py against a loopback FakeSlack over HTTPS (a throwaway CA from trustme).

These tests also pin the slack_sdk extension point the pooled client rests on (its typed
methods end in `WebClient.api_call` with this signature): if a slack_sdk release moves
it, they fail here instead of the app silently falling back to a connection per call.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError

import pytest
import trustme
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import logs
from bot.slack import web
from bot.slack.web import PooledWebClient, slack_ssl_context, slack_web_client
from tests.fakes.slack import FakeSlack

BOT_TOKEN = "xoxb-web-test-token"
CHANNEL = "CWEB"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def slack(server_context: ssl.SSLContext) -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, ssl_context=server_context) as fake:
        # Slack keeps HTTP/1.1 connections open; the fake's handler speaks HTTP/1.0 (one
        # call per connection) unless told otherwise, before any request has come in.
        assert fake._server is not None
        fake._server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # type: ignore[attr-defined]
        fake._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process trusts the throwaway CA the normal way (SSL_CERT_FILE), and the shared
    context is made afresh under it."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.setattr(web, "_context", None)


@pytest.fixture
def client(slack: FakeSlack, trusted: None) -> Iterator[PooledWebClient]:
    made = slack_web_client(token=BOT_TOKEN, base_url=slack.api_url, timeout=5)
    yield made
    made.pool.clear()


def test_api_call_is_the_extension_point_with_the_signature_we_override() -> None:
    """slack_sdk's WebClient.api_call still takes exactly what PooledWebClient.api_call takes."""
    theirs = inspect.signature(WebClient.api_call).parameters
    ours = inspect.signature(PooledWebClient.api_call).parameters
    assert [(p.name, p.kind, p.default) for p in theirs.values()] == [
        (p.name, p.kind, p.default) for p in ours.values()
    ]


def test_typed_calls_share_one_tls_connection(
    client: PooledWebClient, slack: FakeSlack, server_context: ssl.SSLContext
) -> None:
    """auth.test, postMessage, update and postEphemeral: one handshake for all, on both ends,
    and Slack receives each call as sent (bearer token, JSON blocks, form fields)."""
    assert client.auth_test()["user_id"] == slack.bot_user_id
    posted = client.chat_postMessage(
        channel=CHANNEL, text="card", blocks=[{"type": "section", "text": {"type": "mrkdwn"}}]
    )
    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="updated", blocks=[])
    client.chat_postEphemeral(channel=CHANNEL, user="UREQ", text="note")

    assert [call.method for call in slack.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
    ]
    assert {call.token for call in slack.calls} == {BOT_TOKEN}
    assert slack.calls[1].args["blocks"][0]["type"] == "section"
    assert slack.messages[(CHANNEL, posted["ts"])]["text"] == "updated"
    assert server_context.session_stats()["accept_good"] == 1
    assert client.ssl.session_stats()["connect_good"] == 1


def test_a_connection_idle_too_long_is_replaced_before_reuse(
    client: PooledWebClient,
    slack: FakeSlack,
    server_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MAX_IDLE_SECONDS (0 here) a kept connection is not reused: no call races the
    server closing it, and each call still arrives once."""
    monkeypatch.setattr(web, "MAX_IDLE_SECONDS", 0.0)
    for _ in range(3):
        client.chat_postMessage(channel=CHANNEL, text="card")
    assert len(slack.calls_to("chat.postMessage")) == 3
    assert server_context.session_stats()["accept_good"] == 3


def test_one_ssl_context_for_the_process_and_none_made_per_call(
    client: PooledWebClient, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every client and webhook client gets the shared context; calls make no new one."""
    other = slack_web_client(token=BOT_TOKEN, base_url=slack.api_url, timeout=5)
    webhook = web.slack_webhook_client(slack.response_url(), timeout=5)
    assert client.ssl is slack_ssl_context() is other.ssl is webhook.ssl

    made: list[object] = []
    original_new = ssl.SSLContext.__new__

    def counting_new(cls: type[ssl.SSLContext], *args: object, **kwargs: object) -> object:
        made.append(cls)
        return original_new(cls, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting_new)
    for _ in range(3):
        client.chat_postMessage(channel=CHANNEL, text="card")
    assert made == []
    other.pool.clear()


def test_many_threads_call_at_once_on_few_connections(
    client: PooledWebClient, slack: FakeSlack, server_context: ssl.SSLContext
) -> None:
    """8 threads x 5 posts: every post arrives once, on at most one connection per thread."""
    threads_count, posts_each = 8, 5
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def poster(n: int) -> None:
        start.wait()
        try:
            for i in range(posts_each):
                client.chat_postMessage(channel=CHANNEL, text=f"t{n}-{i}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    texts = sorted(call.args["text"] for call in slack.calls_to("chat.postMessage"))
    assert texts == sorted(f"t{n}-{i}" for n in range(threads_count) for i in range(posts_each))
    assert server_context.session_stats()["accept_good"] <= threads_count


def test_slack_errors_raise_slack_api_error_with_the_code(
    client: PooledWebClient, slack: FakeSlack
) -> None:
    """An `ok: false` answer raises SlackApiError carrying Slack's error code, as slack_sdk does."""
    slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=CHANNEL, text="card")
    assert raised.value.response["error"] == "not_in_channel"


class OneShotServer:
    """Plain-HTTP loopback server: each connection gets one request, then is closed, after
    an answer (`answer=True`) or without one, like a connection reset mid-call; or, with
    `then`, held open (an answer never coming, or bytes sent on an idle connection)."""

    def __init__(
        self,
        *,
        answer: bool,
        drop_first: int = 0,
        then: bytes | None = None,
        status: bytes = b"200 OK",
    ) -> None:
        self.answer = answer
        self.status = status  # the answer's status line after the version, headers may follow
        self.drop_first = drop_first  # connections closed unanswered before answering
        # Sent after the answer (or instead of one) once the test says so (`send_then`), and
        # the connection then held open until the client closes it; what the client sends
        # meanwhile is counted.
        self.then = then
        self.received_after = 0
        self._then_now = threading.Event()
        self._then_sent = threading.Event()
        self.requests = 0
        self.closed = 0
        self._changed = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/api/"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                _read_request(conn)
                self.requests += 1
                if self.answer and self.requests > self.drop_first:
                    body = b'{"ok": true, "ts": "1.000001", "channel": "CWEB"}'
                    conn.sendall(
                        b"HTTP/1.1 " + self.status + b"\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                    )
                if self.then is not None:
                    self._hold(conn)
            with self._changed:
                self.closed += 1
                self._changed.notify_all()

    def _hold(self, conn: socket.socket) -> None:
        assert self.then is not None
        if not self._then_now.wait(timeout=5):
            return
        conn.sendall(self.then)
        self._then_sent.set()
        conn.settimeout(5)  # a client that never closes must not hang the server
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                self.received_after += len(chunk)

    def send_then(self) -> None:
        """Send `then` on the held connection, and return once it is sent."""
        self._then_now.set()
        assert self._then_sent.wait(timeout=5)

    def wait_closed(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.closed >= count, timeout=5)

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close alone does not
        self._listener.close()
        self._thread.join()


def _read_request(conn: socket.socket) -> bytes:
    """One request, headers and body (its Content-Length), however the client split it."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += conn.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_reset_call_is_never_sent_again() -> None:
    """The connection drops before Slack answers: the call raises URLError, sent once."""
    server = OneShotServer(answer=False)
    client = slack_web_client(token=BOT_TOKEN, base_url=server.api_url, timeout=5)
    try:
        with pytest.raises(URLError):
            client.chat_postMessage(channel=CHANNEL, text="card")
        assert server.requests == 1
        assert client.retry_handlers == []
    finally:
        client.pool.clear()
        server.close()


def test_a_connection_the_server_closed_is_replaced_not_reused() -> None:
    """Slack closing an idle kept-alive connection costs the next call a new connection,
    not an error, and each call is sent once."""
    server = OneShotServer(answer=True)
    client = slack_web_client(token=BOT_TOKEN, base_url=server.api_url, timeout=5)
    try:
        for sent in range(1, 4):
            assert client.chat_postMessage(channel=CHANNEL, text="card")["ok"]
            server.wait_closed(sent)  # the pooled connection is now a closed one
        assert server.requests == 3
    finally:
        client.pool.clear()
        server.close()


def test_a_connection_the_server_wrote_on_unasked_is_replaced_not_reused() -> None:
    """Bytes on an idle connection (not an answer to anything we sent) make it unusable: the
    next call goes on a new connection, and nothing more is sent on the old one."""
    server = OneShotServer(answer=True, then=b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    client = slack_web_client(token=BOT_TOKEN, base_url=server.api_url, timeout=5)
    try:
        assert client.chat_postMessage(channel=CHANNEL, text="card")["ok"]
        server.send_then()
        assert client.chat_postMessage(channel=CHANNEL, text="card")["ok"]
        server.wait_closed(1)
        assert server.requests == 2
        assert server.received_after == 0
    finally:
        client.pool.clear()
        server.close()


def test_an_answer_that_never_comes_times_out_and_is_not_sent_again() -> None:
    """The call's timeout bounds each read: no answer raises URLError (a timeout), once."""
    server = OneShotServer(answer=False, then=b"")
    client = slack_web_client(token=BOT_TOKEN, base_url=server.api_url, timeout=1)
    try:
        with pytest.raises(URLError) as raised:
            client.chat_postMessage(channel=CHANNEL, text="card")
        assert isinstance(raised.value.reason, TimeoutError)
        server.send_then()
        server.wait_closed(1)
        assert server.requests == 1
        assert server.received_after == 0
    finally:
        client.pool.clear()
        server.close()


def test_http_1_0_answers_are_not_kept_alive(trusted: None, server_context: ssl.SSLContext) -> None:
    """Slack's fake as tests run it (HTTP/1.0: the server closes after each answer): every
    call gets its own connection, none is kept to fail the next call."""
    with FakeSlack(bot_token=BOT_TOKEN, ssl_context=server_context) as fake:
        client = slack_web_client(token=BOT_TOKEN, base_url=fake.api_url, timeout=5)
        for _ in range(3):
            client.chat_postMessage(channel=CHANNEL, text="card")
        assert len(fake.calls_to("chat.postMessage")) == 3
        assert server_context.session_stats()["accept_good"] == 3
        assert not any(client.pool._idle.values())  # nothing kept to be tried next time


def test_a_redirect_is_an_answer_not_followed() -> None:
    """A 3xx is not followed (that would send the call again elsewhere): Slack's error
    handling sees a non-JSON answer, and the call was sent once."""
    server = OneShotServer(
        answer=True, status=b"302 Found\r\nLocation: http://127.0.0.1:9/api/chat.postMessage"
    )
    client = slack_web_client(token=BOT_TOKEN, base_url=server.api_url, timeout=5)
    try:
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel=CHANNEL, text="card")
        assert raised.value.response.status_code == 302
        assert server.requests == 1
    finally:
        client.pool.clear()
        server.close()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quieted = {name: logging.getLogger(name).level for name in logs.QUIETED_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quieted.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.parametrize(("level", "expected"), [("INFO", "WARNING"), ("DEBUG", "DEBUG")])
def test_slack_library_loggers_get_a_level(
    restored_logging: None, level: str, expected: str
) -> None:
    """slack_sdk and Bolt test `logger.level <= DEBUG` (unset counts) before building debug
    strings: configure_logging sets WARNING on them, or DEBUG when asked for."""
    logs.configure_logging(secrets=[], level=level)
    for name in logs.QUIETED_LOGGERS:
        assert logging.getLevelName(logging.getLogger(name).level) == expected
    made_later = WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/")
    assert logging.getLevelName(made_later.logger.level) == expected


def test_a_response_url_note_is_tried_once_more_after_a_dropped_connection() -> None:
    """An ephemeral note (or a replace_original) is the same read twice, so unlike a card
    post it is tried once more when the connection drops: the click still gets its answer."""
    server = OneShotServer(answer=True, drop_first=1)
    url = server.api_url + "response/note"
    try:
        response = web.slack_webhook_client(url, timeout=5).send_dict(
            {"response_type": "ephemeral", "replace_original": False, "text": "note"}
        )
        assert response.status_code == 200
        assert server.requests == 2
    finally:
        server.close()
