"""The background sweep: closes expired cards, recovers crashed transfers, mends stale cards,
closes requests whose card was never known to be posted, and reminds approvers.

Every step is claimed in the store first, so with several replicas sweeping the same
database each card is replaced by one of them only.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from bot.domain import CreditRequest
from bot.flow.transfers import Transfers
from bot.store import utcnow

logger = logging.getLogger(__name__)

# Leave the replica that ended a request this long to replace its card itself.
CARD_SETTLE_SECONDS = 30.0


class Sweeper:
    def __init__(
        self,
        *,
        transfers: Transfers,
        show_card: Callable[[CreditRequest], bool],
        close_unposted: Callable[[CreditRequest], object],
        interval_seconds: float,
        unposted_after_seconds: float,
        remind: Callable[[CreditRequest], object] | None = None,
        remind_after_seconds: float = 0.0,
    ) -> None:
        self.transfers = transfers
        # How a card is redrawn (Slack's chat.update) and how a requester is told that
        # their card never showed up: injected, so the flow knows no Slack.
        self.show_card = show_card
        self.close_unposted = close_unposted
        self.interval_seconds = interval_seconds
        # A post still in flight ends (or times out) well before this.
        self.unposted_after_seconds = unposted_after_seconds
        # CREDIT_REMIND_AFTER_SECONDS (0: never), and how a reminder is written in the
        # card's thread: injected like show_card.
        self.remind = remind
        self.remind_after_seconds = remind_after_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """One pass; returns how many cards it replaced."""
        changed = self.transfers.expire_due() + self.transfers.recover_crashed()
        settled = utcnow() - dt.timedelta(seconds=CARD_SETTLE_SECONDS)
        changed += self.transfers.store.stale_cards(settled_before=settled)
        replaced = sum(self.show_card(request) for request in changed)
        self.close_cards_never_posted()
        self.send_reminders()
        return replaced

    def send_reminders(self) -> None:
        """One reminder per request still pending after `remind_after_seconds`: claimed in
        the store before it is written, so two replicas never both send it. A reminder Slack
        loses is not sent again: a second ping is worse than a missed one."""
        if self.remind is None or self.remind_after_seconds <= 0:
            return
        store = self.transfers.store
        for request_id in store.due_reminders(older_than_seconds=self.remind_after_seconds):
            request = store.claim_reminder(request_id=request_id)
            if request is not None:
                self.remind(request)

    def close_cards_never_posted(self) -> None:
        """A pending request without a card ts (the post timed out, or the process died
        while posting) is closed, so the buttons of a card Slack may still show do
        nothing, and its requester is told through the command's response_url."""
        store = self.transfers.store
        for request_id in store.unposted_cards(older_than_seconds=self.unposted_after_seconds):
            closed = store.abandon(
                request_id=request_id,
                reason="Slack did not confirm that the confirmation card was posted.",
            )
            if closed is not None:
                self.close_unposted(closed)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="credit-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.sweep()
            except Exception:
                # A database or Slack hiccup must not end the sweeping: log it, try next time.
                logger.exception("sweep failed")
