"""Structured logs: one JSON object per line, and no secret in any of them.

`log_event` writes one line per thing that happened to a request (request id, user ids,
action, amount, outcome). `SecretFilter` is the safety net under it: it replaces every
configured secret value in every record, whichever library wrote it, before output.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

REDACTED = "[redacted]"
# Bolt logs the whole body of every request whose signature is wrong, at INFO: uncapped,
# anyone who can reach the URL could write lines of a megabyte (the server's body limit).
MAX_MESSAGE_CHARS = 2000
# json.dumps(ensure_ascii=False) leaves these raw, and str.splitlines and other readers
# take them for line breaks: escaped, one record stays one line whatever a request held.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})

# slack_sdk and Bolt build their debug strings when `logger.level <= DEBUG`, and an unset
# level (0) passes that test whatever the root's level: these are the loggers they test it
# on (WebClient's, WebhookClient's, Bolt's App and middleware), and their parents.
QUIETED_LOGGERS = (
    "slack_sdk",
    "slack_sdk.web.base_client",
    "slack_sdk.webhook.client",
    "slack_bolt",
    "slack_bolt.App",
    "slack_bolt.IgnoringSelfEvents",
)

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# A response_url lets anyone answer in a user's name for 30 minutes. The store never logs one,
# but a database's own error text may quote a row (PostgreSQL's "Failing row contains (…)"
# for a NOT NULL or CHECK violation), whatever `hide_parameters` does.
_RESPONSE_URL = re.compile(r"https://hooks\.slack(?:-gov)?\.com/[^\s\"'<>,)]+")


class SecretFilter(logging.Filter):
    """Scrubs the given secret values out of a record's message, arguments and fields."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Short values would redact innocent text; real tokens and keys are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "hooks.slack" in text:
            text = _RESPONSE_URL.sub(REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        fields = vars(record)
        # Only the `extra=` fields, found by one set difference rather than a test per attribute.
        for key in fields.keys() - _STANDARD:
            value = fields[key]
            if isinstance(value, str):
                fields[key] = self.scrub(value)
        return True


class JsonFormatter(logging.Formatter):
    """One line of JSON: time, level, logger, message, then the event's own fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _capped(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["error"] = record.exc_text
        text = _ENCODER.encode(line)
        # translate walks every character; an ASCII line has none of the three to escape.
        return text if text.isascii() else text.translate(_LINE_BREAKS)


def _capped(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return f"{message[:MAX_MESSAGE_CHARS]}… [{len(message) - MAX_MESSAGE_CHARS} more characters]"


def _plain(value: Any) -> str:
    # Amounts and balances stay exact strings, never floats.
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# One encoder for every line: json.dumps with these arguments would build its own per call.
# Encoding keeps no state in the encoder, so the threads share it as json.dumps shares its own.
_ENCODER = json.JSONEncoder(default=_plain, ensure_ascii=False)


def configure_logging(*, secrets: Iterable[str], level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines, secrets scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # WARNING, or quieter if asked; their debug lines only when our own are wanted too.
    libraries = logging.DEBUG if level == "DEBUG" else max(logging.WARNING, root.level)
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(libraries)


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """One line for one event: `event` is its name, fields its facts (None ones dropped)."""
    logger.log(
        level, event, extra={"event": event, **{k: v for k, v in fields.items() if v is not None}}
    )


def log_failure(logger: logging.Logger, event: str, **fields: Any) -> None:
    """Inside an `except` at a boundary: one error line, the traceback in its `error` field."""
    logger.error(
        event,
        exc_info=True,
        extra={"event": event, **{k: v for k, v in fields.items() if v is not None}},
    )
