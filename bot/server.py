"""HTTP mode: Slack's requests at POST /slack/events, GET /healthz, on waitress.

waitress is a production WSGI server (threaded, no development-server queueing). On
SIGTERM or SIGINT the app drains: /healthz answers 503 so a load balancer stops sending,
new Slack requests get 503, transfers in flight finish and record their outcome, then
the process exits.
"""

from __future__ import annotations

import _thread
import json
import logging
import re
import resource
import signal
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from bot.health import DatabaseHealth
from bot.logs import log_event
from bot.slack.app import Bot

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# A call lasts at most its connect timeout (3.05 s) plus the read timeout; this covers the
# connect part and recording the outcome.
DRAIN_MARGIN_SECONDS = 5.0

# Slack's headers, exactly: anything else is not Slack and gets 401 before any parsing
# (int() of a 5,000-digit timestamp raises; compare_digest raises on non-ASCII text).
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)

# Idle and half-sent connections cost waitress a socket each, no thread: allow many, and
# close them soon. Slack sends a whole request at once, so 10 s of silence is not Slack.
CONNECTION_LIMIT = 2000
CHANNEL_TIMEOUT_SECONDS = 10
CLEANUP_INTERVAL_SECONDS = 2
LISTEN_BACKLOG = 2048
# Each connection is a file descriptor; poll() has no FD_SETSIZE (1024) ceiling as select() has.
OPEN_FILES_WANTED = CONNECTION_LIMIT + 512

StartResponse = Any


class SlackHttpApp:
    """The WSGI application: routes two paths, refuses everything while draining."""

    def __init__(self, bot: Bot, health: DatabaseHealth | None = None) -> None:
        self.bot = bot
        self.verifier = SignatureVerifier(bot.settings.slack_signing_secret.reveal())
        self.health = health or DatabaseHealth(bot.store.engine)
        self.draining = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            if self.draining.is_set():
                return _json(start_response, "503 Service Unavailable", {"status": "draining"})
            if not self.health.healthy():
                # Every command and click would fail: send Slack's traffic to another replica.
                return _json(
                    start_response, "503 Service Unavailable", {"status": "database unavailable"}
                )
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == EVENTS_PATH:
            if method != "POST":
                return _json(start_response, "405 Method Not Allowed", {"error": "POST only"})
            if self.draining.is_set():
                return _json(start_response, "503 Service Unavailable", {"error": "draining"})
            return self._slack(environ, start_response)
        return _json(start_response, "404 Not Found", {"error": "not found"})

    def _slack(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Bolt's WSGI handler, minus what it does before checking anything: Bolt parses
        and indexes the body before the signature is verified, and raises (a 500 with a
        traceback) on bodies Slack never sends. The signature is checked here, once: the
        app's Bolt does not check it again (bot.slack.app)."""
        http = WsgiHttpRequest(environ)
        raw = _body(environ)
        headers = http.get_headers()
        if not self._signed(raw, headers):
            # Wrong signing secret, or a clock off by over 5 minutes (README, Troubleshooting).
            log_event(logger, "http.invalid_signature", level=logging.WARNING)
            return _json(start_response, "401 Unauthorized", {"error": "invalid signature"})
        request = _bolt_request(raw, http.query_string, headers)
        if request is None:
            return _json(start_response, "400 Bad Request", {"error": "not a Slack request"})
        # Background work waits while Slack waits for an answer (bot.slack.scheduling).
        with self.bot.priorities.acks.answering():
            answer = self.bot.app.dispatch(request)
        response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

    def _signed(self, raw: bytes, headers: dict[str, Any]) -> bool:
        timestamp = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
            return False
        try:
            return bool(self.verifier.is_valid(raw, timestamp, signature))
        except UnicodeDecodeError:
            return False  # slack_sdk decodes the body first; Slack's bodies are UTF-8


def _header(headers: dict[str, Any], name: str) -> str:
    # waitress joins a repeated header with ", ": two signatures fail the pattern too.
    value = headers.get(name)
    return "" if value is None else str(value)


def _body(environ: dict[str, Any]) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "")
    stream = environ["wsgi.input"]
    # waitress has already read (and capped) the whole body, chunked or not.
    return bytes(stream.read(int(length)) if length.isdigit() else stream.read())


