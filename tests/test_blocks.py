"""Block Kit builders: pure functions, checked on their output."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from bot.domain import Action, CreditRequest, Status
from bot.slack.blocks import (
    CANCEL_ACTION_ID,
    CONFIRM_ACTION_ID,
    build_card,
    build_confirmation,
    build_outcome,
    build_usage,
    escape_mrkdwn,
    format_amount,
    format_balance,
)
from bot.texts import Texts, Wording

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
REQUEST = CreditRequest(
    id="cr_AAAAAAAAAAAAAAAAAAAAAA",
    action=Action.ADD,
    subaccount_token="sub-42",
    amount=Decimal("10.5"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UREQ",
    channel_id="CFIN",
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
)

EN = Texts.for_language("en")


def _buttons(message: dict[str, object]) -> list[dict[str, object]]:
    return [
        element
        for block in message["blocks"]  # type: ignore[attr-defined]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_confirmation_has_both_buttons_with_the_request_id() -> None:
    """Confirm (primary, with a confirm dialog) and Cancel (danger) carry the request id."""
    message = build_confirmation(REQUEST, texts=EN)
    confirm, cancel = _buttons(message)
    assert (confirm["action_id"], confirm["style"], confirm["value"]) == (
        CONFIRM_ACTION_ID,
        "primary",
        REQUEST.id,
    )
    assert (cancel["action_id"], cancel["style"], cancel["value"]) == (
        CANCEL_ACTION_ID,
        "danger",
        REQUEST.id,
    )
    dialog = confirm["confirm"]["text"]["text"]  # type: ignore[index]
    assert "10.50 EUR" in dialog and "sub-42" in dialog
    text = json.dumps(message)
    for fact in ("<@UREQ>", "10.50 EUR", "sub-42", "<!date^"):
        assert fact in text


@pytest.mark.parametrize("status", [s for s in Status if s.is_final and s is not Status.UNKNOWN])
def test_outcome_cards_have_no_buttons(status: Status) -> None:
    """Every ended request's card has no buttons left (unknown's are in test_answers.py)."""
    ended = replace(REQUEST, status=status, approver_id="UAPP", canceller_id="UAPP")
    assert _buttons(build_outcome(ended, texts=EN)) == []
    assert _buttons(build_card(ended, texts=EN)) == []


def test_success_card_shows_people_and_exact_balances() -> None:
    """Success names requester and approver and shows balances unrounded."""
    done = replace(
        REQUEST,
        status=Status.SUCCEEDED,
        approver_id="UAPP",
        main_balance=Decimal("10225.119"),
        subaccount_balance=Decimal("0.800"),
    )
    text = json.dumps(build_outcome(done, texts=EN))
    for fact in ("<@UREQ>", "<@UAPP>", "10225.119 EUR", "0.800 EUR", "10.50 EUR", "sub-42"):
        assert fact in text


def test_unknown_card_says_check_the_balance() -> None:
    """The unknown card says it may or may not have happened, and to check first."""
    unknown = replace(REQUEST, status=Status.UNKNOWN, approver_id="UAPP", error_message="timeout")
    text = build_outcome(unknown, texts=EN)["text"]
    assert "may or may not have happened" in text and "Check" in text


def test_user_and_vendor_text_is_escaped() -> None:
    """No text from a user or the vendor can form a mention or a link."""
    hostile = replace(
        REQUEST,
        status=Status.FAILED,
        approver_id="<!channel>",
        error_message="<!here> <https://evil.test|click>",
        subaccount_token="<!everyone>",
    )
    text = json.dumps(build_outcome(hostile, texts=EN))
    assert "<!channel>" not in text and "<!here>" not in text and "<!everyone>" not in text
    assert "<https://" not in text
    assert escape_mrkdwn("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_money_formats() -> None:
    """Amounts show two decimals; balances show exactly what SMS Partner sent."""
    assert format_amount(EN, Decimal("10"), "EUR") == "10.00 EUR"
    assert format_amount(EN, Decimal("10.5"), "EUR") == "10.50 EUR"
    assert format_balance(EN, Decimal("0.800"), "EUR") == "0.800 EUR"
    assert format_balance(EN, None, "EUR") == "unknown"


def test_usage_puts_the_reason_first() -> None:
    """A refused command's answer starts with the reason and includes the usage."""
    text = build_usage(EN, Wording.of("usage.error.amount_zero"))["text"]
    assert text.startswith(":warning: The amount must be greater than 0.")
    assert "/credit add" in text
