"""A hard total bound on one HTTP call: connect, send and read together.

requests' `timeout` bounds each socket read, not the exchange: a server that sends its status
line, headers or body one byte a second never lets a read wait long enough to time out. So each
call runs inside a `CallDeadline`; the connections of our adapter register their socket with
the deadline of the call in progress (a thread-local: urllib3 opens and uses a connection in the
caller's thread), and when the deadline passes a timer thread shuts those sockets down. The
blocked read returns at once and the call fails; `expired` tells the client why.

DNS resolution is the one step a socket cannot bound; the resolver's own timeouts apply there.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()


class CallDeadline:
    """Shuts the call's sockets down `seconds` after it entered; use as a context manager."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        # Set once a connection is about to send the request: before that, an expiry means
        # nothing reached SMS Partner (a stalled TLS handshake); after, nobody knows.
        self.sending = False
        self._lock = threading.Lock()
        self._finished = False
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> CallDeadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _current.deadline = None
        with self._lock:
            self._finished = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()  # our duplicate only: the connection's own socket stays the pool's

    def watch(self, sock: socket.socket | None) -> None:
        """Bound `sock` by this deadline. A duplicate descriptor is kept, so the timer never
        acts on a descriptor number the process has since given to something else."""
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

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # OSError: the peer or urllib3 closed it first, so it cannot hold the call any more.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _deadline() -> CallDeadline | None:
    deadline: CallDeadline | None = getattr(_current, "deadline", None)
    return deadline


class BoundedHTTPConnection(HTTPConnection):
    """Registers its socket with the call in progress: when opened, and again when reused."""

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
