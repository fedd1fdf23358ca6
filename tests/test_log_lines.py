"""bot/logs.py's filter and formatter, since issue 13 made them cheaper: every secret still
scrubbed wherever a record carries text, and each line the one json.dumps wrote."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from decimal import Decimal
from typing import Any

import pytest

from bot.logs import (
    _LINE_BREAKS,
    _STANDARD,
    REDACTED,
    JsonFormatter,
    SecretFilter,
    _capped,
    _plain,
)

TOKEN = "xoxb-" + "1" * 40
KEY = "api-key-" + "3" * 24


class ReferenceFormatter(logging.Formatter):
    """The line as bot/logs.py wrote it before issue 13."""

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
        return json.dumps(line, default=_plain, ensure_ascii=False).translate(_LINE_BREAKS)


def record(message: str = "credit.succeeded", *args: object, **extra: Any) -> logging.LogRecord:
    exc_info = extra.pop("exc_info", None)
    return logging.getLogger("bot.flow").makeRecord(
        "bot.flow", logging.INFO, __file__, 1, message, args or None, exc_info, extra=extra
    )


def failure() -> Any:
    try:
        raise RuntimeError(f"SMS Partner refused key {KEY}\u2028second line")
    except RuntimeError:
        return sys.exc_info()


RECORDS = {
    "ascii event": lambda: record(
        event="credit.succeeded", request_id="r1", amount=Decimal("10.50")
    ),
    "french text": lambda: record("solde 10\u202f225,119\u00a0EUR", event="card", user="Zoé"),
    "long message": lambda: record("x" * 5000 + "\u2028", event="bolt"),
    "line breaks": lambda: record("a\u2028b\u2029c\x85d\ne", event="odd", text="x\u2028y"),
    "arguments": lambda: record("user %s asked %s", "U1", Decimal("5.00")),
    "nested field": lambda: record(event="e", blocks=[{"text": "é\u2029"}], count=3, flag=None),
    "traceback": lambda: record("boom", event="credit.failed", exc_info=failure()),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_each_line_is_the_one_json_dumps_wrote(name: str) -> None:
    logged = RECORDS[name]()
    line = JsonFormatter().format(logged)
    assert line == ReferenceFormatter().format(logged)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["logger"] == "bot.flow"


def test_secrets_are_scrubbed_from_message_arguments_traceback_and_every_text_field() -> None:
    secret_filter = SecretFilter([TOKEN, KEY])
    logged = record(
        f"token {TOKEN} then %s",
        KEY,
        exc_info=failure(),
        event="credit.failed",
        detail=f"key={KEY}",
        other_text=f"{TOKEN}{KEY}",
        amount=Decimal("10.50"),
        count=7,
    )
    assert secret_filter.filter(logged)
    line = JsonFormatter().format(logged)
    assert TOKEN not in line and KEY not in line
    fields = json.loads(line)
    assert fields["message"] == f"token {REDACTED} then {REDACTED}"
    assert fields["detail"] == f"key={REDACTED}"
    assert fields["other_text"] == f"{REDACTED}{REDACTED}"
    assert f"refused key {REDACTED}" in fields["error"]
    assert (fields["amount"], fields["count"]) == ("10.50", 7)


def test_without_secrets_the_record_is_left_as_it_is() -> None:
    logged = record("user %s", "U1", detail="plain")
    assert SecretFilter([]).filter(logged)
    assert (logged.msg, logged.args, logged.detail) == ("user %s", ("U1",), "plain")


def test_a_response_url_quoted_by_a_database_error_is_scrubbed() -> None:
    """PostgreSQL's own error text may quote a failing row, response_url included."""
    url = "https://hooks.slack.com/commands/T0TEST/1234567890/AbCdEfGhIjKlMnOpQrStUvWx"
    secret_filter = SecretFilter([TOKEN, KEY])
    logged = record(
        "insert failed",
        event="command.failed",
        detail=f"DETAIL:  Failing row contains (cr_1, add, sub-1, 10.50, EUR, {url}, null).",
    )
    assert secret_filter.filter(logged)
    line = JsonFormatter().format(logged)
    assert "hooks.slack.com/commands" not in line
    assert json.loads(line)["detail"].endswith(f"EUR, {REDACTED}, null).")
