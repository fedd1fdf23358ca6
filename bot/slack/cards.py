"""Posting and replacing confirmation cards in Slack, and answering clickers privately.

Cards are posted with `chat.postMessage`, so their channel and `ts` are known and any
replica can replace them with `chat.update` for as long as they live, not only for the
30 minutes of a `response_url`.

A card ends showing the truth: the updates of one card are applied one at a time, and
never to a state behind the one it shows (a late "Sending…" cannot overwrite the
outcome). A card is posted once; slack_sdk's automatic retries are off (app.py), since a
re-sent post is a second card. A card Slack refuses for good is given up after a few
tries with back-off, recorded in the store, so it cannot crowd out the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain import CreditRequest, Status
from bot.flow.policy import CanApprove
from bot.flow.transfers import DATABASE_ERRORS
from bot.logs import log_event
from bot.slack.blocks import Message, build_card, build_notice, escape_mrkdwn
from bot.slack.scheduling import Batch, Later, Priorities
from bot.slack.web import slack_webhook_client
from bot.store import Store, utcnow
from bot.texts import Texts

logger = logging.getLogger(__name__)

# Slack's answers that no retry will change: the card is gone or cannot be edited.
PERMANENT_ERRORS = frozenset(
    {
        "message_not_found",
        "channel_not_found",
        "is_archived",
        "cant_update_message",
        "edit_window_closed",
        "not_in_channel",
        "invalid_blocks",
        "msg_too_long",
        "account_inactive",
        "token_revoked",
    }
)
# Tries before a refused-for-good card is given up; other failures keep being retried.
PERMANENT_TRIES = 3
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0
# How many requests' card states are remembered to keep updates in order (recent ones
# are the only ones still being updated).
REMEMBERED_CARDS = 10_000
UPDATE_THREADS = 8
# How soon a card drawn in its final state is recorded as such: far below the sweep's settle
# time (30 s), after which an ended request whose card is not recorded is drawn again.
MARK_WITHIN_SECONDS = 0.1


class Cards:
    def __init__(
        self,
        *,
        client: WebClient,
        store: Store,
        texts: Texts,
        can_approve: CanApprove | None = None,
        priorities: Priorities,
    ) -> None:
        self.client = client
        self.store = store
        # The process's language: every card, notice and answer is drawn in it.
        self.texts = texts
        # Who the cards name on their "Can approve" line (the policy's).
        self.can_approve = can_approve
        self._guard = threading.Lock()
        self._locks: OrderedDict[str, threading.Lock] = OrderedDict()
        self._shown: dict[str, Status] = {}
        self._updates = ThreadPoolExecutor(
            max_workers=UPDATE_THREADS, thread_name_prefix="card-update"
        )
        # Updates wait for the acks and the transfers waiting to be sent (bot.slack.scheduling).
        self._priorities = priorities
        self._later = Later(self._updates)
        # That a card shows its final state is written within MARK_WITHIN_SECONDS, many
        # cards to a transaction in a burst. (Where a card is, its ts, is written at once:
        # any replica's next click or sweep needs it.)
        self._marks = Batch[str, Status](
            self._later, seconds=MARK_WITHIN_SECONDS, write=self._write_marks
        )

    def post(self, request: CreditRequest) -> str:
        """Post the confirmation card in the request's channel; return its ts.

        Raises SlackApiError (e.g. `not_in_channel`) for the caller to explain, and any
        other error when Slack's answer never came (the card may or may not exist). A
        database away when the ts is stored raises nothing: the card is up, clicks carry
        its ts, and if the database stays away the sweep closes it as never posted."""
        response = self.client.chat_postMessage(
            channel=request.channel_id,
            **build_card(request, texts=self.texts, can_approve=self.can_approve),
        )
        ts = str(response["ts"])
        try:
            self.store.attach_card(request_id=request.id, message_ts=ts)
        except DATABASE_ERRORS as error:
            log_event(
                logger,
                "card.attach_failed",
                level=logging.WARNING,
                request_id=request.id,
                error=type(error).__name__,
            )
        return ts

    def show_soon(
        self,
        request: CreditRequest,
        *,
        message_ts: str | None = None,
        fallback_url: str | None = None,
        after_seconds: float = 0.0,
    ) -> None:
        """`show` in another thread: for the money path, which must not wait on Slack.
        Not before `after_seconds`, and after the acks and the sends under way (for a moment)."""
        asked_at = time.monotonic()

        def update() -> None:
            self._priorities.wait_turn(asked_at)
            self.show(request, message_ts=message_ts, fallback_url=fallback_url)

        self._later.call_after(after_seconds, update, unless=lambda: self._shows(request))

    def _shows(self, request: CreditRequest) -> bool:
        """Whether the card already shows `request`'s state or one further along. Read
        without the card's lock: a stale answer only lets `show` check again under it."""
        shown = self._shown.get(request.id)
        return shown is not None and shown.card_rank >= request.status.card_rank

    def show(
        self,
        request: CreditRequest,
        *,
        message_ts: str | None = None,
        fallback_url: str | None = None,
        redraw: bool = False,
    ) -> bool:
        """Replace the card with what `request` now is; True if Slack took it.

        `message_ts` is the card a click came from: a click can beat `attach_card` when an
        approver is quicker than our own write of the ts Slack gave us. `fallback_url` (the
        click's response_url) replaces the card when chat.update cannot. `redraw` (the
        sweep) draws it again even if this process believes it shows it: another replica
        may have drawn something else since."""
        with self._lock_for(request.id):
            shown = self._shown.get(request.id)
            if shown is not None and (
                request.status.card_rank < shown.card_rank
                or (shown is request.status and not redraw)
            ):
                return True  # already shows this, or something further along
            if not self._replace(request, message_ts=message_ts, fallback_url=fallback_url):
                return False
            self._shown[request.id] = request.status
        if request.status.is_final:
            self._marks.add(request.id, request.status)
        return True

    def _write_marks(self, marks: dict[str, Status]) -> None:
        try:
            self.store.mark_cards(marks)
        except DATABASE_ERRORS as error:
            # The sweep will redraw them once the database is back: one spare update each.
            log_event(
                logger,
                "card.mark_failed",
                level=logging.WARNING,
                request_ids=sorted(marks),
                error=type(error).__name__,
            )

    def _replace(
        self, request: CreditRequest, *, message_ts: str | None, fallback_url: str | None
    ) -> bool:
        message = build_card(request, texts=self.texts, can_approve=self.can_approve)
        ts = request.message_ts or message_ts
        try:
            if ts:
                self.client.chat_update(channel=request.channel_id, ts=ts, **message)
            elif request.response_url:
                _respond(request.response_url, {**message, "replace_original": True})
            else:
                return False
            return True
        except Exception as error:
            code = _describe_error(error)
            log_event(
                logger,
                "card.update_failed",
                level=logging.WARNING,
                request_id=request.id,
                slack_error=code,
            )
            if fallback_url and _try_respond(fallback_url, {**message, "replace_original": True}):
                return True
            if request.status.is_final:
                self._retry_later(request, code)
            return False

    def _retry_later(self, request: CreditRequest, code: str) -> None:
        """Back off before the sweep tries this card again; give up on a permanent refusal."""
        attempts = request.card_attempts + 1
        give_up = code in PERMANENT_ERRORS and attempts >= PERMANENT_TRIES
        delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        retry_at = None if give_up else utcnow() + dt.timedelta(seconds=delay)
        try:
            self.store.card_failed(request_id=request.id, retry_at=retry_at)
        except DATABASE_ERRORS:
            return  # no record, no back-off: the sweep tries again at its next pass
        if give_up:
            log_event(
                logger,
                "card.given_up",
                level=logging.ERROR,
                request_id=request.id,
                outcome=request.status.value,
                slack_error=code,
                attempts=attempts,
            )

    def _lock_for(self, request_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(request_id)
            if lock is None:
                lock = self._locks[request_id] = threading.Lock()
                while len(self._locks) > REMEMBERED_CARDS:
                    old, _ = self._locks.popitem(last=False)
                    self._shown.pop(old, None)
            return lock

    def close_unposted(self, request: CreditRequest) -> None:
        """Tell the requester that their card was never confirmed posted and is closed."""
        self.tell(
            user_id=request.requester_id,
            channel_id=request.channel_id,
            response_url=request.response_url,
            text=self.texts("notice.card_unposted", request_id=escape_mrkdwn(request.id)),
        )

    def tell(self, *, user_id: str, channel_id: str, response_url: str | None, text: str) -> None:
        """An ephemeral note to one user: through the click's response_url when there is one
        (it works even where the bot is not a member), else chat.postEphemeral."""
        self.answer(
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            message=build_notice(text),
        )

    def answer(
        self, *, user_id: str, channel_id: str, response_url: str | None, message: Message
    ) -> None:
        """`tell`, with a whole message (several sections: a balance list, a history)."""
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

    def close(self) -> None:
        self._later.close()
        self._updates.shutdown(wait=True)
        self._marks.flush()  # those not due yet


def _respond(response_url: str, body: Message) -> bool:
    response = slack_webhook_client(response_url, timeout=10).send_dict(body)
    if response.status_code >= 300:
        log_event(logger, "response_url.failed", level=logging.WARNING, status=response.status_code)
        return False
    return True


def _try_respond(response_url: str, body: Message) -> bool:
    try:
        return _respond(response_url, body)
    except Exception as error:
        log_event(logger, "response_url.failed", level=logging.WARNING, error=type(error).__name__)
        return False


def _describe_error(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return type(error).__name__
