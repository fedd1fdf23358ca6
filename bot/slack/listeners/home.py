"""The Home tab: `app_home_opened` publishes the viewer's view, off the ack path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from decimal import Decimal
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.domain import CreditRequest
from bot.flow.policy import Policy
from bot.flow.transfers import CURRENCY, DATABASE_ERRORS
from bot.logs import log_event, log_failure
from bot.slack.home import MAX_WAITING, build_home
from bot.smspartner.accounts import MainAccount
from bot.store import Store
from bot.texts import Texts

logger = logging.getLogger(__name__)

# Pending requests looked at for one viewer: more than a team ever has open at once.
PENDING_SCANNED = 200


class HomeTab:
    def __init__(
        self,
        *,
        client: WebClient,
        store: Store,
        policy: Policy,
        main_account: Callable[[], MainAccount],
        texts: Texts,
    ) -> None:
        self.texts = texts
        self.client = client
        self.store = store
        self.policy = policy
        self.main_account = main_account

    def waiting_for(self, user_id: str) -> list[CreditRequest]:
        """Pending requests this user may confirm now (as first or second approver)."""
        return [
            request
            for request in self.store.pending(limit=PENDING_SCANNED)
            if self.policy.refuse_approval(
                user_id=user_id, request=request, first_approver_id=request.first_approver_id
            )
            is None
        ][:MAX_WAITING]

    def publish(self, user_id: str, notice: str | None = None) -> None:
        """Draw the user's Home tab now; never raises (a worker's error would vanish)."""
        try:
            balance, currency = self._main_balance()
            try:
                waiting = self.waiting_for(user_id)
                mine = self.store.requested_by(user_id, limit=10)
            except DATABASE_ERRORS as error:
                log_event(
                    logger, "home.database_away", level=logging.WARNING, error=type(error).__name__
                )
                waiting, mine = [], []
                notice = notice or self.texts("home.database_away")
            view = build_home(
                texts=self.texts,
                waiting=waiting,
                mine=mine,
                main_balance=balance,
                currency=currency,
                notice=notice,
            )
            self.client.views_publish(user_id=user_id, view=view)
        except Exception:
            log_failure(logger, "home.publish_failed", user_id=user_id)

    def _main_balance(self) -> tuple[Decimal | None, str]:
        try:
            account = self.main_account()
        except Exception as error:  # shown as "unavailable"; the rest of the tab still works
            log_event(
                logger,
                "home.balance_unavailable",
                level=logging.WARNING,
                error=type(error).__name__,
            )
            return None, CURRENCY
        return account.balance, account.currency


def register(app: App, *, home: HomeTab, workers: Executor) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        # Bolt answers Slack once this returns: the drawing happens in a worker.
        user_id = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user_id, str) and user_id:
            workers.submit(home.publish, user_id)
