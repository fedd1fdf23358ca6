"""The Home tab's view and the card's approval parts, as pure Block Kit: escaped user text,
unique block ids, the same buttons as the card, the reason quoted line by line."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal

from bot.domain import Action, CreditRequest, Status
from bot.flow.policy import CanApprove
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID, build_card
from bot.slack.home import MAX_WAITING, build_home
from bot.texts import Texts

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

EN = Texts.for_language("en")


def _request(n: int = 0, **changes: object) -> CreditRequest:
    request = CreditRequest(
        id=f"cr_request{n:012d}",
        action=Action.ADD,
        subaccount_token="sub-42",
        amount=Decimal("12.5"),
        currency="EUR",
        status=Status.PENDING,
        requester_id="UREQ",
        channel_id="CFIN",
        created_at=NOW,
        expires_at=NOW + dt.timedelta(minutes=15),
        reason="March <!channel> campaign",
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def test_home_lists_waiting_requests_with_the_cards_buttons_and_unique_block_ids() -> None:
    """Each waiting request carries Confirm and Cancel with its id; block ids never repeat."""
    waiting = [_request(n) for n in range(3)]
    view = build_home(
        texts=EN, waiting=waiting, mine=[], main_balance=Decimal("10.800"), currency="EUR"
    )
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (action, r.id) for r in waiting for action in (CONFIRM_ACTION_ID, CANCEL_ACTION_ID)
    ]
    block_ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    text = json.dumps(view)
    assert "10.800 EUR" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text


def test_home_stays_within_slacks_100_blocks_and_says_when_the_balance_is_unavailable() -> None:
    """Many waiting requests are cut to MAX_WAITING; a balance not read is "unavailable"."""
    view = build_home(
        texts=EN,
        waiting=[_request(n) for n in range(80)],
        mine=[_request(n, status=Status.SUCCEEDED) for n in range(10)],
        main_balance=None,
        currency="EUR",
        notice="You already approved this request.",
    )
    assert len(view["blocks"]) <= 100
    assert sum(b["type"] == "actions" for b in view["blocks"]) == MAX_WAITING
    assert "unavailable" in json.dumps(view)
    assert view["blocks"][0]["text"]["text"].endswith("You already approved this request.")


def test_card_quotes_a_multi_line_reason_and_names_approvers_and_the_first_approval() -> None:
    """A line break in the reason stays inside the quote; groups are mentioned as groups."""
    request = _request(reason="line one\n*line two*", approvals_needed=2, first_approver_id="UAPP")
    card = build_card(
        request, texts=EN, can_approve=CanApprove(user_ids=("UAPP", "UBOB"), group_ids=("SFIN",))
    )
    text = json.dumps(card)
    assert "&gt; line one\\n&gt; *line two*" in text
    assert "Can approve: <@UAPP>, <@UBOB>, <!subteam^SFIN>" in text
    assert "Approved by <@UAPP> (1 of 2), waiting for a second approver." in text


def test_outcome_names_both_approvers_and_keeps_the_reason() -> None:
    """The result of a request approved twice shows both approvers and the reason."""
    request = _request(
        status=Status.SUCCEEDED,
        approvals_needed=2,
        first_approver_id="UAPP",
        approver_id="UBOB",
        main_balance=Decimal("1.000"),
        subaccount_balance=Decimal("2.000"),
    )
    text = json.dumps(build_card(request, texts=EN))
    assert "<@UAPP>, <@UBOB>" in text
    assert "March &lt;!channel&gt; campaign" in text
