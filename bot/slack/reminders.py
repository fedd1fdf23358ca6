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
from bot.texts import Texts

logger = logging.getLogger(__name__)


def reminder_text(texts: Texts, request: CreditRequest, can_approve: CanApprove) -> str:
    """The thread reply: the approvers mentioned (so Slack notifies them), and what waits."""
    values = {
        "approvers": approvers_line(texts, request, can_approve),
        "amount": format_amount(texts, request.amount, request.currency),
        "requester": mention(texts, request.requester_id),
    }
    if request.first_approver_id is not None:
        return texts(
            "reminder.second", approver=mention(texts, request.first_approver_id), **values
        )
    return texts("reminder.first", **values)


def make_reminder(
    client: WebClient, can_approve: CanApprove, texts: Texts
) -> Callable[[CreditRequest], bool]:
    """The sweeper's `remind`: True when Slack took the reply."""

    def remind(request: CreditRequest) -> bool:
        message = build_notice(reminder_text(texts, request, can_approve))
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
