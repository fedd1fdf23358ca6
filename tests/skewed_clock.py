"""Run the app with its wall clock shifted, as a replica whose clock is off would be.

`python -m tests.skewed_clock run --http ...` with CREDIT_TEST_CLOCK_SKEW_SECONDS set: the
clock every bot module reads (`datetime.datetime.now`) runs that many seconds ahead;
the monotonic clock, and so every timed wait, is left alone (faketime breaks those).
Tests only.
"""

from __future__ import annotations

import datetime
import os
import sys

SKEW = datetime.timedelta(seconds=float(os.environ.get("CREDIT_TEST_CLOCK_SKEW_SECONDS", "0")))


class SkewedDateTime(datetime.datetime):
    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> SkewedDateTime:
        return super().now(tz) + SKEW  # type: ignore[return-value]


def main() -> int:
    # Before bot is imported: its modules look `datetime.datetime` up on every call.
    datetime.datetime = SkewedDateTime  # type: ignore[misc]
    from bot.cli import main as bot_main  # noqa: PLC0415 - only once the clock is patched

    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
