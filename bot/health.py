"""Whether the database can be read and written: what /healthz and `credit-bot check` report.

A read alone says too little: a read-only SQLite file, a full disk or a PostgreSQL standby
answer SELECTs while every claim and every outcome would fail. So the probe also commits a
write that changes nothing (the schema version set to itself). On SQLite that write fits in
pages the file already has, so a full disk would pass it while every new request fails: the
probe also wants room for a few requests on the database's filesystem.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.store.engine import sqlite_path

# /healthz may be polled many times a second by several load balancers: one probe per
# interval is enough to tell an outage, and keeps the write off the hot path.
CACHE_SECONDS = 1.0
# A request and its audit event take a few pages (4 KiB each) in the file and its WAL.
MIN_FREE_BYTES = 256 * 1024


def probe_database(engine: Engine) -> int:
    """Read and write the database; return the schema version. Raises SQLAlchemyError."""
    with engine.begin() as conn:
        version = conn.execute(text("SELECT MAX(version) FROM credit_bot_schema")).scalar()
        conn.execute(text("UPDATE credit_bot_schema SET version = version"))
    _room_to_write(engine)
    return int(version or 0)


def _room_to_write(engine: Engine) -> None:
    path = sqlite_path(engine.url.render_as_string())
    if path is None:
        return
    disk = os.statvfs(path.parent)
    free = disk.f_bavail * disk.f_frsize
    if free < MIN_FREE_BYTES:
        cause = sqlite3.OperationalError(f"database or disk is full ({free} bytes free)")
        raise OperationalError("free space", None, cause)


class DatabaseHealth:
    """`healthy()`: the last probe's answer, re-probed when older than `cache_seconds`."""

    def __init__(
        self,
        engine: Engine,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._healthy = False
        self._probing = False

    def healthy(self) -> bool:
        with self._lock:
            fresh = self._checked_at is not None and (
                self._clock() - self._checked_at < self._cache_seconds
            )
            if fresh or self._probing:
                # A probe stuck on a dead database must not hold every server thread.
                return self._healthy
            self._probing = True
        healthy = False
        try:
            healthy = self._probe()
        finally:
            with self._lock:
                self._healthy = healthy
                self._checked_at = self._clock()
                self._probing = False
        return healthy

    def _probe(self) -> bool:
        try:
            probe_database(self._engine)
        except SQLAlchemyError:
            return False
        return True
