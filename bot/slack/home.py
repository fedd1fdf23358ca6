"""The Home tab's view (SPEC §2.5): what waits for the viewer's approval, with the card's
own Confirm and Cancel buttons; their latest requests; the main account's balance.

Pure, like blocks.py: the listener reads the store and SMS Partner, this draws.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.domain import Action, CreditRequest
from bot.slack.blocks import (
    CANCEL_ACTION_ID,
    CONFIRM_ACTION_ID,
    escape_mrkdwn,
    format_amount,
    format_balance,
    mention,
    slack_date,
)

View = dict[str, Any]
# A view holds at most 100 blocks; each waiting request takes two.
MAX_WAITING = 30


def build_home(
    *,
    waiting: list[CreditRequest],
    mine: list[CreditRequest],
    main_balance: Decimal | None,
    currency: str,
    notice: str | None = None,
) -> View:
    """`main_balance` None: SMS Partner could not be read. `notice`: the answer to the
    viewer's last click in this tab (already escaped by whoever wrote it)."""
    blocks: list[dict[str, Any]] = []
    if notice:
        blocks.append(_section(f":information_source: {notice}"))
    balance = "unavailable" if main_balance is None else format_balance(main_balance, currency)
    blocks += [
        {"type": "header", "text": {"type": "plain_text", "text": "Credit transfers"}},
        _section(f"*Main account balance:* {balance}"),
        {"type": "divider"},
        _section(f"*Waiting for your approval* ({len(waiting)})"),
    ]
    if not waiting:
        blocks.append(_section("Nothing waits for you."))
    for request in waiting[:MAX_WAITING]:
        blocks += [_section(_waiting_line(request)), _buttons(request)]
    blocks += [{"type": "divider"}, _section("*Your latest requests*")]
    if not mine:
        blocks.append(_section("You have not asked for any transfer yet."))
    else:
        blocks.append(_section("\n".join(_mine_line(request) for request in mine)))
    return {"type": "home", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _what(request: CreditRequest) -> str:
    amount = format_amount(request.amount, request.currency)
    token = f"`{escape_mrkdwn(request.subaccount_token)}`"
    if request.action is Action.ADD:
        return f"add *{amount}* to {token}"
    return f"remove *{amount}* from {token}"


def _waiting_line(request: CreditRequest) -> str:
    line = f"{mention(request.requester_id)} asks to {_what(request)}"
    if request.reason:
        line += f": {escape_mrkdwn(' '.join(request.reason.split()))}"
    line += f"\nIn <#{request.channel_id}>, expires {slack_date(request.expires_at)}"
    if request.first_approver_id is not None:
        line += f"; approved by {mention(request.first_approver_id)} (1 of 2)"
    return line


def _mine_line(request: CreditRequest) -> str:
    return f"• {slack_date(request.created_at)}: {_what(request)}, *{request.status.value}*"


def _buttons(request: CreditRequest) -> dict[str, Any]:
    """The card's buttons: same action_ids and values, so the same listeners handle them.
    Block ids must be unique within a view, hence the request id in each."""
    dialog = f"{_what(request)}? This moves money at SMS Partner.".replace("*", "")
    return {
        "type": "actions",
        "block_id": f"credit_home_{request.id}",
        "elements": [
            {
                "type": "button",
                "action_id": CONFIRM_ACTION_ID,
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": request.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Move the credit?"},
                    "text": {"type": "plain_text", "text": dialog[:300]},
                    "confirm": {"type": "plain_text", "text": "Yes, move it"},
                    "deny": {"type": "plain_text", "text": "Back"},
                },
            },
            {
                "type": "button",
                "action_id": CANCEL_ACTION_ID,
                "text": {"type": "plain_text", "text": "Cancel"},
                "style": "danger",
                "value": request.id,
            },
        ],
    }
