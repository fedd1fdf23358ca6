"""Block Kit builders: pure functions from a stored request to a Slack message.

Every piece of text that came from a user or from SMS Partner goes through
`escape_mrkdwn`, so no input can ping `<!channel>` or make a link. Money is formatted
here and only here.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from bot.domain import Action, CreditRequest, Status
from bot.flow.commands import USAGE
from bot.flow.policy import CanApprove

CONFIRM_ACTION_ID = "credit_confirm"
CANCEL_ACTION_ID = "credit_cancel"
# The unknown-outcome card's buttons (SPEC.md §2.4); each button's value is the request id.
CHECK_BALANCE_ACTION_ID = "credit_check_balance"
RESOLVE_DONE_ACTION_ID = "credit_resolve_done"
RESOLVE_NOT_DONE_ACTION_ID = "credit_resolve_not_done"
UNKNOWN_ACTIONS_BLOCK_ID = "credit_unknown_actions"
ACTIONS_BLOCK_ID = "credit_actions"
COMMAND = "/credit"

Block = dict[str, Any]
Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}", re.ASCII)
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,30}", re.ASCII)


def escape_mrkdwn(text: str) -> str:
    """Slack's own escaping: with these three replaced, no text can form a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str | None) -> str:
    if user_id is None:
        return "the app"
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(user_id)


def format_amount(amount: Decimal, currency: str) -> str:
    """A requested amount: always two decimals ("10.50 EUR")."""
    return f"{amount.quantize(Decimal('0.01')):f} {escape_mrkdwn(currency)}"


def format_balance(balance: Decimal | None, currency: str) -> str:
    """A balance as SMS Partner sent it: never rounded ("0.800 EUR" stays 0.800)."""
    if balance is None:
        return "unknown"
    return f"{balance:f} {escape_mrkdwn(currency)}"


def slack_date(when: dt.datetime) -> str:
    """A time every reader sees in their own time zone, with a UTC fallback."""
    fallback = when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _describe(request: CreditRequest) -> str:
    amount = format_amount(request.amount, request.currency)
    token = f"`{escape_mrkdwn(request.subaccount_token)}`"
    if request.action is Action.ADD:
        return f"add *{amount}* to sub-account {token} (from the main account)"
    return f"remove *{amount}* from sub-account {token} (back to the main account)"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in pairs],
    }


def _footer(request: CreditRequest) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"Request `{escape_mrkdwn(request.id)}`"}],
    }


def build_confirmation(request: CreditRequest, *, can_approve: CanApprove | None = None) -> Message:
    """The card posted in the channel: what is asked, by whom, until when, and two buttons.

    Top to bottom: the headline, the reason, the facts (amount, sub-account, balances, who,
    until when), who can approve and how far the approval is, the buttons, the request id.
    `can_approve` (the policy's) names the approvers; without it the line is left out."""
    what = _describe(request)
    blocks = [
        _headline(request),
        *_reason_blocks(request),
        _request_fields(request),
        *_approval_context(request, can_approve),
        _buttons(request),
        _footer(request),
    ]
    # The mentions are in the fallback text too, so every client notifies the approvers.
    who = f" Can approve: {approvers_line(request, can_approve)}." if can_approve else ""
    return {"text": f"Credit request: {what}. Waiting for approval.{who}", "blocks": blocks}


def _headline(request: CreditRequest) -> Block:
    return _section(
        f":money_with_wings: {mention(request.requester_id)} asks to {_describe(request)}."
    )


def _reason_blocks(request: CreditRequest) -> list[Block]:
    """Why the money moves, when the requester said so."""
    if not request.reason:
        return []
    return [_section(f"*Reason*\n{quote_text(request.reason)}")]


def quote_text(text: str) -> str:
    """User text as an mrkdwn quote, escaped: each line quoted, so a line break typed in
    it neither ends the quote nor lets the rest read as our own formatting."""
    return "\n".join(f"&gt; {escape_mrkdwn(line)}" for line in text.splitlines() or [""])


def _request_fields(request: CreditRequest) -> Block:
    sub_now, sub_after, main_now, main_after = balances_around(request)
    if sub_now is None and main_now is None:
        balances = [("Balances", "unavailable: SMS Partner could not be read")]
    else:
        balances = [
            ("Sub-account balance", _now_and_after(sub_now, sub_after, request.currency)),
            ("Main account balance", _now_and_after(main_now, main_after, request.currency)),
        ]
    return _fields(
        ("Amount", format_amount(request.amount, request.currency)),
        ("Sub-account", _subaccount_name(request)),
        *balances,
        ("Requested by", mention(request.requester_id)),
        ("Expires", slack_date(request.expires_at)),
    )


