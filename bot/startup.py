"""What can stop the bot before it serves, each said in one line that names what and where.

The operator reads these on a terminal or in a unit's journal: the variable to fix, the
host:port that did not answer, Slack's error code. Never a traceback (the CLI prints one at
DEBUG level), never a secret, never SQLAlchemy's help links.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.config import Settings

SLACK_CHECK_TIMEOUT_SECONDS = 10


class StartupError(Exception):
    """The bot cannot start; the message is one line saying what and where."""


def database_place(url: str) -> str:
    """Where a database URL points, without its password."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return os.path.abspath(parsed.database) if parsed.database else "memory"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def database_failure(error: SQLAlchemyError, url: str) -> str:
    """One line for a database error: the variable, the place, the driver's first words."""
    cause: BaseException = error.orig if isinstance(error, DBAPIError) and error.orig else error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return f"database unavailable (DATABASE_URL, {database_place(url)}): {lines[0].strip()}"


def slack_client(settings: Settings, token: str) -> WebClient:
    """A client for one check: no retry, and its own failure lines only at DEBUG level (the
    caller says it in one line)."""
    quiet = logging.getLogger(f"{__name__}.slack")
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    quiet.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_CHECK_TIMEOUT_SECONDS,
        logger=quiet,
        retry_handlers=[],
    )


def verify_bot_token(settings: Settings) -> dict[str, Any]:
    """Slack's auth.test for the bot token; its answer (team, user), or StartupError."""
    client = slack_client(settings, settings.slack_bot_token.reveal())
    answer = _call_slack(settings, "auth.test", "SLACK_BOT_TOKEN", client.auth_test)
    return dict(answer.data) if isinstance(answer.data, dict) else {}


def verify_app_token(settings: Settings) -> None:
    """Slack's apps.connections.open for the app-level token (Socket Mode), or StartupError."""
    token = settings.slack_app_token.reveal()
    client = slack_client(settings, token)
    _call_slack(
        settings,
        "apps.connections.open",
        "SLACK_APP_TOKEN",
        lambda: client.apps_connections_open(app_token=token),
    )


def _call_slack(settings: Settings, method: str, variable: str, call: Any) -> Any:
    try:
        return call()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error") if error.response else "no answer"
        raise StartupError(f"Slack refused {variable} ({method}: {code})") from error
    except (URLError, OSError) as error:
        raise StartupError(
            f"Slack unreachable at {_host_port(settings.slack_api_url)} (SLACK_API_URL, "
            f"{method}): {_reason(error)}"
        ) from error


def listen_failure(error: OSError, host: str, port: int, flag: str) -> str:
    if error.errno == errno.EADDRINUSE:
        reason = "address already in use"
    else:
        reason = error.strerror or str(error)
    return f"cannot listen on {host}:{port} ({flag}): {reason}"


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _reason(error: BaseException) -> str:
    if isinstance(error, URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
