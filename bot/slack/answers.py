"""Block Kit for the private answers that read rather than move money: the refusals before a
card (SPEC.md §2.2), `/credit balance`, `/credit history`, and Check balances on an unknown card.

Pure functions, like bot.slack.blocks: every word from the catalogues through `texts`, every
token, e-mail and vendor text escaped, and balances shown with every digit SMS Partner sent.
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
from bot.texts import Texts

# `/credit balance` lists this many sub-accounts, lowest balance first, then "and N more".
BALANCE_LIST_MAX = 30
# Slack refuses a section text longer than 3000 characters: long lists are split.
SECTION_MAX_CHARS = 3000


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


def build_not_found(texts: Texts, name: str, close_matches: Sequence[str]) -> Message:
    """No such token or e-mail in the account's list; nothing was requested."""
    text = texts("lookup.not_found", subaccount=_code(name))
    if close_matches:
        suggestions = texts.format_list((_code(m) for m in close_matches), joined_by="or")
        text += "\n" + texts("lookup.did_you_mean", suggestions=suggestions)
    return _message(text)


def build_insufficient(
    texts: Texts, action: Action, balance: Decimal, currency: str, amount: Decimal
) -> Message:
    """The account the money would come from holds less than the amount."""
    source = "lookup.insufficient.add" if action is Action.ADD else "lookup.insufficient.remove"
    text = texts(
        source,
        balance=format_balance(texts, balance, currency),
        amount=format_amount(texts, amount, currency),
    )
    return _message(text)


def build_cannot_resolve(texts: Texts, name: str) -> Message:
    """An e-mail could not be turned into a token: the list could not be read."""
    return _message(texts("lookup.cannot_resolve", email=_code(name)))


# -- /credit balance ----------------------------------------------------------------------


def _main_line(texts: Texts, main: MainAccount | None) -> str:
    if main is None:
        return texts("balance.main.unavailable")
    return texts("balance.main", balance=format_balance(texts, main.balance, main.currency))


def _email(texts: Texts, subaccount: Subaccount) -> str:
    return escape_mrkdwn(subaccount.email) if subaccount.email else texts("balance.no_email")


def _subaccount_line(texts: Texts, subaccount: Subaccount) -> str:
    balance = format_balance(texts, subaccount.balance, subaccount.currency)
    return f"• {_email(texts, subaccount)} · {_code(subaccount.token)} · {balance}"


def build_balance_of(texts: Texts, main: MainAccount | None, subaccount: Subaccount) -> Message:
    """`/credit balance <sub-account>`: the main account, and that sub-account."""
    return _message(
        _main_line(texts, main),
        [
            texts(
                "balance.subaccount",
                token=_code(subaccount.token),
                email=_email(texts, subaccount),
                balance=format_balance(texts, subaccount.balance, subaccount.currency),
            )
        ],
    )


def build_balances(
    texts: Texts, main: MainAccount | None, subaccounts: Sequence[Subaccount] | None
) -> Message:
    """`/credit balance`: the main account and every sub-account, lowest balance first."""
    if subaccounts is None:
        return _message(_main_line(texts, main), [texts("balance.list.unavailable")])
    if not subaccounts:
        return _message(_main_line(texts, main), [texts("balance.list.empty")])
    lowest_first = sorted(subaccounts, key=lambda s: (s.balance, s.token))
    lines = [texts("balance.list.title", count=len(subaccounts))]
    lines += [_subaccount_line(texts, s) for s in lowest_first[:BALANCE_LIST_MAX]]
    if len(subaccounts) > BALANCE_LIST_MAX:
        lines.append(texts("balance.list.more", count=len(subaccounts) - BALANCE_LIST_MAX))
    return _message(_main_line(texts, main), lines)


def build_unreadable(texts: Texts) -> Message:
    return _message(texts("balance.unreadable"))


# -- /credit history ----------------------------------------------------------------------


def _what(texts: Texts, request: CreditRequest) -> str:
    amount = format_amount(texts, request.amount, request.currency)
    what = "history.add" if request.action is Action.ADD else "history.remove"
    return texts(what, amount=amount, token=_code(request.subaccount_token))


def _state(texts: Texts, request: CreditRequest) -> str:
    status = texts(f"status.{request.status.value}")
    if request.resolver_id:
        return texts("history.settled", status=status, resolver=mention(texts, request.resolver_id))
    if request.status is Status.CANCELLED and request.canceller_id:
        return texts("history.cancelled_by", canceller=mention(texts, request.canceller_id))
    return status


def _approvers(texts: Texts, request: CreditRequest) -> str:
    approvers = [a for a in (request.first_approver_id, request.approver_id) if a]
    if not approvers:
        return texts("history.not_approved")
    people = texts.format_list(
        (mention(texts, a) for a in dict.fromkeys(approvers)), joined_by="and"
    )
    return texts("history.approved_by", approvers=people)


def history_line(texts: Texts, request: CreditRequest) -> str:
    return (
        f"• {slack_date(texts, request.created_at)} · {mention(texts, request.requester_id)} · "
        f"{_what(texts, request)} · {_approvers(texts, request)} · *{_state(texts, request)}*"
    )


def build_history(
    texts: Texts, requests: Sequence[CreditRequest], subaccount: str | None
) -> Message:
    """`/credit history [sub-account]`: the latest requests, newest first."""
    if not requests:
        if subaccount:
            return _message(texts("history.empty.subaccount", token=_code(subaccount)))
        return _message(texts("history.empty"))
    if subaccount:
        title = texts("history.title.subaccount", count=len(requests), token=_code(subaccount))
    else:
        title = texts("history.title", count=len(requests))
    return _message(title, [history_line(texts, r) for r in requests])


# -- Check balances on an unknown card ----------------------------------------------------------


def build_balances_now(
    texts: Texts,
    request: CreditRequest,
    subaccount_now: Decimal | None,
    main_now: Decimal | None,
) -> Message:
    """The balances now beside those the card showed, to tell whether the transfer happened."""

    def line(name: str, before: Decimal | None, now: Decimal | None) -> str:
        shown_before = (
            format_balance(texts, before, request.currency)
            if before is not None
            else texts("check.not_seen")
        )
        shown_now = (
            format_balance(texts, now, request.currency)
            if now is not None
            else texts("check.unavailable")
        )
        if request.balances_seen_at:
            return texts(
                "check.line.seen",
                name=name,
                now=shown_now,
                before=shown_before,
                seen=slack_date(texts, request.balances_seen_at),
            )
        return texts("check.line", name=name, now=shown_now, before=shown_before)

    moved = "check.title.add" if request.action is Action.ADD else "check.title.remove"
    text = texts(
        moved,
        request_id=_code(request.id),
        amount=format_amount(texts, request.amount, request.currency),
        token=_code(request.subaccount_token),
    )
    return _message(
        text,
        [
            line(texts("card.field.subaccount"), request.subaccount_balance_before, subaccount_now),
            line(texts("check.main_account"), request.main_balance_before, main_now),
            texts("check.advice"),
        ],
    )
