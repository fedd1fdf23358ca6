"""The unknown-outcome card's buttons: Check balances, It went through, It did not.

Each click is acked at once; the reading and the settling run on the workers. Nothing here
sends a transfer: settling only records what a person found in SMS Partner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot.flow.resolutions import BalancesNow, Refusal, Resolutions, Resolved
from bot.flow.transfers import DATABASE_ERRORS
from bot.logs import log_event, log_failure
from bot.slack.answers import build_balances_now
from bot.slack.blocks import (
    CHECK_BALANCE_ACTION_ID,
    RESOLVE_DONE_ACTION_ID,
    RESOLVE_NOT_DONE_ACTION_ID,
    say,
)
from bot.slack.cards import Cards
from bot.slack.listeners.actions import Click, read_click

logger = logging.getLogger(__name__)


def register(app: App, *, resolutions: Resolutions, cards: Cards, workers: Executor) -> None:
    """The three buttons of SPEC.md §2.4."""

    def tell(click: Click, channel_id: str, text: str) -> None:
        cards.tell(
            user_id=click.user_id,
            channel_id=channel_id,
            response_url=click.response_url,
            text=text,
        )

    def check(click: Click, channel_id: str) -> None:
        found = resolutions.check_balances(
            click.request_id, user_id=click.user_id, channel_id=channel_id
        )
        if isinstance(found, BalancesNow):
            cards.answer(
                user_id=click.user_id,
                channel_id=channel_id,
                response_url=click.response_url,
                message=build_balances_now(
                    cards.texts, found.request, found.subaccount_balance, found.main_balance
                ),
            )
        else:
            tell(click, channel_id, say(cards.texts, found.wording))

    def settle(went_through: bool) -> Callable[[Click, str], None]:
        def decide(click: Click, channel_id: str) -> None:
            outcome = resolutions.resolve(
                click.request_id,
                user_id=click.user_id,
                channel_id=channel_id,
                went_through=went_through,
            )
            if isinstance(outcome, Resolved):
                cards.show(
                    outcome.request, message_ts=click.message_ts, fallback_url=click.response_url
                )
            elif isinstance(outcome, Refusal):
                tell(click, channel_id, say(cards.texts, outcome.wording))

        return decide

    def handler(action: str, work: Callable[[Click, str], None]) -> Callable[[Any], None]:
        def handle(body: Any) -> None:
            try:
                click = read_click(body)
                # These buttons live on the channel's card only, never in the Home tab.
                if click is None or click.channel_id is None:
                    log_event(logger, "click.malformed", level=logging.WARNING, action=action)
                    return
                log_event(
                    logger,
                    f"click.{action}",
                    request_id=click.request_id,
                    user_id=click.user_id,
                    channel_id=click.channel_id,
                )
                try:
                    work(click, click.channel_id)
                except DATABASE_ERRORS as error:
                    log_event(
                        logger,
                        f"click.{action}_database_away",
                        level=logging.WARNING,
                        request_id=click.request_id,
                        error=type(error).__name__,
                    )
                    tell(click, click.channel_id, cards.texts("notice.database_away.settle"))
            except Exception:
                # The boundary: an exception in a worker would vanish with its Future.
                log_failure(logger, "click.failed", action=action)

        return handle

    on_check_work = handler("check_balance", check)
    on_done_work = handler("resolve_done", settle(True))
    on_not_done_work = handler("resolve_not_done", settle(False))

    @app.action(CHECK_BALANCE_ACTION_ID)
    def on_check(ack: Any, body: dict[str, Any]) -> None:
        ack()
        workers.submit(on_check_work, body)

    @app.action(RESOLVE_DONE_ACTION_ID)
    def on_done(ack: Any, body: dict[str, Any]) -> None:
        ack()
        workers.submit(on_done_work, body)

    @app.action(RESOLVE_NOT_DONE_ACTION_ID)
    def on_not_done(ack: Any, body: dict[str, Any]) -> None:
        ack()
        workers.submit(on_not_done_work, body)