class _SlackRequest(BoltRequest):
    """Bolt's request, with its body parsed here, once, and read right. Bolt's parse_body
    runs parse_qsl, which decodes each %XX escape in pure Python (0.13 ms for a click's 700),
    so Bolt is given an empty body and the fields are decoded by `_form_fields`. Bolt also
    takes any form body containing "payload" (a command's text, a channel's name) for an
    interaction, finds no payload field and reads nothing, so no listener would match; here
    such a body keeps its fields. Lazy listeners get a copy re-parsed from the raw body,
    hence `to_copyable`."""

    def __init__(
        self,
        *,
        body: str,
        query: str | dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        mode: str = "http",
    ) -> None:
        super().__init__(body="", query=query, headers=headers, context=context, mode=mode)
        self.raw_body = body
        self.body = _parsed_body(body, self.content_type)
        # The context built from the empty body has only is_enterprise_install, which this
        # sets again: the result is the context Bolt would have built from the real body.
        self.context = build_context(self.context, self.body)

    def to_copyable(self) -> BoltRequest:
        return _SlackRequest(
            body=self.raw_body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


def _parsed_body(raw: str, content_type: str | None) -> Any:
    """Bolt's parse_body, except that a form body saying "payload" without a payload field
    keeps its fields (Bolt gave {})."""
    if not raw:
        return {}
    if content_type == "application/json" or raw.startswith("{"):
        return json.loads(raw)
    fields = _form_fields(raw)
    # Bolt looks for the field only when the body says "payload" as such: a field named
    # pay%6Coad stays a field, as it always has.
    if "payload" in raw and "payload" in fields:
        return json.loads(fields["payload"])
    return fields


def _form_fields(raw: str) -> dict[str, str]:
    """dict(parse_qsl(raw, keep_blank_values=True)), exactly (tests/test_body_parse.py)."""
    fields = {}
    for field in raw.split("&"):
        if field:
            name, _, value = field.partition("=")
            fields[_unquote_plus(name)] = _unquote_plus(value)
    return fields


# A % that does not start an escape: parse_qsl leaves it (and what follows) as it is.
_PERCENT_WITHOUT_HEX = re.compile("%(?![0-9A-Fa-f]{2})")


def _unquote_plus(text: str) -> str:
    """urllib's unquote_plus, at C speed for what Slack sends: ASCII, every % an escape."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    if text.isascii() and "\\" not in text and not _PERCENT_WITHOUT_HEX.search(text):
        # With every % written \x and no other backslash, the unicode_escape codec turns each
        # escape into the one character of the same number, which latin-1 makes the byte
        # again: the bytes unquote would decode, decoded the same way (U+FFFD for bad UTF-8).
        escaped = text.replace("%", "\\x").encode("ascii").decode("unicode_escape")
        return escaped.encode("latin-1").decode("utf-8", "replace")
    return unquote(text)


def _bolt_request(raw: bytes, query: str, headers: dict[str, Any]) -> BoltRequest | None:
    """The request for Bolt, or None when the body is not one Slack sends."""
    try:
        request = _SlackRequest(body=raw.decode("utf-8"), query=query, headers=headers)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None  # not UTF-8, not JSON, or JSON of a shape Bolt cannot read
    body: object = request.body
    if not isinstance(body, dict):
        return None
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        # Bolt's action matchers index actions[0]["action_id"] without a check.
        if not (
            isinstance(actions, list)
            and actions
            and isinstance(actions[0], dict)
            and "action_id" in actions[0]
        ):
            return None
    return request


def _json(start_response: StartResponse, status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class HttpServer:
    def __init__(self, bot: Bot, *, host: str, port: int, threads: int = 16) -> None:
        self.bot = bot
        self.wsgi = SlackHttpApp(bot)
        _allow_open_files(OPEN_FILES_WANTED)
        # Slack's signed requests are small; cap the body so a flood cannot fill memory.
        self.server = create_server(
            self.wsgi,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=1_048_576,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT_SECONDS,
            cleanup_interval=CLEANUP_INTERVAL_SECONDS,
            backlog=LISTEN_BACKLOG,
            asyncore_use_poll=True,
            ident="credit-bot",
        )

    @property
    def port(self) -> int:
        return int(self.server.effective_port)  # type: ignore[union-attr]

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT, then drain and return. Main thread only."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log_event(
            logger,
            "http.listening",
            host=self.server.effective_host,  # type: ignore[union-attr]
            port=self.port,
            path=EVENTS_PATH,
        )
        try:
            self.server.run()
        finally:
            self.server.close()
            self.bot.close()
            log_event(logger, "http.stopped")

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.wsgi.draining.is_set():
            # The drain is over (it interrupts us), or the operator insists: stop serving now.
            raise KeyboardInterrupt
        log_event(
            logger,
            "http.draining",
            signal=signal.Signals(signum).name,
            in_flight=self.bot.transfers.in_flight,
        )
        self.wsgi.draining.set()
        threading.Thread(target=self._drain_then_stop, name="credit-drain", daemon=True).start()

    def _drain_then_stop(self) -> None:
        self.bot.drain(self.bot.settings.smspartner_timeout_seconds + DRAIN_MARGIN_SECONDS)
        # Runs _on_signal in the main thread, which raises KeyboardInterrupt: waitress's loop
        # ends on it and joins its workers.
        _thread.interrupt_main()


def _allow_open_files(wanted: int) -> None:
    """Raise the soft limit on open files towards `wanted` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
