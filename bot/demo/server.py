"""The whole product on one loopback server: the app, its Slack, its SMS Partner, the page.

One waitress server on 127.0.0.1 routes by path:

    /slack/events, /healthz     the app's real HTTP handler (bot.server.SlackHttpApp)
    /slack/api/…, /slack/response/…    the Slack stand-in (SLACK_API_URL points here)
    /smspartner/v1/…            the SMS Partner stand-in (SMSPARTNER_BASE_URL points here)
    /, /static/…, /demo/…       the page

The app is built by `build_bot` from settings read by `load_settings`, as `credit-bot run
--http` builds it, on a SQLite database in a temporary folder; only the URLs and secrets are
the demo's (secrets made up at start, never shown). Bolt asks Slack `auth.test` while it is
built, so the server serves first and the app is built on a thread beside it.
"""

from __future__ import annotations

import _thread
import logging
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from waitress.server import create_server

from bot.config import Settings, load_settings
from bot.demo import seed
from bot.demo.page import DemoPage
from bot.demo.slack_api import API_PREFIX, RESPONSE_PREFIX, SlackStandIn
from bot.demo.slack_events import SlackEvents
from bot.demo.smspartner_api import PREFIX as SMSPARTNER_PREFIX
from bot.demo.smspartner_api import SMSPartnerStandIn
from bot.demo.wsgi import StartResponse, respond_json
from bot.logs import log_event, log_failure
from bot.server import EVENTS_PATH, HEALTH_PATH, SlackHttpApp
from bot.slack.app import Bot, build_bot

logger = logging.getLogger(__name__)

# The page, the app's handler and both stand-ins share these: a command waits for its ack,
# whose card the app posts to the Slack stand-in, on threads of the same server.
SERVER_THREADS = 16
DRAIN_SECONDS = 10.0


def demo_environ(
    *,
    base_url: str,
    database_url: str,
    language: str = "en",
    remind_after_seconds: float = seed.REMIND_AFTER_SECONDS,
) -> dict[str, str]:
    """The app's settings for the demo: loopback URLs, made-up secrets, the demo's people,
    and every optional feature switched on so the page can show it."""
    return dict(
        SLACK_BOT_TOKEN=f"xoxb-demo-{secrets.token_hex(16)}",
        SLACK_SIGNING_SECRET=secrets.token_hex(32),
        SLACK_API_URL=f"{base_url}{API_PREFIX}",
        SMSPARTNER_API_KEY=secrets.token_hex(24),
        SMSPARTNER_BASE_URL=f"{base_url}{SMSPARTNER_PREFIX}",
        SMSPARTNER_TIMEOUT_SECONDS=str(seed.SMSPARTNER_TIMEOUT_SECONDS),
        DATABASE_URL=database_url,
        # The approvers as a user group: the app asks usergroups.users.list who is in it.
        CREDIT_APPROVERS=seed.APPROVERS_GROUP_ID,
        CREDIT_MAX_AMOUNT=str(seed.MAX_AMOUNT),
        CREDIT_SECOND_APPROVAL_ABOVE=str(seed.SECOND_APPROVAL_ABOVE),
        CREDIT_DAILY_LIMIT=str(seed.DAILY_LIMIT),
        CREDIT_REMIND_AFTER_SECONDS=f"{remind_after_seconds:g}",
        CREDIT_LANGUAGE=language,
        # Balances on each card read afresh: a visitor moves money every few seconds, and a
        # card showing a balance from before their last transfer would look wrong.
        SUBACCOUNT_CACHE_SECONDS="0",
        SWEEP_INTERVAL_SECONDS="1",
    )


