"""`/credit`: validate at once in the ack, then store the request and post its card."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.blocks import Message, build_usage, escape_mrkdwn
from bot.cards import Cards
from bot.commands import CreditCommand, HelpCommand, UsageError, parse_command
from bot.logs import log_event
from bot.policy import Policy
from bot.transfers import Transfers

logger = logging.getLogger(__name__)

NOT_IN_CHANNEL_ERRORS = {"not_in_channel", "channel_not_found", "is_archived"}


def evaluate(
    command: dict[str, Any], *, policy: Policy, max_amount: Decimal
) -> CreditCommand | Message:
    """The request to open, or the ephemeral answer that explains why not."""
    refusal = policy.refuse_request(
        user_id=str(command.get("user_id", "")), channel_id=str(command.get("channel_id", ""))
    )
    try:
        parsed = parse_command(str(command.get("text", "")), max_amount=max_amount)
    except UsageError as error:
        return build_usage(escape_mrkdwn(error.message))
    if isinstance(parsed, HelpCommand):
        return build_usage()
    if refusal:
        return build_usage(escape_mrkdwn(refusal))
    return parsed


def make_command_listeners(
    *, transfers: Transfers, cards: Cards, max_amount: Decimal
) -> tuple[Callable[..., None], Callable[..., None]]:
    def acknowledge(ack: Any, command: dict[str, Any]) -> None:
        # Only in-memory work here: Slack is waiting, and the user sees errors at once.
        result = evaluate(command, policy=transfers.policy, max_amount=max_amount)
        if isinstance(result, CreditCommand):
            ack()
        else:
            log_event(
                logger,
                "command.refused",
                user_id=command.get("user_id"),
                channel_id=command.get("channel_id"),
            )
            ack(response_type="ephemeral", **result)

    def open_request(command: dict[str, Any], respond: Any) -> None:
        result = evaluate(command, policy=transfers.policy, max_amount=max_amount)
        if not isinstance(result, CreditCommand):
            return
        request = transfers.open(
            result,
            requester_id=command["user_id"],
            channel_id=command["channel_id"],
            response_url=command.get("response_url"),
        )
        try:
            cards.post(request)
        except SlackApiError as error:
            code = str(error.response.get("error"))
            transfers.store.abandon(request_id=request.id, reason=f"Slack refused the card: {code}")
            log_event(
                logger,
                "card.post_failed",
                level=logging.WARNING,
                request_id=request.id,
                slack_error=code,
            )
            if code in NOT_IN_CHANNEL_ERRORS:
                text = (
                    "I cannot post in this channel. Invite me with `/invite @credit-bot`, "
                    "then ask again. Nothing was requested."
                )
            else:
                text = (
                    f"Slack would not take the confirmation card ({code}). Nothing was requested."
                )
            respond(response_type="ephemeral", replace_original=False, text=text)

    return acknowledge, open_request
