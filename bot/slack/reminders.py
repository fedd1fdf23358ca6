"""The reminder's Slack side: one reply in a pending card's thread naming who can approve.

The sweeper decides when, and claims the reminder in the store first (once per request,
across replicas); this only writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient

from bot.domain import CreditRequest
from bot.flow.policy import CanApprove
from bot.logs import log_event
from bot.slack.blocks import approvers_line, build_notice, format_amount, mention

logger = logging.getLogger(__name__)


def reminder_text(request: CreditRequest, can_approve: CanApprove) -> str:
    """The thread reply: the approvers mentioned (so Slack notifies them), and what waits."""
    amount = format_amount(request.amount, request.currency)
    waiting = f"{amount} asked by {mention(request.requester_id)}"
    if request.first_approver_id is not None:
        return (
            f":bell: {approvers_line(request, can_approve)}: this request ({waiting}) was "
            f"approved by {mention(request.first_approver_id)} (1 of 2) and still needs a "
            "second approver."
        )
    return (
        f":bell: {approvers_line(request, can_approve)}: this request ({waiting}) is still "
        "waiting for approval."
    )


def make_reminder(client: WebClient, can_approve: CanApprove) -> Callable[[CreditRequest], bool]:
    """The sweeper's `remind`: True when Slack took the reply."""

    def remind(request: CreditRequest) -> bool:
        message = build_notice(reminder_text(request, can_approve))
        try:
            client.chat_postMessage(
                channel=request.channel_id, thread_ts=request.message_ts, **message
            )
        except Exception as error:  # a lost reminder must not stop the sweep
            log_event(
                logger,
                "reminder.failed",
                level=logging.WARNING,
                request_id=request.id,
                error=type(error).__name__,
            )
            return False
        log_event(logger, "reminder.sent", request_id=request.id)
        return True

    return remind
