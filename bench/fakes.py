"""The test fakes, with what a benchmark needs on top: when each transfer arrived."""

from __future__ import annotations

import time

from tests.fakes.smspartner import FakeSMSPartner, RecordedRequest, _Reply


class TimedSMSPartner(FakeSMSPartner):
    """A FakeSMSPartner that notes, per sub-account token, when a transfer reached it.

    The bench sends each Confirm click for its own sub-account, so the token ties a
    received transfer back to the click that caused it. Times are `time.perf_counter()`
    of this process, the clock the load generator stamps its sends with."""

    def __init__(self, **kwargs: object) -> None:
        self.received_at: dict[str, float] = {}
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _receive(self, request: RecordedRequest) -> _Reply:
        arrived = time.perf_counter()
        fields = request.json if isinstance(request.json, dict) else {}
        token = fields.get("tokenSubaccount")
        if isinstance(token, str):
            with self._changed:
                self.received_at.setdefault(token, arrived)
        return super()._receive(request)

    def received_count(self) -> int:
        with self._changed:
            return len(self.received_at)
