"""Block Kit builders: pure functions from a stored request to a Slack message.

Every word comes from the catalogues through `texts` (bot.texts), in the process's language.
Every piece of text that came from a user or from SMS Partner goes through `escape_mrkdwn`,
so no input can ping `<!channel>` or make a link. Money is formatted by `texts`, exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from bot.domain import Action, CreditRequest, Status
from bot.flow import reasons
from bot.flow.commands import REASON_MAX_LENGTH, TOKEN_MAX_LENGTH
from bot.flow.policy import CanApprove
from bot.smspartner.errors import explanation_of, vendor_message_in
from bot.texts import Texts, Wording

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


def say(texts: Texts, wording: Wording) -> str:
    """What the flow said, in mrkdwn: its text values escaped."""
    return texts.say(wording, escape=escape_mrkdwn)


def mention(texts: Texts, user_id: str | None) -> str:
    if user_id is None:
        return texts("mention.app")
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(user_id)


def format_amount(texts: Texts, amount: Decimal, currency: str) -> str:
    """A requested amount: always with cents (en `10.50 EUR`, fr `10,50 EUR`)."""
    return texts.format_amount(amount, escape_mrkdwn(currency))


def format_balance(texts: Texts, balance: Decimal | None, currency: str) -> str:
    """A balance as SMS Partner sent it: never rounded (`0.800 EUR` stays 0.800)."""
    return texts.format_balance(balance, escape_mrkdwn(currency))


def slack_date(texts: Texts, when: dt.datetime) -> str:
    """A time every reader sees in their own time zone, with a UTC fallback."""
    fallback = when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{texts('date.pattern')}|{fallback}>"


def _token(request: CreditRequest) -> str:
    return f"`{escape_mrkdwn(request.subaccount_token)}`"


def _describe(texts: Texts, request: CreditRequest) -> str:
    amount = format_amount(texts, request.amount, request.currency)
    verb = "request.add" if request.action is Action.ADD else "request.remove"
    return texts(verb, amount=amount, token=_token(request))


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in pairs],
    }


def _footer(texts: Texts, request: CreditRequest) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": texts("card.footer", request_id=escape_mrkdwn(request.id))}
        ],
    }


def build_confirmation(
    request: CreditRequest, *, texts: Texts, can_approve: CanApprove | None = None
) -> Message:
    """The card posted in the channel: what is asked, by whom, until when, and two buttons.

    Top to bottom: the headline, the reason, the facts (amount, sub-account, balances, who,
    until when), who can approve and how far the approval is, the buttons, the request id.
    `can_approve` (the policy's) names the approvers; without it the line is left out."""
    what = _describe(texts, request)
    blocks = [
        _headline(texts, request),
        *_reason_blocks(texts, request),
        _request_fields(texts, request),
        *_approval_context(texts, request, can_approve),
        _buttons(texts, request),
        _footer(texts, request),
    ]
    # The mentions are in the fallback text too, so every client notifies the approvers.
    text = texts("card.confirm.fallback", request=what)
    if can_approve:
        approvers = approvers_line(texts, request, can_approve)
        text = texts("card.confirm.fallback_with_approvers", request=what, approvers=approvers)
    return {"text": text, "blocks": blocks}


def _headline(texts: Texts, request: CreditRequest) -> Block:
    return _section(
        texts(
            "card.confirm.asks",
            requester=mention(texts, request.requester_id),
            request=_describe(texts, request),
        )
    )


def _reason_blocks(texts: Texts, request: CreditRequest) -> list[Block]:
    """Why the money moves, when the requester said so."""
    if not request.reason:
        return []
    return [_section(f"*{texts('card.field.reason')}*\n{quote_text(request.reason)}")]


def quote_text(text: str) -> str:
    """User text as an mrkdwn quote, escaped: each line quoted, so a line break typed in
    it neither ends the quote nor lets the rest read as our own formatting."""
    return "\n".join(f"&gt; {escape_mrkdwn(line)}" for line in text.splitlines() or [""])


def _request_fields(texts: Texts, request: CreditRequest) -> Block:
    sub_now, sub_after, main_now, main_after = balances_around(request)
    if sub_now is None and main_now is None:
        balances = [(texts("card.field.balances"), texts("card.balances_unavailable"))]
    else:
        balances = [
            (
                texts("card.field.subaccount_balance"),
                _now_and_after(texts, sub_now, sub_after, request.currency),
            ),
            (
                texts("card.field.main_balance"),
                _now_and_after(texts, main_now, main_after, request.currency),
            ),
        ]
    return _fields(
        (texts("card.field.amount"), format_amount(texts, request.amount, request.currency)),
        (texts("card.field.subaccount"), _subaccount_name(request)),
        *balances,
        (texts("card.field.requested_by"), mention(texts, request.requester_id)),
        (texts("card.field.expires"), slack_date(texts, request.expires_at)),
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


def _now_and_after(texts: Texts, now: Decimal | None, after: Decimal | None, currency: str) -> str:
    if now is None or after is None:
        return texts("card.balance.unavailable")
    return f"{format_balance(texts, now, currency)} → {format_balance(texts, after, currency)}"


def _subaccount_name(request: CreditRequest) -> str:
    if request.subaccount_email:
        return f"{_token(request)}\n{escape_mrkdwn(request.subaccount_email)}"
    return _token(request)


def _approval_context(
    texts: Texts, request: CreditRequest, can_approve: CanApprove | None
) -> list[Block]:
    """Who can approve, and how many approvals the request still needs."""
    lines = []
    if can_approve is not None:
        lines.append(
            texts("card.can_approve", approvers=approvers_line(texts, request, can_approve))
        )
    if request.approvals_needed >= 2:
        if request.first_approver_id is None:
            lines.append(texts("card.needs_two"))
        else:
            lines.append(
                texts("card.first_approval", approver=mention(texts, request.first_approver_id))
            )
    if not lines:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": line} for line in lines]}]


def approvers_line(texts: Texts, request: CreditRequest, can_approve: CanApprove) -> str:
    """The approvers as mentions (users, and groups as groups) so Slack notifies them;
    the requester when no approvers are configured."""
    if can_approve.requester_only:
        return mention(texts, request.requester_id)
    people = [mention(texts, user_id) for user_id in can_approve.user_ids]
    groups = [group_mention(group_id) for group_id in can_approve.group_ids]
    return ", ".join(people + groups)


def group_mention(group_id: str) -> str:
    if _GROUP_ID.fullmatch(group_id):
        return f"<!subteam^{group_id}>"
    return escape_mrkdwn(group_id)


def approved_by(texts: Texts, request: CreditRequest) -> str:
    """Who approved: both approvers of a request that needed two."""
    if request.first_approver_id and request.first_approver_id != request.approver_id:
        return f"{mention(texts, request.first_approver_id)}, {mention(texts, request.approver_id)}"
    return mention(texts, request.approver_id)


def confirm_button(texts: Texts, request: CreditRequest) -> Block:
    """Confirm, with its dialog: the same on the card and in the Home tab."""
    dialog_id = "card.dialog.add" if request.action is Action.ADD else "card.dialog.remove"
    # plain_text: nothing in it is interpreted, so no escaping is needed.
    dialog_text = texts(
        dialog_id,
        amount=texts.format_amount(request.amount, request.currency),
        token=request.subaccount_token,
    )
    return {
        "type": "button",
        "action_id": CONFIRM_ACTION_ID,
        "text": {"type": "plain_text", "text": texts("card.button.confirm")},
        "style": "primary",
        "value": request.id,
        "confirm": {
            "title": {"type": "plain_text", "text": texts("card.dialog.title")},
            "text": {"type": "plain_text", "text": dialog_text[:300]},
            "confirm": {"type": "plain_text", "text": texts("card.dialog.yes")},
            "deny": {"type": "plain_text", "text": texts("card.dialog.back")},
        },
    }


def cancel_button(texts: Texts, request: CreditRequest) -> Block:
    return {
        "type": "button",
        "action_id": CANCEL_ACTION_ID,
        "text": {"type": "plain_text", "text": texts("card.button.cancel")},
        "style": "danger",
        "value": request.id,
    }


def _buttons(texts: Texts, request: CreditRequest) -> Block:
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK_ID,
        "elements": [confirm_button(texts, request), cancel_button(texts, request)],
    }


def build_in_progress(request: CreditRequest, *, texts: Texts) -> Message:
    text = texts(
        "card.sending",
        request=_describe(texts, request),
        approvers=approved_by(texts, request),
    )
    return {
        "text": text,
        "blocks": [_section(text), *_reason_blocks(texts, request), _footer(texts, request)],
    }


def build_outcome(request: CreditRequest, *, texts: Texts) -> Message:
    """The card once the request has ended: no buttons left, the outcome stated."""
    builder = _OUTCOMES.get(request.status)
    if builder is None:
        raise ValueError(f"request {request.id} has not ended (status {request.status})")
    text, extra = builder(texts, request)
    return {
        "text": text,
        "blocks": [
            _section(text),
            *_reason_blocks(texts, request),
            *extra,
            _footer(texts, request),
        ],
    }


def _succeeded(texts: Texts, request: CreditRequest) -> tuple[str, list[Block]]:
    verb = "card.succeeded.add" if request.action is Action.ADD else "card.succeeded.remove"
    amount = format_amount(texts, request.amount, request.currency)
    text = texts(verb, amount=amount, token=_token(request))
    if request.resolver_id:
        # Settled by a person: SMS Partner never said what the balances became.
        text += "\n" + texts("card.settled.done", resolver=mention(texts, request.resolver_id))
        return text, [_people(texts, request)]
    fields = _fields(
        (texts("card.field.requested_by"), mention(texts, request.requester_id)),
        (texts("card.field.approved_by"), approved_by(texts, request)),
        (
            texts("card.field.subaccount_balance"),
            _was(
                texts,
                request.subaccount_balance,
                request.subaccount_balance_before,
                request.currency,
            ),
        ),
        (
            texts("card.field.main_balance"),
            _was(texts, request.main_balance, request.main_balance_before, request.currency),
        ),
    )
    return text, [fields]


def _was(texts: Texts, now: Decimal | None, before: Decimal | None, currency: str) -> str:
    """A new balance from SMS Partner's answer, with the one the card showed before."""
    shown = format_balance(texts, now, currency)
    if before is None:
        return shown
    return texts("card.balance.was", now=shown, before=format_balance(texts, before, currency))


def _people(texts: Texts, request: CreditRequest) -> Block:
    return _fields(
        (texts("card.field.requested_by"), mention(texts, request.requester_id)),
        (texts("card.field.approved_by"), approved_by(texts, request)),
    )


def failure_reason(texts: Texts, request: CreditRequest) -> str:
    """Why a transfer failed, in the card's language, from what was stored: SMS Partner's code
    (our explanation, and SMS Partner's own message as it came), or the flow's stored reason."""
    if request.error_code is not None:
        explanation = say(texts, explanation_of(request.error_code))
        vendor = vendor_message_in(request.error_code, request.error_message or "")
        if not vendor:
            return explanation
        return texts(
            "smspartner.with_vendor", explanation=explanation, vendor=escape_mrkdwn(vendor)
        )
    wording = stored_reason(request.error_message)
    return say(texts, wording or Wording.of("card.failed.default_reason"))


def stored_reason(stored: str | None) -> Wording | None:
    """The flow's reason, from the English it stored for the audit trail (bot.flow.reasons)."""
    return reasons.wording_of(stored or "")


def _failed(texts: Texts, request: CreditRequest) -> tuple[str, list[Block]]:
    what = _describe(texts, request)
    if request.resolver_id:
        text = texts(
            "card.settled.not_done",
            request=what,
            resolver=mention(texts, request.resolver_id),
        )
        return text, [_people(texts, request)]
    text = texts("card.failed", request=what, reason=failure_reason(texts, request))
    return text, [_people(texts, request)]


def _unknown(texts: Texts, request: CreditRequest) -> tuple[str, list[Block]]:
    wording = stored_reason(request.error_message)
    reason = say(texts, wording or Wording.of("card.unknown.default_reason"))
    text = texts("card.unknown", request=_describe(texts, request), reason=reason)
    return text, [_people(texts, request), _unknown_buttons(texts, request)]


def _unknown_buttons(texts: Texts, request: CreditRequest) -> Block:
    return {
        "type": "actions",
        "block_id": UNKNOWN_ACTIONS_BLOCK_ID,
        "elements": [
            _button(CHECK_BALANCE_ACTION_ID, texts("card.unknown.check_balances"), request.id),
            _button(RESOLVE_DONE_ACTION_ID, texts("card.unknown.done"), request.id),
            _button(RESOLVE_NOT_DONE_ACTION_ID, texts("card.unknown.not_done"), request.id),
        ],
    }


def _button(action_id: str, label: str, value: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }


def _cancelled(texts: Texts, request: CreditRequest) -> tuple[str, list[Block]]:
    what = _describe(texts, request)
    if request.canceller_id is None:
        wording = stored_reason(request.error_message)
        reason = say(texts, wording) if wording else ""
        return texts("card.cancelled.by_app", request=what, reason=reason).rstrip(), []
    canceller = mention(texts, request.canceller_id)
    return texts("card.cancelled", canceller=canceller, request=what), []


def _expired(texts: Texts, request: CreditRequest) -> tuple[str, list[Block]]:
    return (
        texts(
            "card.expired",
            request=_describe(texts, request),
            expires=slack_date(texts, request.expires_at),
            command=COMMAND,
        ),
        [],
    )


_OUTCOMES = {
    Status.SUCCEEDED: _succeeded,
    Status.FAILED: _failed,
    Status.UNKNOWN: _unknown,
    Status.CANCELLED: _cancelled,
    Status.EXPIRED: _expired,
}


def build_card(
    request: CreditRequest, *, texts: Texts, can_approve: CanApprove | None = None
) -> Message:
    """Whatever the card should show now for this request."""
    if request.status is Status.PENDING:
        return build_confirmation(request, texts=texts, can_approve=can_approve)
    if request.status is Status.EXECUTING:
        return build_in_progress(request, texts=texts)
    return build_outcome(request, texts=texts)


def usage(texts: Texts) -> str:
    return texts("usage.text", max_token=TOKEN_MAX_LENGTH, max_reason=REASON_MAX_LENGTH)


def build_usage(texts: Texts, error: Wording | None = None) -> Message:
    """Ephemeral help, with the reason first when the command was refused."""
    text = usage(texts)
    if error is not None:
        text = texts("usage.with_error", error=say(texts, error), usage=text)
    return {"text": text, "blocks": [_section(text)]}


def build_notice(text: str) -> Message:
    """A short ephemeral answer to a click (refused, already handled, …), already in mrkdwn."""
    return {"text": text, "blocks": [_section(text)]}
