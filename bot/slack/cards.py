"""Posting and replacing confirmation cards in Slack, and answering clickers privately.

Cards are posted with `chat.postMessage`, so their channel and `ts` are known and any
replica can replace them with `chat.update` for as long as they live, not only for the
30 minutes of a `response_url`.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.domain import CreditRequest
from bot.logs import log_event
from bot.slack.blocks import Message, build_card, build_notice
from bot.store import Store

logger = logging.getLogger(__name__)


class Cards:
    def __init__(self, *, client: WebClient, store: Store) -> None:
        self.client = client
        self.store = store

    def post(self, request: CreditRequest) -> str:
        """Post the confirmation card in the request's channel; return its ts.

        Raises SlackApiError (e.g. `not_in_channel`) for the caller to explain."""
        response = self.client.chat_postMessage(channel=request.channel_id, **build_card(request))
        ts = str(response["ts"])
        self.store.attach_card(request_id=request.id, message_ts=ts)
        return ts

    def show(self, request: CreditRequest, *, message_ts: str | None = None) -> bool:
        """Replace the card with what `request` now is; True if Slack took it.

        `message_ts` is the card a click came from: a click can beat `attach_card` when an
        approver is quicker than our own write of the ts Slack gave us."""
        message = build_card(request)
        ts = request.message_ts or message_ts
        try:
            if ts:
                self.client.chat_update(channel=request.channel_id, ts=ts, **message)
            elif request.response_url:
                _respond(request.response_url, {**message, "replace_original": True})
            else:
                return False
        except Exception as error:  # the sweep retries cards that Slack did not take
            log_event(
                logger,
                "card.update_failed",
                level=logging.WARNING,
                request_id=request.id,
                slack_error=_describe_error(error),
            )
            return False
        if request.status.is_final:
            self.store.mark_card(request_id=request.id, status=request.status)
        return True

    def tell(self, *, user_id: str, channel_id: str, response_url: str | None, text: str) -> None:
        """An ephemeral note to one user: through the click's response_url when there is one
        (it works even where the bot is not a member), else chat.postEphemeral."""
        message = build_notice(text)
        try:
            if response_url:
                _respond(
                    response_url,
                    {**message, "response_type": "ephemeral", "replace_original": False},
                )
            else:
                self.client.chat_postEphemeral(channel=channel_id, user=user_id, **message)
        except Exception as error:  # a note that cannot be delivered must not break the flow
            log_event(
                logger,
                "notice.failed",
                level=logging.WARNING,
                user_id=user_id,
                slack_error=_describe_error(error),
            )


def _respond(response_url: str, body: Message) -> None:
    response = WebhookClient(response_url, timeout=10).send_dict(body)
    if response.status_code >= 300:
        log_event(logger, "response_url.failed", level=logging.WARNING, status=response.status_code)


def _describe_error(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return type(error).__name__
