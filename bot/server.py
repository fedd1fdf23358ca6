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
import signal
import threading
from collections.abc import Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.app import Bot
from bot.logs import log_event

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# A call lasts at most its connect timeout (3.05 s) plus the read timeout; this covers the
# connect part and recording the outcome.
DRAIN_MARGIN_SECONDS = 5.0

StartResponse = Any


class SlackHttpApp:
    """The WSGI application: routes two paths, refuses everything while draining."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.slack = SlackRequestHandler(bot.app)
        self.draining = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            if self.draining.is_set():
                return _json(start_response, "503 Service Unavailable", {"status": "draining"})
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == EVENTS_PATH:
            if method != "POST":
                return _json(start_response, "405 Method Not Allowed", {"error": "POST only"})
            if self.draining.is_set():
                return _json(start_response, "503 Service Unavailable", {"error": "draining"})
            result: Iterable[bytes] = self.slack(environ, start_response)
            return result
        return _json(start_response, "404 Not Found", {"error": "not found"})


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
        # Slack's signed requests are small; cap the body so a flood cannot fill memory.
        self.server = create_server(
            self.wsgi,
            host=host,
            port=port,
            threads=threads,
            max_request_body_size=1_048_576,
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
