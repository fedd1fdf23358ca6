"""The `credit-bot` command: run (Socket Mode or HTTP) and check."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy.exc import SQLAlchemyError

from bot import audit
from bot.config import ConfigError, Settings, load_settings
from bot.domain import Status
from bot.logs import configure_logging, log_event
from bot.server import HttpServer
from bot.slack.app import build_bot
from bot.store import Store

logger = logging.getLogger("bot.cli")

DEFAULT_PORT = 3000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-bot",
        description="Move SMS Partner credit between the main account and sub-accounts "
        "from Slack, with a human approval.",
    )
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot (Socket Mode unless --http)")
    run.add_argument("--http", action="store_true", help="serve POST /slack/events over HTTP")
    run.add_argument("--host", default="0.0.0.0", help="HTTP address (default: 0.0.0.0)")  # noqa: S104
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default: 3000)")
    run.add_argument("--threads", type=int, default=16, help="HTTP worker threads (default: 16)")
    check = commands.add_parser(
        "check", help="validate the settings and the database; touches neither Slack nor money"
    )
    check.add_argument("--http", action="store_true", help="check the settings of HTTP mode")
    audit = commands.add_parser(
        "audit", help="list recent requests, or one request's whole trail (reads only)"
    )
    audit.add_argument("request_id", nargs="?", help="show this request and its trail")
    audit.add_argument("--status", choices=[s.value for s in Status], help="only this state")
    audit.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # audit only reads the database: it needs neither Slack secret.
    http_mode = None if args.command == "audit" else bool(args.http)
    try:
        settings = load_settings(env_file=args.env_file, http_mode=http_mode)
    except ConfigError as error:
        print(f"credit-bot: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(secrets=settings.secrets(), level=args.log_level)
    if args.command == "check":
        return check(settings)
    if args.command == "audit":
        return show_audit(settings, args.request_id, status=args.status, limit=args.limit)
    if args.http:
        return run_http(settings, host=args.host, port=args.port, threads=args.threads)
    return run_socket_mode(settings)


def check(settings: Settings) -> int:
    store = Store.from_url(settings.database_url)
    try:
        before = store.migrate()
        version = store.schema_version()
    except Exception as error:
        print(f"credit-bot: database error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"settings: ok ({settings!r})")
    print(f"database: ok (schema version {version}, was {before})")
    return 0


def show_audit(
    settings: Settings, request_id: str | None, *, status: str | None, limit: int
) -> int:
    store = Store.from_url(settings.database_url)
    try:
        if request_id:
            lines = list(audit.trail(store, request_id))
        else:
            lines = list(
                audit.list_requests(store, limit=limit, status=Status(status) if status else None)
            )
    except LookupError as error:
        print(f"credit-bot: {error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        print(
            f"credit-bot: database error ({type(error).__name__}); run credit-bot check",
            file=sys.stderr,
        )
        return 1
    finally:
        store.close()
    print("\n".join(lines))
    return 0


def run_http(settings: Settings, *, host: str, port: int, threads: int) -> int:
    bot = build_bot(settings)
    server = HttpServer(bot, host=host, port=port, threads=threads)
    bot.start_background()
    server.serve()
    return 0


def run_socket_mode(settings: Settings) -> int:
    bot = build_bot(settings)
    handler = SocketModeHandler(bot.app, settings.slack_app_token.reveal())
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log_event(logger, "socket_mode.draining", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bot.start_background()
    handler.connect()  # type: ignore[no-untyped-call]
    log_event(logger, "socket_mode.connected")
    stop.wait()
    # Disconnect first so Slack hands new payloads to the other instances, then drain.
    handler.close()  # type: ignore[no-untyped-call]
    bot.drain(settings.smspartner_timeout_seconds + 5)
    bot.close()
    return 0