def balances_around(
    request: CreditRequest,
) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
    """The sub-account's and the main account's balances seen, and after the move (exact)."""
    sub, main = request.subaccount_balance_before, request.main_balance_before
    moved = request.amount if request.action is Action.ADD else -request.amount
    return (
        sub,
        None if sub is None else sub + moved,
        main,
        None if main is None else main - moved,
    )


def _now_and_after(now: Decimal | None, after: Decimal | None, currency: str) -> str:
    if now is None or after is None:
        return "unavailable"
    return f"{format_balance(now, currency)} → {format_balance(after, currency)}"


def _subaccount_name(request: CreditRequest) -> str:
    token = f"`{escape_mrkdwn(request.subaccount_token)}`"
    if request.subaccount_email:
        return f"{token}\n{escape_mrkdwn(request.subaccount_email)}"
    return token


def _approval_context(request: CreditRequest, can_approve: CanApprove | None) -> list[Block]:
    """Who can approve, and how many approvals the request still needs."""
    lines = []
    if can_approve is not None:
        lines.append(f"Can approve: {approvers_line(request, can_approve)}")
    if request.approvals_needed >= 2:
        if request.first_approver_id is None:
            lines.append("Needs 2 approvals, from two different approvers.")
        else:
            lines.append(
                f"Approved by {mention(request.first_approver_id)} (1 of 2), "
                "waiting for a second approver."
            )
    if not lines:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": line} for line in lines]}]


def approvers_line(request: CreditRequest, can_approve: CanApprove) -> str:
    """The approvers as mentions (users, and groups as groups) so Slack notifies them;
    the requester when no approvers are configured."""
    if can_approve.requester_only:
        return mention(request.requester_id)
    people = [mention(user_id) for user_id in can_approve.user_ids]
    groups = [group_mention(group_id) for group_id in can_approve.group_ids]
    return ", ".join(people + groups)


def group_mention(group_id: str) -> str:
    if _GROUP_ID.fullmatch(group_id):
        return f"<!subteam^{group_id}>"
    return escape_mrkdwn(group_id)


def approved_by(request: CreditRequest) -> str:
    """Who approved: both approvers of a request that needed two."""
    if request.first_approver_id and request.first_approver_id != request.approver_id:
        return f"{mention(request.first_approver_id)}, {mention(request.approver_id)}"
    return mention(request.approver_id)


def _buttons(request: CreditRequest) -> Block:
    dialog_text = (
        f"{'Add' if request.action is Action.ADD else 'Remove'} "
        f"{format_amount(request.amount, request.currency)} "
        f"{'to' if request.action is Action.ADD else 'from'} sub-account "
        f"{request.subaccount_token}? This moves money at SMS Partner."
    )
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": CONFIRM_ACTION_ID,
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": request.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Move the credit?"},
                    # plain_text: nothing in it is interpreted, so no escaping is needed.
                    "text": {"type": "plain_text", "text": dialog_text[:300]},
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


def build_in_progress(request: CreditRequest) -> Message:
    text = (
        f":hourglass_flowing_sand: Sending to SMS Partner: {_describe(request)}. "
        f"Approved by {approved_by(request)}."
    )
    return {"text": text, "blocks": [_section(text), *_reason_blocks(request), _footer(request)]}


def build_outcome(request: CreditRequest) -> Message:
    """The card once the request has ended: no buttons left, the outcome stated."""
    builder = _OUTCOMES.get(request.status)
    if builder is None:
        raise ValueError(f"request {request.id} has not ended (status {request.status})")
    text, extra = builder(request)
    return {
        "text": text,
        "blocks": [_section(text), *_reason_blocks(request), *extra, _footer(request)],
    }


