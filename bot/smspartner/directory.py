"""The sub-account directory: who a token or an e-mail is, from a cached sub-account list.

The list (`GET /subaccount/list`, every page) is reused for `cache_seconds`
(SUBACCOUNT_CACHE_SECONDS). A name it does not know refreshes it once before the answer is
"not found", so a sub-account created a minute ago is found; but the list is read at most
once every `min_refresh_seconds`, whatever asks, so a flood of typos cannot hammer the API.
The main account (`GET /me`) is cached beside it, at most `max_age` seconds old when asked.

Reads are single-flight: while one thread reads SMS Partner, the others asking wait for its
answer instead of sending their own. A failed read raises its SMSPartnerError to every caller
within `min_refresh_seconds` (then the next caller tries again). The clock is injected.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.smspartner.accounts import MainAccount, Subaccount
from bot.smspartner.client import CallRecord, SMSPartnerClient
from bot.smspartner.errors import SMSPartnerError

DEFAULT_CACHE_SECONDS = 300.0
DEFAULT_MIN_REFRESH_SECONDS = 5.0
# SPEC §2.2: the balances a card shows are at most a minute old when it is posted.
CARD_MAX_AGE_SECONDS = 60.0
CLOSE_MATCHES = 3
# The calls after which the balances in hand may be wrong: a transfer that moved or may have.
MONEY_OPERATIONS = frozenset({"add", "remove"})
MAY_HAVE_MOVED = frozenset({"ok", "unknown"})
CLOSE_MATCH_CUTOFF = 0.6

T = TypeVar("T")


@dataclass(frozen=True)
class Lookup:
    """A look-up's answer: the sub-account, or up to 3 close matches (tokens or e-mails)."""

    subaccount: Subaccount | None
    close_matches: tuple[str, ...] = ()


class SubaccountIndex:
    """One reading of the list, indexed by token (exact) and by e-mail (case-insensitive)."""

    def __init__(self, subaccounts: list[Subaccount]) -> None:
        self.subaccounts = tuple(subaccounts)
        self._by_token = {subaccount.token: subaccount for subaccount in subaccounts}
        self._by_email: dict[str, Subaccount] = {}
        for subaccount in subaccounts:
            if subaccount.email:
                self._by_email.setdefault(subaccount.email.casefold(), subaccount)

    def find(self, name: str) -> Subaccount | None:
        return self._by_token.get(name) or self._by_email.get(name.casefold())

    def close_matches(self, name: str) -> tuple[str, ...]:
        """Tokens or e-mails, as SMS Partner writes them, that look like `name`."""
        spellings: dict[str, str] = {}
        for subaccount in self.subaccounts:
            spellings.setdefault(subaccount.token.casefold(), subaccount.token)
            if subaccount.email:
                spellings.setdefault(subaccount.email.casefold(), subaccount.email)
        found = difflib.get_close_matches(
            name.casefold(), list(spellings), n=CLOSE_MATCHES, cutoff=CLOSE_MATCH_CUTOFF
        )
        return tuple(spellings[key] for key in found)


