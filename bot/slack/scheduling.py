"""When background work runs: after the acks and the transfers waiting to be sent, and some
of it only later.

Everything shares one interpreter (two cores, one GIL). Slack needs the ack within 3 s and
SMS Partner should hear of a click at once, while a card drawn a moment later harms nobody.
`Priorities` holds card work (posting and updating cards) back while requests are being
answered or clicks wait to be sent, never for long; `Later` runs the "Sending…" update only
if the transfer is still under way a moment after its claim: most transfers are answered
sooner, and their card goes straight from the buttons to the outcome, one Slack call
instead of two; `Batch` lets writes that may wait a moment share one transaction.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

# Background work goes once no ack has been answered for this long: a stream of commands or
# clicks keeps it back (up to its patience), while one every few milliseconds does not.
ACKS_QUIET_SECONDS = 0.002

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _GoesFirst:
    """A count of work under way that other work waits for: never longer than
    `patience_seconds` from when that other work was asked for."""

    def __init__(self, *, patience_seconds: float, quiet_seconds: float = 0.0) -> None:
        self.patience_seconds = patience_seconds
        # How long nothing must have been counted before other work goes: 0, at once.
        self.quiet_seconds = quiet_seconds
        self._waiting = 0
        self._last_done = -math.inf
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        with self._changed:
            return self._waiting

    def wait_turn(self, asked_at: float) -> None:
        """Return once nothing has been counted for `quiet_seconds`, or `patience_seconds`
        after `asked_at` (time.monotonic), whichever comes first."""
        deadline = asked_at + self.patience_seconds
        with self._changed:
            while True:
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    return
                if self._waiting > 0:
                    self._changed.wait(left)
                    continue
                quiet_left = self.quiet_seconds - (now - self._last_done)
                if quiet_left <= 0:
                    break
                self._changed.wait(min(quiet_left, left))
            # Passed on one waiter at a time (see `_release`): the next one looks too.
            self._changed.notify()

    def _enter(self) -> None:
        with self._changed:
            self._waiting += 1

    def _release(self) -> None:
        with self._changed:
            self._waiting -= 1
            self._last_done = time.monotonic()
            if self._waiting == 0:
                # One waiter, which wakes the next if the way is still clear: under a stream
                # of acks the count touches zero after each, and waking every waiting thread
                # each time cost more CPU than the work they waited to do.
                self._changed.notify()


class AcksFirst(_GoesFirst):
    """Counts the Slack requests being answered: Slack shows an error for an ack later than
    3 s, while a card drawn a moment later harms nobody. Background work waits while
    requests are being answered, so under load the acks have the interpreter to themselves
    and the background catches up in the gaps (or after its patience)."""

    @contextmanager
    def answering(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._release()


class SendsFirst(_GoesFirst):
    """Counts the clicks accepted whose transfer has not started; card work waits for them,
    so a queue of transfers held by a slow SMS Partner delays cards by patience at most."""

    def __init__(self, *, patience_seconds: float) -> None:
        super().__init__(patience_seconds=patience_seconds)
        self._turn = threading.local()

    def accepted(self) -> Callable[[Callable[..., Any], Any], Any]:
        """Count a click now (in the ack); the function returned runs its work in a pool
        thread, which stops counting at `started` or when the work ends, whichever first."""
        self._enter()
        done = _Once(self._release)

        def run(work: Callable[..., Any], *args: Any) -> Any:
            self._turn.done = done
            try:
                return work(*args)
            finally:
                self._turn.done = None
                done()

        return run

    def started(self) -> None:
        """The current thread's transfer is being sent: cards need not wait for it."""
        done = getattr(self._turn, "done", None)
        if done is not None:
            done()


@dataclass(frozen=True)
class Priorities:
    """Who goes first: acks, then transfers being sent, then cards."""

    acks: AcksFirst
    sends: SendsFirst

    @classmethod
    def with_patience(cls, seconds: float) -> Priorities:
        return cls(
            acks=AcksFirst(patience_seconds=seconds, quiet_seconds=ACKS_QUIET_SECONDS),
            sends=SendsFirst(patience_seconds=seconds),
        )

    def wait_turn(self, asked_at: float) -> None:
        """Background work other than a transfer (a command's card, a card update), asked
        for at `asked_at` (time.monotonic): its turn."""
        self.acks.wait_turn(asked_at)
        self.sends.wait_turn(asked_at)


class _Once:
    """Calls `action` the first time it is called, never again (thread-safe)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self._called = False

    def __call__(self) -> None:
        with self._lock:
            if self._called:
                return
            self._called = True
        self._action()


class Later:
    """Hands callables to `executor` at a time of their own, from one timer thread (started
    on first use): a delay costs a heap entry, not a sleeping worker."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        # (due, order, work, unless): see `call_after`.
        self._due: list[tuple[float, int, Callable[[], object], Callable[[], bool] | None]] = []
        self._order = itertools.count()  # ties keep the order they were asked in
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_after(
        self,
        seconds: float,
        work: Callable[[], object],
        *,
        unless: Callable[[], bool] | None = None,
    ) -> None:
        """Submit `work` to the executor `seconds` from now (at once if not positive), unless
        `unless()` says then that it is no longer needed (checked in the timer thread: no
        worker is woken for work that would do nothing)."""
        if seconds <= 0:
            self._executor.submit(work)
            return
        with self._changed:
            if self._closed:
                return
            entry = (time.monotonic() + seconds, next(self._order), work, unless)
            heapq.heappush(self._due, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="card-later", daemon=True)
                self._thread.start()
            if self._due[0] is entry:
                # Woken only when this is now the first due: a burst's later ones wait their
                # turn without waking the timer thread each (a wake per click costs CPU).
                self._changed.notify()

    def close(self) -> None:
        """Drop what is not due yet (a process stopping: the sweep redraws cards later)."""
        with self._changed:
            self._closed = True
            self._due.clear()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                due = list(self._take_due())
                if not due:
                    if self._closed:
                        return
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._changed.wait(wait)
                    continue
            try:
                for work, unless in due:
                    if unless is None or not unless():
                        self._executor.submit(work)
            except RuntimeError:
                return  # the executor was shut down: the process is stopping

    def _take_due(self) -> Iterator[tuple[Callable[[], object], Callable[[], bool] | None]]:
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _, _, work, unless = heapq.heappop(self._due)
            yield work, unless


class Batch(Generic[K, V]):
    """Collects values by key and hands them to `write` together, `seconds` after the first
    of them (a later value for a key replaces the earlier one): writes that may wait a
    moment, such as where a card is, share one transaction in a burst."""

    def __init__(
        self, later: Later, *, seconds: float, write: Callable[[dict[K, V]], None]
    ) -> None:
        self._later = later
        self._seconds = seconds
        self._write = write
        self._guard = threading.Lock()
        self._waiting: dict[K, V] = {}

    def add(self, key: K, value: V) -> None:
        with self._guard:
            first = not self._waiting
            self._waiting[key] = value
        if first:
            self._later.call_after(self._seconds, self.flush)

    def flush(self) -> None:
        """Write what is waiting now (also at shutdown, for what is not due yet)."""
        with self._guard:
            waiting, self._waiting = self._waiting, {}
        if waiting:
            self._write(waiting)
