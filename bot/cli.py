"""The `credit-bot` command: run (Socket Mode or HTTP), check and audit.

Every failure before the bot serves is one line on stderr and a non-zero exit (2 for a
setting, 1 for anything else); `--log-level DEBUG` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

from slack_bolt.adapter.socket_mode import SocketModeHandler
from sqlalchemy.exc import SQLAlchemyError

from bot import audit
from bot import demo as demo_page
from bot.check import run_checks
from bot.config import ConfigError, Settings, load_database_url, load_settings
from bot.domain import Status
from bot.health import probe_database
from bot.logs import configure_logging, log_event
from bot.metrics import Metrics
from bot.server import HttpServer
from bot.slack.app import Bot, build_bot
from bot.startup import (
    StartupError,
    database_failure,
    listen_failure,
    verify_app_token,
    verify_bot_token,
)
from bot.store import Store
from bot.store.engine import sqlite_path

logger = logging.getLogger("bot.cli")

DEFAULT_PORT = 3000
DEFAULT_ENV_FILE = ".env"


def _port(value: str) -> int:
    port = _integer(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value}")
    return port


def _at_least_one(value: str) -> int:
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return number


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credit-bot",
        description="Move SMS Partner credit between the main account and sub-accounts "
        "from Slack, with a human approval.",
    )
    parser.add_argument(
        "--env-file", help=f"settings file (default: {DEFAULT_ENV_FILE}, if there is one)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot (Socket Mode unless --http)")
    run.add_argument("--http", action="store_true", help="serve POST /slack/events over HTTP")
    run.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104
        help="address of the HTTP and metrics servers (default: 0.0.0.0)",
    )
    run.add_argument("--port", type=_port, default=DEFAULT_PORT, help="HTTP port (default: 3000)")
    run.add_argument(
        "--threads", type=_at_least_one, default=16, help="HTTP worker threads (default: 16)"
    )
    run.add_argument(
        "--metrics-port", type=_port, help="serve Prometheus metrics at GET /metrics on this port"
    )
    check = commands.add_parser(
        "check", help="check the settings, the database, Slack and SMS Partner; moves no money"
    )
    check.add_argument("--http", action="store_true", help="check the settings of HTTP mode")
    check.add_argument(
        "--offline", action="store_true", help="check only the settings and the database"
    )
    audit_command = commands.add_parser(
        "audit", help="list recent requests, or one request's whole trail (reads only)"
    )
    audit_command.add_argument("request_id", nargs="?", help="show this request and its trail")
    audit_command.add_argument(
        "--status", choices=[s.value for s in Status], help="only this state"
    )
    audit_command.add_argument(
        "--limit", type=_at_least_one, default=50, help="how many (default: 50)"
    )
    demo = commands.add_parser(
        "demo",
        help="try the bot on this machine: a Slack-like page, no Slack, no SMS Partner",
    )
    demo_page.add_arguments(demo, log_level=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        # The demo makes its own settings: it reads no .env and needs no credentials.
        return demo_page.run(args)
    try:
        return _main(args)
    except ConfigError as error:
        print(f"credit-bot: configuration error: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"credit-bot: {error}", file=sys.stderr)
        if args.log_level == "DEBUG":
            traceback.print_exception(error)
        return 1


def _main(args: argparse.Namespace) -> int:
    env_file = _env_file(args.env_file)
    if args.command == "audit":
        database_url = load_database_url(env_file=env_file)
        configure_logging(secrets=[], level=args.log_level)
        return show_audit(database_url, args.request_id, status=args.status, limit=args.limit)
    try:
        settings = load_settings(env_file=env_file, http_mode=bool(args.http))
    except ConfigError as error:
        if args.command == "check":
            print(f"settings: FAILED ({error})")
            return 1
        raise
    configure_logging(secrets=settings.secrets(), level=args.log_level)
    # Settings hold the token now. Left in the environment, Bolt would also read it and warn
    # on every start that it is unused (build_bot hands Bolt a client).
    os.environ.pop("SLACK_BOT_TOKEN", None)
    if args.command == "check":
        return check(settings, socket_mode=not args.http, offline=args.offline)
    if args.http:
        return run_http(
            settings,
            host=args.host,
            port=args.port,
            threads=args.threads,
            metrics_port=args.metrics_port,
        )
    return run_socket_mode(settings, host=args.host, metrics_port=args.metrics_port)


def _env_file(given: str | None) -> str:
    if given is None:
        return DEFAULT_ENV_FILE  # read if present
    if not Path(given).is_file():
        raise StartupError(f"--env-file {given}: no such file")
    return given


def check(settings: Settings, *, socket_mode: bool, offline: bool) -> int:
    failed = False
    for outcome in run_checks(settings, socket_mode=socket_mode, offline=offline):
        print(outcome.line(), flush=True)
        failed = failed or not outcome.ok
    return 1 if failed else 0


def show_audit(database_url: str, request_id: str | None, *, status: str | None, limit: int) -> int:
    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        # Opening it would create an empty database: say there is none instead.
        print(
            f"credit-bot: no database yet at {path.absolute()} (DATABASE_URL): "
            "it is created by credit-bot run or credit-bot check",
            file=sys.stderr,
        )
        return 1
    store = Store.from_url(database_url)
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
        print(f"credit-bot: {database_failure(error, database_url)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print("\n".join(lines))
    return 0


def _build(settings: Settings, metrics: Metrics | None) -> Bot:
    """The bot, once Slack and the database have answered; StartupError otherwise."""
    verify_bot_token(settings)
    try:
        bot = build_bot(
            settings, call_observer=metrics.observe_call if metrics is not None else None
        )
    except SQLAlchemyError as error:
        raise StartupError(database_failure(error, settings.database_url)) from error
    try:
        # Migrating an up-to-date schema writes nothing: a read-only database would pass.
        probe_database(bot.store.engine)
    except SQLAlchemyError as error:
        bot.close()
        raise StartupError(database_failure(error, settings.database_url)) from error
    if metrics is not None:
        metrics.count_requests_in(bot.store.engine)
    return bot


def _serve_metrics(metrics: Metrics | None, bot: Bot, *, host: str, port: int | None) -> None:
    if metrics is None or port is None:
        return
    try:
        metrics.serve(host=host, port=port)
    except OSError as error:
        bot.close()
        raise StartupError(listen_failure(error, host, port, "--metrics-port")) from error
    log_event(logger, "metrics.listening", host=host, port=port, path="/metrics")


def run_http(
    settings: Settings, *, host: str, port: int, threads: int, metrics_port: int | None = None
) -> int:
    metrics = Metrics() if metrics_port else None
    bot = _build(settings, metrics)
    try:
        server = HttpServer(bot, host=host, port=port, threads=threads)
    except OSError as error:
        bot.close()
        raise StartupError(listen_failure(error, host, port, "--host/--port")) from error
    _serve_metrics(metrics, bot, host=host, port=metrics_port)
    bot.start_background()
    try:
        server.serve()
    finally:
        if metrics is not None:
            metrics.close()
    return 0


def run_socket_mode(settings: Settings, *, host: str, metrics_port: int | None = None) -> int:
    # Before anything is logged as started: a refused app token is a start-up failure.
    verify_app_token(settings)
    metrics = Metrics() if metrics_port else None
    bot = _build(settings, metrics)
    handler = SocketModeHandler(bot.app, settings.slack_app_token.reveal())
    _serve_metrics(metrics, bot, host=host, port=metrics_port)
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
    if metrics is not None:
        metrics.close()
    return 0