def _succeeded(request: CreditRequest) -> tuple[str, list[Block]]:
    verb = "Added" if request.action is Action.ADD else "Removed"
    where = "to" if request.action is Action.ADD else "from"
    amount = format_amount(request.amount, request.currency)
    token = f"`{escape_mrkdwn(request.subaccount_token)}`"
    text = f":white_check_mark: {verb} *{amount}* {where} sub-account {token}."
    if request.resolver_id:
        # Settled by a person: SMS Partner never said what the balances became.
        text += (
            f"\nMarked as gone through by {mention(request.resolver_id)}, who checked SMS Partner."
        )
        return text, [_people(request)]
    fields = _fields(
        ("Requested by", mention(request.requester_id)),
        ("Approved by", approved_by(request)),
        (
            "Sub-account balance",
            _was(request.subaccount_balance, request.subaccount_balance_before, request.currency),
        ),
        (
            "Main account balance",
            _was(request.main_balance, request.main_balance_before, request.currency),
        ),
    )
    return text, [fields]


def _was(now: Decimal | None, before: Decimal | None, currency: str) -> str:
    """A new balance from SMS Partner's answer, with the one the card showed before."""
    shown = format_balance(now, currency)
    return shown if before is None else f"{shown} (was {format_balance(before, currency)})"


def _people(request: CreditRequest) -> Block:
    return _fields(
        ("Requested by", mention(request.requester_id)),
        ("Approved by", approved_by(request)),
    )


def _failed(request: CreditRequest) -> tuple[str, list[Block]]:
    if request.resolver_id:
        return (
            f":x: The transfer did not go through: {_describe(request)}.\n"
            f"Marked as not done by {mention(request.resolver_id)}, who checked SMS Partner. "
            "Nothing will be sent again; ask again with `/credit` if it is still needed.",
            [_people(request)],
        )
    reason = escape_mrkdwn(request.error_message or "SMS Partner refused the transfer.")
    return f":x: The transfer did not go through: {_describe(request)}.\n{reason}", [
        _people(request)
    ]


def _unknown(request: CreditRequest) -> tuple[str, list[Block]]:
    reason = escape_mrkdwn(request.error_message or "No answer came from SMS Partner.")
    text = (
        f":warning: *Outcome unknown*: {_describe(request)}.\n{reason}\n"
        "The transfer *may or may not have happened*. Check the balances, then say whether "
        "it went through; the bot will not send it again by itself."
    )
    return text, [_people(request), _unknown_buttons(request)]


def _unknown_buttons(request: CreditRequest) -> Block:
    return {
        "type": "actions",
        "block_id": UNKNOWN_ACTIONS_BLOCK_ID,
        "elements": [
            _button(CHECK_BALANCE_ACTION_ID, "Check balances", request.id),
            _button(RESOLVE_DONE_ACTION_ID, "It went through", request.id),
            _button(RESOLVE_NOT_DONE_ACTION_ID, "It did not", request.id),
        ],
    }


def _button(action_id: str, label: str, value: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }


def _cancelled(request: CreditRequest) -> tuple[str, list[Block]]:
    if request.canceller_id is None:
        reason = escape_mrkdwn(request.error_message or "")
        return f":no_entry_sign: Cancelled by the app: {_describe(request)}. {reason}", []
    return (
        f":no_entry_sign: Cancelled by {mention(request.canceller_id)}: {_describe(request)}. "
        "Nothing moved.",
        [],
    )


def _expired(request: CreditRequest) -> tuple[str, list[Block]]:
    return (
        f":hourglass: Expired: {_describe(request)} was not confirmed before "
        f"{slack_date(request.expires_at)}. Nothing moved; ask again with `{COMMAND}` "
        "if it is still needed.",
        [],
    )


_OUTCOMES = {
    Status.SUCCEEDED: _succeeded,
    Status.FAILED: _failed,
    Status.UNKNOWN: _unknown,
    Status.CANCELLED: _cancelled,
    Status.EXPIRED: _expired,
}


def build_card(request: CreditRequest, *, can_approve: CanApprove | None = None) -> Message:
    """Whatever the card should show now for this request."""
    if request.status is Status.PENDING:
        return build_confirmation(request, can_approve=can_approve)
    if request.status is Status.EXECUTING:
        return build_in_progress(request)
    return build_outcome(request)


def build_usage(error: str | None = None) -> Message:
    """Ephemeral help, with the reason first when the command was refused."""
    text = f":warning: {error}\n\n{USAGE}" if error else USAGE
    return {"text": text, "blocks": [_section(text)]}


def build_notice(text: str) -> Message:
    """A short ephemeral answer to a click (refused, already handled, …)."""
    return {"text": text, "blocks": [_section(text)]}
