"""The Home tab's view (SPEC §2.5): what waits for the viewer's approval, with the card's
own Confirm and Cancel buttons; their latest requests; the main account's balance.

Pure, like blocks.py: the listener reads the store and SMS Partner, this draws.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.domain import Action, CreditRequest
from bot.slack.blocks import (
    cancel_button,
    confirm_button,
    escape_mrkdwn,
    format_amount,
    format_balance,
    mention,
    slack_date,
)
from bot.texts import Texts

View = dict[str, Any]
# A view holds at most 100 blocks; each waiting request takes two.
MAX_WAITING = 30


def build_home(
    *,
    texts: Texts,
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
    balance = (
        texts("home.unavailable")
        if main_balance is None
        else format_balance(texts, main_balance, currency)
    )
    blocks += [
        {"type": "header", "text": {"type": "plain_text", "text": texts("home.title")}},
        _section(texts("home.main_balance", balance=balance)),
        {"type": "divider"},
        _section(texts("home.waiting", count=len(waiting))),
    ]
    if not waiting:
        blocks.append(_section(texts("home.waiting.empty")))
    for request in waiting[:MAX_WAITING]:
        blocks += [_section(_waiting_line(texts, request)), _buttons(texts, request)]
    blocks += [{"type": "divider"}, _section(texts("home.mine"))]
    if not mine:
        blocks.append(_section(texts("home.mine.empty")))
    else:
        blocks.append(_section("\n".join(_mine_line(texts, request) for request in mine)))
    return {"type": "home", "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _what(texts: Texts, request: CreditRequest) -> str:
    amount = format_amount(texts, request.amount, request.currency)
    token = f"`{escape_mrkdwn(request.subaccount_token)}`"
    what = "home.add" if request.action is Action.ADD else "home.remove"
    return texts(what, amount=amount, token=token)


def _waiting_line(texts: Texts, request: CreditRequest) -> str:
    line = texts(
        "home.waiting.asks",
        requester=mention(texts, request.requester_id),
        request=_what(texts, request),
    )
    if request.reason:
        line += f": {escape_mrkdwn(' '.join(request.reason.split()))}"
    where = texts(
        "home.waiting.where",
        channel=f"<#{request.channel_id}>",
        expires=slack_date(texts, request.expires_at),
    )
    line += f"\n{where}"
    if request.first_approver_id is not None:
        line += texts(
            "home.waiting.first_approval", approver=mention(texts, request.first_approver_id)
        )
    return line


def _mine_line(texts: Texts, request: CreditRequest) -> str:
    return texts(
        "home.mine.line",
        when=slack_date(texts, request.created_at),
        request=_what(texts, request),
        status=texts(f"status.{request.status.value}"),
    )


def _buttons(texts: Texts, request: CreditRequest) -> dict[str, Any]:
    """The card's buttons: same action_ids, values and dialog, so the same listeners handle
    them. Block ids must be unique within a view, hence the request id in each."""
    return {
        "type": "actions",
        "block_id": f"credit_home_{request.id}",
        "elements": [confirm_button(texts, request), cancel_button(texts, request)],
    }