class DemoServer:
    """Serves the demo until SIGINT or SIGTERM, then drains the app and stops."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        language: str = "en",
        remind_after_seconds: float = seed.REMIND_AFTER_SECONDS,
    ) -> None:
        self.server = create_server(
            self._route, host=host, port=port, threads=SERVER_THREADS, ident="credit-bot-demo"
        )
        self._folder = tempfile.TemporaryDirectory(prefix="credit-bot-demo-")
        self.base_url = f"http://{host}:{self.port}"
        self.settings: Settings = load_settings(
            environ=demo_environ(
                base_url=self.base_url,
                database_url=f"sqlite:///{Path(self._folder.name) / 'demo.db'}",
                language=language,
                remind_after_seconds=remind_after_seconds,
            ),
            env_file=None,
            http_mode=True,
        )
        self.slack = SlackStandIn(
            bot_token=self.settings.slack_bot_token.reveal(),
            team_id=seed.TEAM_ID,
            team_domain=seed.TEAM_DOMAIN,
            bot_user_id=seed.BOT_USER_ID,
            usergroups={seed.APPROVERS_GROUP_ID: [p.user_id for p in seed.APPROVERS]},
        )
        self.slack.base_url = self.base_url
        self.smspartner = SMSPartnerStandIn(
            api_key=self.settings.smspartner_api_key.reveal(),
            main_balance=seed.MAIN_BALANCE,
            subaccounts=seed.SUBACCOUNTS,
            currency=seed.CURRENCY,
            late_answer_seconds=seed.SMSPARTNER_TIMEOUT_SECONDS + 2,
        )
        self._ready = threading.Event()
        self.page = DemoPage(
            slack=self.slack,
            smspartner=self.smspartner,
            events=SlackEvents(
                events_url=f"{self.base_url}{EVENTS_PATH}",
                signing_secret=self.settings.slack_signing_secret.reveal(),
                slack=self.slack,
            ),
            ready=self._ready.is_set,
            language=language,
            remind_after_seconds=remind_after_seconds,
        )
        self.bot: Bot | None = None
        self._handler: SlackHttpApp | None = None
        self._stopping = threading.Event()
        self.exit_code = 0

    @property
    def port(self) -> int:
        return int(self.server.effective_port)  # type: ignore[union-attr]

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path in (EVENTS_PATH, HEALTH_PATH):
            if self._handler is None:
                return respond_json(
                    start_response, {"status": "starting"}, "503 Service Unavailable"
                )
            return self._handler(environ, start_response)
        if path.startswith((API_PREFIX, RESPONSE_PREFIX)):
            return self.slack(environ, start_response)
        if path.startswith(SMSPARTNER_PREFIX + "/"):
            return self.smspartner(environ, start_response)
        return self.page(environ, start_response)

    def serve(self) -> int:
        """Serve until a signal; main thread only. Returns the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        threading.Thread(target=self._start_app, name="demo-start", daemon=True).start()
        try:
            self.server.run()
        except KeyboardInterrupt:
            pass
        finally:
            self.smspartner.close()
            self.server.close()
            if self.bot is not None:
                self.bot.close()
            self._folder.cleanup()
            log_event(logger, "demo.stopped")
        return self.exit_code

    def _start_app(self) -> None:
        try:
            bot = build_bot(self.settings)
            self._handler = SlackHttpApp(bot)
            self.bot = bot
            bot.start_background()
        except Exception:
            log_failure(logger, "demo.start_failed")
            self.exit_code = 1
            self._stopping.set()
            _thread.interrupt_main()
            return
        log_event(logger, "demo.ready", url=f"{self.base_url}/", folder=self._folder.name)
        print(
            f"credit-bot demo: open {self.base_url}/ in your browser (Ctrl-C stops it)",
            file=sys.stdout,
            flush=True,
        )
        # Only now: the page says "ready" once the URL is printed and the sweeps run.
        self._ready.set()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stopping.is_set():
            raise KeyboardInterrupt  # the drain is over, or the visitor insists
        self._stopping.set()
        log_event(logger, "demo.stopping", signal=signal.Signals(signum).name)
        threading.Thread(target=self._drain_then_stop, name="demo-drain", daemon=True).start()

    def _drain_then_stop(self) -> None:
        # Transfers under way finish against the stand-in, which needs the server still up.
        if self.bot is not None:
            self.bot.drain(DRAIN_SECONDS)
        _thread.interrupt_main()