class _Cached(Generic[T]):
    """One value read from SMS Partner: reused while fresh, re-read single-flight, and
    re-read at most once every `min_refresh_seconds`, also when the read fails."""

    def __init__(
        self, fetch: Callable[[], T], *, now: Callable[[], float], min_refresh_seconds: float
    ) -> None:
        self._fetch = fetch
        self._now = now
        self._min_refresh = min_refresh_seconds
        self._lock = threading.Lock()  # held while reading: the single flight
        self._value: T | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._error: SMSPartnerError | None = None
        self.attempts = 0  # a version: bumped by every read, whatever its outcome

    def get(self, max_age: float) -> tuple[T, int]:
        """The value at most `max_age` old (or `min_refresh_seconds`, if more), and its version."""
        attempts = self.attempts
        if self._fresh(max_age):
            return self._current()
        with self._lock:
            if self.attempts != attempts or self._fresh(max_age) or self._throttled():
                return self._current()  # read meanwhile by another caller, or just now
            return self._read()

    def refresh(self, seen: int) -> tuple[T, int] | None:
        """Read again after a miss in version `seen`, unless that is too soon; None if so."""
        with self._lock:
            if self.attempts != seen:
                return self._current()  # another caller read it since
            if self._throttled():
                return None
            return self._read()

    def expire(self) -> None:
        """Make the next `get` read again, even within `min_refresh_seconds` of the last read:
        the value in hand is known to be out of date (money moved)."""
        with self._lock:
            self._fetched_at = float("-inf")
            self._attempted_at = None

    def _fresh(self, max_age: float) -> bool:
        return (
            self._error is None
            and self._value is not None
            and self._now() - self._fetched_at < max_age
        )

    def _throttled(self) -> bool:
        attempted = self._attempted_at
        return attempted is not None and self._now() - attempted < self._min_refresh

    def _current(self) -> tuple[T, int]:
        error, value = self._error, self._value
        if error is not None:
            raise error.with_traceback(None)
        if value is None:
            raise AssertionError("a cached value is read before its first read")
        return value, self.attempts

    def _read(self) -> tuple[T, int]:
        self._attempted_at = self._now()
        self.attempts += 1
        try:
            value = self._fetch()
        except SMSPartnerError as error:
            self._error = error
            raise
        self._value, self._fetched_at, self._error = value, self._attempted_at, None
        return value, self.attempts


class SubaccountDirectory:
    """Finds sub-accounts by token or e-mail, and reads the main account, through caches."""

    def __init__(
        self,
        client: SMSPartnerClient,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        min_refresh_seconds: float = DEFAULT_MIN_REFRESH_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_seconds < 0 or min_refresh_seconds < 0:
            raise ValueError("cache_seconds and min_refresh_seconds must not be negative")
        self.cache_seconds = cache_seconds
        self._listing = _Cached(
            lambda: SubaccountIndex(client.subaccounts()),
            now=now,
            min_refresh_seconds=min_refresh_seconds,
        )
        self._main = _Cached(client.main_account, now=now, min_refresh_seconds=min_refresh_seconds)

    def look_up(self, name: str, *, max_age: float | None = None) -> Lookup:
        """The sub-account whose token is `name` or whose e-mail is `name` in any case.

        A miss re-reads the list once (unless it was read in the last few seconds) before
        answering with close matches. `max_age` (e.g. CARD_MAX_AGE_SECONDS) bounds how old the
        balance may be; the cache's own age bounds it otherwise. Raises SMSPartnerError when
        the list cannot be read."""
        index, version = self._listing.get(self._age(max_age))
        found = index.find(name)
        if found is not None:
            return Lookup(found)
        refreshed = self._listing.refresh(version)
        if refreshed is not None:
            index = refreshed[0]
            found = index.find(name)
            if found is not None:
                return Lookup(found)
        return Lookup(None, index.close_matches(name))

    def subaccounts(self, *, max_age: float | None = None) -> tuple[Subaccount, ...]:
        """Every sub-account, in SMS Partner's order, from the cache while fresh."""
        return self._listing.get(self._age(max_age))[0].subaccounts

    def main_account(self, *, max_age: float = CARD_MAX_AGE_SECONDS) -> MainAccount:
        """The main account, read again when the one in hand is older than `max_age` (or
        than the cache's own age, if less)."""
        return self._main.get(self._age(max_age))[0]

    def note_call(self, record: CallRecord) -> None:
        """A client observer: after a credit add or remove that may have moved money, the
        cached balances are out of date, so the next card reads them again (once: a flood
        of typos is still held back by `min_refresh_seconds`)."""
        if record.operation in MONEY_OPERATIONS and record.outcome in MAY_HAVE_MOVED:
            self._listing.expire()
            self._main.expire()

    def _age(self, max_age: float | None) -> float:
        return self.cache_seconds if max_age is None else min(max_age, self.cache_seconds)
