"""`/credit`: validate at once in the ack, then store the request and post its card."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.domain import CreditRequest
from bot.flow import reasons
from bot.flow.commands import (
    BalanceCommand,
    CreditCommand,
    HelpCommand,
    HistoryCommand,
    UsageError,
    parse_command,
)
from bot.flow.lookups import Insufficient, NotFound, Seen, look_before_card
from bot.flow.policy import Policy
from bot.flow.transfers import CURRENCY, DATABASE_ERRORS, DailyLimitReachedError, Transfers
from bot.logs import log_event, log_failure
from bot.slack import answers
from bot.slack.blocks import Message, build_usage, escape_mrkdwn, format_amount
from bot.slack.cards import Cards
from bot.slack.listeners.reads import answer_read
from bot.smspartner.directory import SubaccountDirectory
from bot.store import DuplicateCommandError, Store
from bot.texts import Texts, Wording

logger = logging.getLogger(__name__)

NOT_IN_CHANNEL_ERRORS = {"not_in_channel", "channel_not_found", "is_archived"}
# What Slack's user and channel ids look like (U…, W…, C…, G…, D…).
SLACK_ID = re.compile(r"[A-Z0-9]{2,32}", re.ASCII)


Asked = CreditCommand | BalanceCommand | HistoryCommand


def evaluate(
    command: dict[str, Any],
    *,
    policy: Policy,
    texts: Texts,
    max_amount: Decimal,
    require_reason: bool = False,
) -> Asked | Message:
    """The request to open (or the balance or history to read), or the ephemeral answer
    that explains why not."""
    user_id, channel_id = command.get("user_id"), command.get("channel_id")
    refusal = policy.refuse_request(user_id=str(user_id or ""), channel_id=str(channel_id or ""))
    try:
        parsed = parse_command(
            str(command.get("text", "")), max_amount=max_amount, require_reason=require_reason
        )
    except UsageError as error:
        return build_usage(texts, error.wording)
    if isinstance(parsed, HelpCommand):
        return build_usage(texts)
    if refusal:
        return build_usage(texts, refusal)
    # Slack always says who and where; a request without both could be neither stored nor
    # approved, so it is refused here, in the ack, not left to fail after a silent one.
    if not all(isinstance(v, str) and SLACK_ID.fullmatch(v) for v in (user_id, channel_id)):
        return build_usage(texts, Wording.of("command.no_user_or_channel"))
    return parsed


def make_command_listeners(
    *,
    transfers: Transfers,
    cards: Cards,
    directory: SubaccountDirectory,
    max_amount: Decimal,
    require_reason: bool = False,
    ack_policy: Policy | None = None,
) -> tuple[Callable[..., bool], Callable[..., None]]:
    """`ack_policy`: the policy as the ack may check it, with group memberships from the
    cache only (Slack is never asked inside the 3 seconds); the worker checks again in full."""
    quick_policy = ack_policy or transfers.policy

    def acknowledge(ack: Any, command: dict[str, Any]) -> bool:
        """Only in-memory work here: Slack is waiting, and the user sees errors at once.
        True when the request is to be opened."""
        result = evaluate(
            command,
            policy=quick_policy,
            texts=cards.texts,
            max_amount=max_amount,
            require_reason=require_reason,
        )
        if isinstance(result, Asked):
            ack()  # the answer or the card follows, after SMS Partner is asked
            return True
        else:
            log_event(
                logger,
                "command.refused",
                user_id=command.get("user_id"),
                channel_id=command.get("channel_id"),
            )
            ack(response_type="ephemeral", **result)
            return False

    def open_request(command: dict[str, Any]) -> None:
        try:
            post_request(command)
        except Exception:
            # The boundary: an exception in a worker would vanish with its Future; log it
            # with its traceback.
            log_failure(
                logger,
                "command.failed",
                user_id=command.get("user_id"),
                channel_id=command.get("channel_id"),
            )

    def post_request(command: dict[str, Any]) -> None:
        result = evaluate(
            command,
            policy=transfers.policy,
            texts=cards.texts,
            max_amount=max_amount,
            require_reason=require_reason,
        )
        if isinstance(result, BalanceCommand | HistoryCommand):
            _answer_privately(cards, directory, transfers.store, command, result)
            return
        if not isinstance(result, CreditCommand):
            # Refused on the full check (a group's membership, fresh from Slack): say why.
            _reply(cards, command, str(result["text"]))
            return
        seen = _look(cards, directory, command, result)
        if seen is None:
            return
        request = _open(transfers, cards, command, result, seen)
        if request is not None:
            post_card(request)

    def post_card(request: CreditRequest) -> None:
        try:
            cards.post(request)
        except SlackApiError as error:
            code = str(error.response.get("error"))
            reason = reasons.english(reasons.CARD_REFUSED, code=code)
            _close(transfers.store, request, reason, slack_error=code)
            if code in NOT_IN_CHANNEL_ERRORS:
                text = cards.texts("command.not_in_channel")
            else:
                text = cards.texts("command.card_refused", code=escape_mrkdwn(code))
            _tell(cards, request, text)
        except Exception as error:
            # No answer from Slack: the card may exist. Close the request so its buttons
            # do nothing, and say so; never post it again (that would be a second card).
            _close(
                transfers.store,
                request,
                reasons.english(reasons.CARD_UNCONFIRMED),
                slack_error=type(error).__name__,
            )
            cards.close_unposted(request)

    return acknowledge, open_request


def _open(
    transfers: Transfers,
    cards: Cards,
    command: dict[str, Any],
    asked: CreditCommand,
    seen: Seen,
) -> CreditRequest | None:
    """Store the request; None when the requester was told why not (a replay, the daily
    limit, the database away)."""
    trigger_id = command.get("trigger_id")
    try:
        request = transfers.open(
            asked,
            seen=seen,
            requester_id=command["user_id"],
            channel_id=command["channel_id"],
            response_url=command.get("response_url"),
            trigger_id=trigger_id if isinstance(trigger_id, str) and trigger_id else None,
        )
    except DuplicateCommandError as duplicate:
        # A replay or a redelivery of a command already taken: open nothing, say so.
        log_event(
            logger,
            "command.duplicate",
            level=logging.WARNING,
            request_id=duplicate.request.id,
            user_id=command.get("user_id"),
        )
        _reply(
            cards,
            command,
            cards.texts("command.duplicate", request_id=escape_mrkdwn(duplicate.request.id)),
        )
        return None
    except DailyLimitReachedError as limit:
        log_event(logger, "command.daily_limit", user_id=command.get("user_id"))
        _reply(
            cards,
            command,
            cards.texts(
                "command.daily_limit",
                left=format_amount(cards.texts, limit.left, CURRENCY),
                limit=format_amount(cards.texts, limit.limit, CURRENCY),
            ),
        )
        return None
    except DATABASE_ERRORS as error:
        log_event(
            logger,
            "command.database_away",
            level=logging.WARNING,
            user_id=command.get("user_id"),
            error=type(error).__name__,
        )
        _reply(
            cards,
            command,
            cards.texts("notice.database_away.command"),
        )
        return None
    return request


def _look(
    cards: Cards, directory: SubaccountDirectory, command: dict[str, Any], asked: CreditCommand
) -> Seen | None:
    """What the card shows; None when the requester was told why there is no card."""
    sighting = look_before_card(directory, asked)
    if isinstance(sighting, Seen):
        return sighting
    if isinstance(sighting, NotFound):
        refusal = answers.build_not_found(cards.texts, sighting.name, sighting.close_matches)
    elif isinstance(sighting, Insufficient):
        refusal = answers.build_insufficient(
            cards.texts, sighting.action, sighting.balance, sighting.currency, asked.amount
        )
    else:
        refusal = answers.build_cannot_resolve(cards.texts, sighting.name)
    log_event(
        logger,
        "command.refused_before_card",
        user_id=command.get("user_id"),
        channel_id=command.get("channel_id"),
        reason=type(sighting).__name__,
    )
    _answer(cards, command, refusal)
    return None


def _answer_privately(
    cards: Cards,
    directory: SubaccountDirectory,
    store: Store,
    command: dict[str, Any],
    asked: BalanceCommand | HistoryCommand,
) -> None:
    try:
        message = answer_read(asked, directory=directory, store=store, texts=cards.texts)
    except DATABASE_ERRORS as error:
        log_event(
            logger,
            "command.database_away",
            level=logging.WARNING,
            user_id=command.get("user_id"),
            error=type(error).__name__,
        )
        _reply(
            cards,
            command,
            cards.texts("notice.database_away.history"),
        )
        return
    _answer(cards, command, message)


def _close(store: Store, request: CreditRequest, reason: str, *, slack_error: str) -> None:
    """Abandon a request whose card is not known to be up."""
    log_event(
        logger,
        "card.post_failed",
        level=logging.WARNING,
        request_id=request.id,
        slack_error=slack_error,
    )
    # If the database is away, the request stays pending without a card ts: the sweep
    # closes it once the database is back.
    with contextlib.suppress(*DATABASE_ERRORS):
        store.abandon(request_id=request.id, reason=reason)


def _tell(cards: Cards, request: CreditRequest, text: str) -> None:
    # Not Bolt's `respond`: it raises when the command came without a usable
    # response_url; `tell` falls back to chat.postEphemeral and never raises.
    cards.tell(
        user_id=request.requester_id,
        channel_id=request.channel_id,
        response_url=request.response_url,
        text=text,
    )


def _reply(cards: Cards, command: dict[str, Any], text: str) -> None:
    """An ephemeral answer to the command, through its response_url."""
    response_url = command.get("response_url")
    cards.tell(
        user_id=str(command.get("user_id") or ""),
        channel_id=str(command.get("channel_id") or ""),
        response_url=response_url if isinstance(response_url, str) else None,
        text=text,
    )


def _answer(cards: Cards, command: dict[str, Any], message: Message) -> None:
    """`_reply` with a whole message."""
    response_url = command.get("response_url")
    cards.answer(
        user_id=str(command.get("user_id") or ""),
        channel_id=str(command.get("channel_id") or ""),
        response_url=response_url if isinstance(response_url, str) else None,
        message=message,
    )
