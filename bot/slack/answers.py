"""Block Kit for the private answers that read rather than move money: the refusals before a
card (SPEC.md §2.2), `/credit balance`, `/credit history`, and Check balances on an unknown card.

Pure functions, like bot.slack.blocks: every token, e-mail and vendor text is escaped, and
balances are shown exactly as SMS Partner sent them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from bot.domain import Action, CreditRequest, Status
from bot.slack.blocks import (
    Block,
    Message,
    escape_mrkdwn,
    format_amount,
    format_balance,
    mention,
    slack_date,
)
from bot.smspartner.accounts import MainAccount, Subaccount

# `/credit balance` lists this many sub-accounts, lowest balance first, then "and N more".
BALANCE_LIST_MAX = 30
# Slack refuses a section text longer than 3000 characters: long lists are split.
SECTION_MAX_CHARS = 3000
UNREADABLE = "SMS Partner cannot be read right now"


def _message(text: str, lines: Sequence[str] = ()) -> Message:
    return {"text": text, "blocks": [_section(text), *_sections(lines)]}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _sections(lines: Iterable[str]) -> list[Block]:
    """Lines packed into as few sections as Slack's length limit allows."""
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > SECTION_MAX_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line[:SECTION_MAX_CHARS])
        size += len(line) + 1
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return blocks


def _code(text: str) -> str:
    return f"`{escape_mrkdwn(text)}`"


# -- before the card ----------------------------------------------------------------------


def build_not_found(name: str, close_matches: Sequence[str]) -> Message:
    """No such token or e-mail in the account's list; nothing was requested."""
    text = f":mag: No sub-account {_code(name)} in this SMS Partner account. Nothing was requested."
    if close_matches:
        text += "\nDid you mean " + ", ".join(_code(m) for m in close_matches) + "?"
    return _message(text)


def build_insufficient(action: Action, balance: Decimal, currency: str, amount: Decimal) -> Message:
    """The account the money would come from holds less than the amount."""
    source = "The main account" if action is Action.ADD else "The sub-account"
    text = (
        f":no_entry: {source} holds {format_balance(balance, currency)}, less than the "
        f"{format_amount(amount, currency)} asked. Nothing was requested."
    )
    return _message(text)


def build_cannot_resolve(name: str) -> Message:
    """An e-mail could not be turned into a token: the list could not be read."""
    text = (
        f":warning: {UNREADABLE}, so the e-mail {_code(name)} cannot be matched to its "
        "sub-account. Nothing was requested: try again in a minute, or use the token."
    )
    return _message(text)


# -- /credit balance ----------------------------------------------------------------------


def _main_line(main: MainAccount | None) -> str:
    if main is None:
        return f"*Main account*: unavailable ({UNREADABLE})"
    return f"*Main account*: {format_balance(main.balance, main.currency)}"


def _subaccount_line(subaccount: Subaccount) -> str:
    email = escape_mrkdwn(subaccount.email) if subaccount.email else "no e-mail"
    balance = format_balance(subaccount.balance, subaccount.currency)
    return f"• {email} · {_code(subaccount.token)} · {balance}"


def build_balance_of(main: MainAccount | None, subaccount: Subaccount) -> Message:
    """`/credit balance <sub-account>`: the main account, and that sub-account."""
    return _message(
        _main_line(main),
        [
            f"*Sub-account* {_code(subaccount.token)} "
            f"({escape_mrkdwn(subaccount.email) if subaccount.email else 'no e-mail'}): "
            f"{format_balance(subaccount.balance, subaccount.currency)}"
        ],
    )


def build_balances(main: MainAccount | None, subaccounts: Sequence[Subaccount] | None) -> Message:
    """`/credit balance`: the main account and every sub-account, lowest balance first."""
    if subaccounts is None:
        return _message(_main_line(main), [f"*Sub-accounts*: unavailable ({UNREADABLE})"])
    if not subaccounts:
        return _message(_main_line(main), ["*Sub-accounts*: none in this SMS Partner account"])
    lowest_first = sorted(subaccounts, key=lambda s: (s.balance, s.token))
    lines = [f"*Sub-accounts* ({len(subaccounts)}, lowest balance first)"]
    lines += [_subaccount_line(s) for s in lowest_first[:BALANCE_LIST_MAX]]
    if len(subaccounts) > BALANCE_LIST_MAX:
        lines.append(f"and {len(subaccounts) - BALANCE_LIST_MAX} more")
    return _message(_main_line(main), lines)


def build_unreadable() -> Message:
    return _message(f":warning: {UNREADABLE}. Nothing moved; try again in a minute.")


# -- /credit history ----------------------------------------------------------------------


def _what(request: CreditRequest) -> str:
    amount = format_amount(request.amount, request.currency)
    if request.action is Action.ADD:
        return f"add {amount} to {_code(request.subaccount_token)}"
    return f"remove {amount} from {_code(request.subaccount_token)}"


def _state(request: CreditRequest) -> str:
    if request.resolver_id:
        return f"{request.status.value} (settled by {mention(request.resolver_id)})"
    if request.status is Status.CANCELLED and request.canceller_id:
        return f"cancelled by {mention(request.canceller_id)}"
    return request.status.value


def _approvers(request: CreditRequest) -> str:
    approvers = [a for a in (request.first_approver_id, request.approver_id) if a]
    if not approvers:
        return "not approved"
    return "approved by " + " and ".join(mention(a) for a in dict.fromkeys(approvers))


def history_line(request: CreditRequest) -> str:
    return (
        f"• {slack_date(request.created_at)} · {mention(request.requester_id)} · "
        f"{_what(request)} · {_approvers(request)} · *{_state(request)}*"
    )


def build_history(requests: Sequence[CreditRequest], subaccount: str | None) -> Message:
    """`/credit history [sub-account]`: the latest requests, newest first."""
    whose = f" of {_code(subaccount)}" if subaccount else ""
    if not requests:
        return _message(f"No requests{whose} yet.")
    return _message(
        f"*The {len(requests)} latest requests{whose}*, newest first",
        [history_line(r) for r in requests],
    )


# -- Check balances on an unknown card ----------------------------------------------------------


def build_balances_now(
    request: CreditRequest, subaccount_now: Decimal | None, main_now: Decimal | None
) -> Message:
    """The balances now beside those the card showed, to tell whether the transfer happened."""
    seen = f" (seen {slack_date(request.balances_seen_at)})" if request.balances_seen_at else ""

    def line(name: str, before: Decimal | None, now: Decimal | None) -> str:
        shown_before = (
            format_balance(before, request.currency) if before is not None else "not seen"
        )
        shown_now = (
            format_balance(now, request.currency)
            if now is not None
            else f"unavailable ({UNREADABLE})"
        )
        return f"*{name}*: now {shown_now}; when the card was posted{seen}: {shown_before}"

    moved = "into" if request.action is Action.ADD else "out of"
    text = (
        f"Request {_code(request.id)}: {format_amount(request.amount, request.currency)} "
        f"{moved} {_code(request.subaccount_token)}, outcome unknown."
    )
    return _message(
        text,
        [
            line("Sub-account", request.subaccount_balance_before, subaccount_now),
            line("Main account", request.main_balance_before, main_now),
            "If the balances moved by the amount, it went through. Other transfers may have "
            "moved them too: check SMS Partner's history before you say.",
        ],
    )
