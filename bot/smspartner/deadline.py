"""A hard total bound on one HTTP call: connect, send and read together.

requests' `timeout` bounds each socket read, not the exchange: a server that sends its status
line, headers or body one byte a second never lets a read wait long enough to time out. So each
call runs inside a `CallDeadline`; the connections of our adapter register their socket with
the deadline of the call in progress (a thread-local: urllib3 opens and uses a connection in the
caller's thread), and when the deadline passes the watchdog thread shuts those sockets down. The
blocked read returns at once and the call fails; `expired` tells the client why.

One watchdog thread serves every deadline of the process (a heap ordered by expiry), started
with the first call: starting a thread per call was a sixth of the call's CPU.

DNS resolution is the one step a socket cannot bound; the resolver's own timeouts apply there.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

logger = logging.getLogger(__name__)

_current = threading.local()


class CallDeadline:
    """Shuts the call's sockets down `seconds` after it entered; use as a context manager."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        # Set once a connection is about to send the request: before that, an expiry means
        # nothing reached SMS Partner (a stalled TLS handshake); after, nobody knows.
        self.sending = False
        self.due = 0.0  # time.monotonic() of the expiry, set on entry
        self._lock = threading.Lock()
        self._finished = False
        self._sockets: list[socket.socket] = []

    @property
    def finished(self) -> bool:
        return self._finished

    def __enter__(self) -> CallDeadline:
        _current.deadline = self
        self.due = time.monotonic() + self.seconds
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.deadline = None
        with self._lock:
            self._finished = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()  # our duplicate only: the connection's own socket stays the pool's
        _WATCHDOG.forget_finished()

    def watch(self, sock: socket.socket | None) -> None:
        """Bound `sock` by this deadline. A duplicate descriptor is kept, so the watchdog never
        acts on a descriptor number the process has since given to something else: the pool
        may close its socket (and the number be reused) at any moment, but our duplicate keeps
        the same connection open under its own number until this call ends."""
        if sock is None:
            return
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # already closed: nothing left to bound
        with self._lock:
            if self._finished:
                duplicate.close()
                return
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def expire(self) -> None:
        """The watchdog's act at `due`: nothing if the call has finished."""
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


class _Watchdog:
    """The one thread that expires deadlines, earliest first.

    A finished deadline is left in the heap (removing it from the middle would cost more than
    skipping it) and dropped once it reaches the top, by the watchdog or by the next call that
    ends. The thread is woken only when a deadline comes earlier than the one it waits for, so
    calls in a row wake it about once a timeout, not once a call."""

    def __init__(self) -> None:
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        # (due, order, deadline): the order breaks ties, since deadlines do not compare.
        self._heap: list[tuple[float, int, CallDeadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._waiting_until = float("inf")

    def watch(self, deadline: CallDeadline) -> None:
        with self._changed:
            heapq.heappush(self._heap, (deadline.due, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="call-deadlines", daemon=True
                )
                self._thread.start()
            elif deadline.due < self._waiting_until:
                self._changed.notify()

    def forget_finished(self) -> None:
        with self._changed:
            self._drop_finished()

    def _drop_finished(self) -> None:
        while self._heap and self._heap[0][2].finished:
            heapq.heappop(self._heap)

    def _run(self) -> None:
        while True:
            deadline = self._next_due()
            try:
                deadline.expire()
            except Exception:
                # The watchdog must outlive any one call: without it no call would be bounded.
                logger.exception("a call deadline could not be enforced")

    def _next_due(self) -> CallDeadline:
        with self._changed:
            while True:
                self._drop_finished()
                if not self._heap:
                    self._waiting_until = float("inf")
                    self._changed.wait()
                    continue
                due, _, deadline = self._heap[0]
                delay = due - time.monotonic()
                if delay <= 0:
                    heapq.heappop(self._heap)
                    self._waiting_until = float("inf")
                    return deadline
                self._waiting_until = due
                self._changed.wait(delay)


_WATCHDOG = _Watchdog()
# A forked child has no watchdog thread, and maybe a lock held by a thread it did not inherit.
os.register_at_fork(after_in_child=_WATCHDOG._start_afresh)


def _shut(sock: socket.socket) -> None:
    # OSError: the peer or urllib3 closed it first, so it cannot hold the call any more.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _deadline() -> CallDeadline | None:
    deadline: CallDeadline | None = getattr(_current, "deadline", None)
    return deadline


# A kept-alive connection idle longer than this is replaced, not reused. Servers close idle
# ones on their own clock (5 s is the shortest common default): a transfer sent just as the
# server closes its connection would be cut, and since a POST is never re-sent, its outcome
# would be unknown. (bot/slack/web.py does the same for Slack.)
MAX_IDLE_SECONDS = 4.0


class BoundedHTTPConnection(HTTPConnection):
    """Registers its socket with the call in progress: when opened, and again when reused.
    Counts as dropped once idle over MAX_IDLE_SECONDS, so the pool opens a fresh one."""

    answered_at = -math.inf

    def getresponse(self) -> Any:
        response = super().getresponse()
        self.answered_at = time.monotonic()
        return response

    @property
    def is_connected(self) -> bool:
        fresh = time.monotonic() - self.answered_at <= MAX_IDLE_SECONDS
        return fresh and super().is_connected

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        deadline = _deadline()
        if deadline is not None:
            deadline.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _deadline()
        if deadline is not None:
            deadline.watch(self.sock)  # a kept-alive connection opened by an earlier call
            deadline.sending = True
        super().request(*args, **kwargs)


class BoundedHTTPSConnection(BoundedHTTPConnection, HTTPSConnection):
    """The same, over TLS: the handshake too runs on the watched socket."""


class _BoundedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class _BoundedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


_BOUNDED_POOLS = {"http": _BoundedHTTPConnectionPool, "https": _BoundedHTTPSConnectionPool}


class BoundedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey the `CallDeadline` of the call in progress."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _BOUNDED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # A SOCKS manager brings connection classes of its own, which must stay: through a
        # SOCKS proxy only the per-read timeout applies.
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _BOUNDED_POOLS
        return manager
