"""Confirm and Cancel clicks: ack at once, then decide and answer outside the ack path."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.domain import CreditRequest, Status
from bot.flow.transfers import DATABASE_ERRORS, CardChanged, Outcome, Refused, Transfers
from bot.logs import log_event, log_failure
from bot.slack.blocks import mention, say
from bot.slack.cards import Cards
from bot.slack.scheduling import Priorities
from bot.texts import Texts

logger = logging.getLogger(__name__)

# "Sending to SMS Partner" replaces the buttons only if the transfer is still under way this
# long after its claim. SMS Partner usually answers sooner, and the card then goes from the
# buttons straight to the outcome: one chat.update a click instead of two (Slack limits
# chat.update per channel), and no flash of a state already over.
SENDING_SHOWN_AFTER = 0.5

_REQUEST_ID = re.compile(r"cr_[A-Za-z0-9_-]{10,60}", re.ASCII)
_SLACK_ID = re.compile(r"[A-Z0-9]{2,32}", re.ASCII)


@dataclass(frozen=True)
class Click:
    """The facts of a click that Slack signed: who, where, on which request."""

    user_id: str
    channel_id: str | None  # None: clicked in the Home tab, which has no channel
    request_id: str
    message_ts: str | None
    response_url: str | None

    @property
    def from_home(self) -> bool:
        return self.channel_id is None


def read_click(body: Any) -> Click | None:
    """The click, or None if the payload is not one of our buttons as Slack sends it."""
    if not isinstance(body, dict):
        return None
    user = body.get("user")
    container = body.get("container")
    # The Home tab's buttons sit in a view: no channel; the request's own is used.
    from_home = isinstance(container, dict) and container.get("type") == "view"
    channel = {} if from_home else body.get("channel") or container
    actions = body.get("actions")
    if not (isinstance(user, dict) and isinstance(channel, dict) and isinstance(actions, list)):
        return None
    if not actions or not isinstance(actions[0], dict):
        return None
    user_id = user.get("id")
    channel_id = channel.get("id") or channel.get("channel_id")
    value = actions[0].get("value")
    response_url = body.get("response_url")
    message_ts = container.get("message_ts") if isinstance(container, dict) else None
    if not (isinstance(user_id, str) and _SLACK_ID.fullmatch(user_id)):
        return None
    if not from_home and not (isinstance(channel_id, str) and _SLACK_ID.fullmatch(channel_id)):
        return None
    if not (isinstance(value, str) and _REQUEST_ID.fullmatch(value)):
        return None
    return Click(
        user_id=user_id,
        channel_id=None if from_home else channel_id,
        request_id=value,
        message_ts=message_ts if isinstance(message_ts, str) else None,
        response_url=response_url if isinstance(response_url, str) else None,
    )


def describe_handled(texts: Texts, request: CreditRequest) -> str:
    """Why a click on this request does nothing now, in a sentence per state."""
    who = mention(texts, request.handled_by)
    status = request.status
    if status is Status.CANCELLED and request.canceller_id is None:
        return texts("handled.closed_by_app")
    if status in _HANDLED_WITH_WHO:
        return texts(f"handled.{status.value}", who=who)
    return texts(f"handled.{status.value}")


# The states whose "already handled" sentence names who handled the request.
_HANDLED_WITH_WHO = frozenset(
    {Status.EXECUTING, Status.SUCCEEDED, Status.FAILED, Status.UNKNOWN, Status.CANCELLED}
)


def make_action_listeners(
    *,
    transfers: Transfers,
    cards: Cards,
    refresh_home: Callable[[str, str | None], object] | None = None,
    priorities: Priorities,
) -> tuple[Callable[..., None], Callable[..., None], Callable[..., None]]:
    """`refresh_home(user_id, notice)` publishes a user's Home tab again after a click made
    in it, with `notice` (a refusal, "already handled") at its top: a view has no thread
    or response_url to answer in."""

    def acknowledge(ack: Any) -> None:
        ack()

    def sending(request: CreditRequest, click: Click) -> None:
        priorities.sends.started()
        cards.show_soon(request, message_ts=click.message_ts, after_seconds=SENDING_SHOWN_AFTER)

    def answer(click: Click, outcome: Outcome) -> None:
        if isinstance(outcome, CardChanged):
            # In the card pool, not this transfer thread: a burst's transfers go first.
            cards.show_soon(
                outcome.request, message_ts=click.message_ts, fallback_url=click.response_url
            )
            if click.from_home and refresh_home is not None:
                refresh_home(click.user_id, None)
            return
        if isinstance(outcome, Refused):
            tell(click, say(cards.texts, outcome.wording))
        else:
            tell(click, describe_handled(cards.texts, outcome.request))

    def tell(click: Click, text: str) -> None:
        if click.channel_id is None:
            if refresh_home is not None:
                refresh_home(click.user_id, text)
            return
        cards.tell(
            user_id=click.user_id,
            channel_id=click.channel_id,
            response_url=click.response_url,
            text=text,
        )

    def refuse_malformed(body: Any) -> None:
        # Slack never sends our buttons like this; still, answer whoever clicked if we can:
        # the response_url alone reaches them, whatever else the payload lacks.
        user = body.get("user") if isinstance(body, dict) else None
        user_id = user.get("id") if isinstance(user, dict) else None
        user_id = user_id if isinstance(user_id, str) else None
        response_url = body.get("response_url") if isinstance(body, dict) else None
        log_event(logger, "click.malformed", level=logging.WARNING, user_id=user_id)
        if isinstance(response_url, str) and response_url:
            cards.tell(
                user_id=user_id or "",
                channel_id="",
                response_url=response_url,
                text=cards.texts("click.malformed"),
            )

    def on_click(action: str, decide: Callable[[Click], Outcome]) -> Callable[[Any], None]:
        """The work behind one button: read the click, log it, decide, answer."""

        def handle(body: Any) -> None:
            try:
                click = read_click(body)
                if click is None:
                    refuse_malformed(body)
                    return
                log_event(
                    logger,
                    f"click.{action}",
                    request_id=click.request_id,
                    user_id=click.user_id,
                    channel_id=click.channel_id,
                    from_home=click.from_home,
                )
                try:
                    outcome = decide(click)
                except DATABASE_ERRORS as error:
                    log_event(
                        logger,
                        f"click.{action}_database_away",
                        level=logging.WARNING,
                        request_id=click.request_id,
                        error=type(error).__name__,
                    )
                    tell(click, cards.texts("notice.database_away.click"))
                    return
                answer(click, outcome)
            except Exception:
                # The boundary: an exception in a worker would vanish with its Future; log it
                # with its traceback.
                log_failure(logger, "click.failed", action=action)

        return handle

    confirm = on_click(
        "confirm",
        lambda click: transfers.confirm(
            click.request_id,
            user_id=click.user_id,
            channel_id=click.channel_id,
            # The buttons go away while the transfer is under way, if it still is a moment
            # after the claim; both updates run in another thread: the send waits for
            # neither, the outcome for no database.
            on_executing=lambda request: sending(request, click),
            on_outcome=lambda request: cards.show_soon(
                request, message_ts=click.message_ts, fallback_url=click.response_url
            ),
        ),
    )
    cancel = on_click(
        "cancel",
        lambda click: transfers.cancel(
            click.request_id, user_id=click.user_id, channel_id=click.channel_id
        ),
    )

    return acknowledge, confirm, cancel
