"""`credit-bot demo`: the real app against in-process Slack and SMS Partner, and a page."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.config import LANGUAGES
from bot.demo import seed
from bot.demo.server import DemoServer
from bot.logs import configure_logging

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def port(text: str) -> int:
    """A TCP port, 1 to 65535: anything else would silently listen somewhere unexpected."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {number}")
    return number


def reminder_delay(text: str) -> float:
    """Seconds before a pending card's reminder: 1 to 86400 (0, "never", would hide it)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"a reminder delay is 1 to 86400 seconds, got {text}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser, *, log_level: bool = True) -> None:
    """The demo's flags, for `python -m bot.demo` and for `credit-bot demo` alike
    (`credit-bot` has its own `--log-level`, before the sub-command)."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"page address (default: {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"page port (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default="en",
        help="CREDIT_LANGUAGE for the app, and the page's own language (default: en)",
    )
    parser.add_argument(
        "--remind-after",
        type=reminder_delay,
        default=float(seed.REMIND_AFTER_SECONDS),
        metavar="SECONDS",
        help="CREDIT_REMIND_AFTER_SECONDS: when a pending card gets its reminder "
        f"(default: {seed.REMIND_AFTER_SECONDS})",
    )
    if not log_level:
        return
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help="the app's JSON log lines on stderr, as in production (default: INFO)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="credit-bot demo",
        description="The whole bot on this machine, no Slack workspace and no SMS Partner "
        "account: a page that shows a channel where you ask for credit and approve it.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve the demo until a signal: `args` has the flags of `add_arguments` and log_level."""
    try:
        server = DemoServer(
            host=args.host,
            port=args.port,
            language=args.language,
            remind_after_seconds=args.remind_after,
        )
    except OSError as error:
        print(
            f"credit-bot demo: cannot listen on {args.host}:{args.port}: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    configure_logging(secrets=server.settings.secrets(), level=args.log_level)
    return server.serve()
