"""The read side's Block Kit: the card's balances, the unknown card's buttons, the answers."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal

from bot.domain import Action, CreditRequest, Status
from bot.slack import answers
from bot.slack.blocks import (
    CHECK_BALANCE_ACTION_ID,
    RESOLVE_DONE_ACTION_ID,
    RESOLVE_NOT_DONE_ACTION_ID,
    build_card,
)
from bot.smspartner.accounts import MainAccount, Subaccount
from bot.texts import Texts

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
REQUEST = CreditRequest(
    id="cr_abcdefghijklmnop",
    action=Action.REMOVE,
    subaccount_token="sub-42",
    amount=Decimal("10.50"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UREQ",
    channel_id="CFIN",
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
    subaccount_email="<!channel>@example.com",
    main_balance_before=Decimal("10225.119"),
    subaccount_balance_before=Decimal("61.800"),
    balances_seen_at=NOW,
)
MAIN = MainAccount(Decimal("2869.200"), "EUR", "owner", "Camille", "Martin")

EN = Texts.for_language("en")


def _sub(token: str, balance: str, email: str = "") -> Subaccount:
    return Subaccount(token, email, "1", "subaccount", "", Decimal(balance), "EUR")


def test_card_shows_the_email_and_balances_now_and_after() -> None:
    """remove: the sub-account goes down, the main account up, exact digits; e-mail escaped."""
    text = json.dumps(build_card(REQUEST, texts=EN))
    assert "61.800 EUR \\u2192 51.300 EUR" in text
    assert "10225.119 EUR \\u2192 10235.619 EUR" in text
    assert "&lt;!channel&gt;@example.com" in text and "<!channel>" not in text


def test_card_without_balances_says_they_are_unavailable() -> None:
    """SMS Partner unreadable before the card: "unavailable", no made-up numbers."""
    blind = replace(REQUEST, main_balance_before=None, subaccount_balance_before=None)
    assert "unavailable: SMS Partner could not be read" in json.dumps(build_card(blind, texts=EN))


def test_unknown_card_carries_the_three_buttons_with_the_request_id() -> None:
    """The unknown card's buttons, each valued with the request id; a settled one has none."""
    unknown = replace(REQUEST, status=Status.UNKNOWN, approver_id="UAPP")
    buttons = [
        e
        for b in build_card(unknown, texts=EN)["blocks"]
        for e in b.get("elements", [])
        if "action_id" in e
    ]
    assert [b["action_id"] for b in buttons] == [
        CHECK_BALANCE_ACTION_ID,
        RESOLVE_DONE_ACTION_ID,
        RESOLVE_NOT_DONE_ACTION_ID,
    ]
    assert {b["value"] for b in buttons} == {REQUEST.id}
    settled = replace(unknown, status=Status.FAILED, resolver_id="UAPP2")
    shown = json.dumps(build_card(settled, texts=EN))
    assert "Marked as not done by <@UAPP2>" in shown and "action_id" not in shown


def test_not_found_escapes_the_name_and_the_matches() -> None:
    """A typed name and SMS Partner's e-mails cannot ping or link."""
    text = json.dumps(answers.build_not_found(EN, "<!here>", ["a<b>@example.com"]))
    assert "<!here>" not in text and "&lt;!here&gt;" in text and "a&lt;b&gt;@example.com" in text


def test_balance_list_is_lowest_first_and_capped() -> None:
    """35 sub-accounts: 30 lines, lowest balance first, then "and 5 more"."""
    subs = [_sub(f"s{n:02d}", f"{n}.125") for n in range(35, 0, -1)]
    message = answers.build_balances(EN, MAIN, subs)
    lines = "\n".join(b["text"]["text"] for b in message["blocks"][1:]).splitlines()
    assert lines[1] == "• no e-mail · `s01` · 1.125 EUR"
    assert len([line for line in lines if line.startswith("•")]) == 30
    assert lines[-1] == "and 5 more"
    assert "*Main account*: 2869.200 EUR" in message["text"]


def test_long_lists_are_split_under_slacks_section_limit() -> None:
    """Every section stays within Slack's 3000 characters, however long the e-mails."""
    subs = [_sub(f"s{n:02d}", "1", email="x" * 300 + "@example.com") for n in range(30)]
    for block in answers.build_balances(EN, MAIN, subs)["blocks"]:
        assert len(block["text"]["text"]) <= answers.SECTION_MAX_CHARS


def test_history_line_says_when_who_what_approved_and_state() -> None:
    """A settled request's line names the approver and who settled it."""
    done = replace(REQUEST, status=Status.SUCCEEDED, approver_id="UAPP", resolver_id="UAPP2")
    line = answers.history_line(EN, done)
    assert line.startswith("• <!date^")
    assert "<@UREQ>" in line and "remove 10.50 EUR from `sub-42`" in line
    assert "approved by <@UAPP>" in line and "succeeded (settled by <@UAPP2>)" in line


def test_balances_now_sit_beside_those_seen() -> None:
    """Check balances: now and when the card was posted, both exact."""
    text = json.dumps(answers.build_balances_now(EN, REQUEST, Decimal("51.300"), None))
    assert "now 51.300 EUR" in text and "61.800 EUR" in text and "unavailable" in text
