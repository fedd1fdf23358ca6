"""The background sweep: closes expired cards, recovers crashed transfers, mends stale cards.

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
        interval_seconds: float,
    ) -> None:
        self.transfers = transfers
        # How a card is redrawn (Slack's chat.update): injected, so the flow knows no Slack.
        self.show_card = show_card
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """One pass; returns how many cards it replaced."""
        changed = self.transfers.expire_due() + self.transfers.recover_crashed()
        settled = utcnow() - dt.timedelta(seconds=CARD_SETTLE_SECONDS)
        changed += self.transfers.store.stale_cards(settled_before=settled)
        return sum(self.show_card(request) for request in changed)

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
