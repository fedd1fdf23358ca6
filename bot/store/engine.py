"""The database engine, tuned for the store's short write transactions on either backend.

SQL errors never carry their parameters (`hide_parameters`): the store's parameters hold
`response_url`s, which let anyone answer in the requester's name for 30 minutes.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import StaticPool

# The inode of the file a SQLite connection opened, kept on its pool record.
_OPENED = "credit_bot_opened_file"
# The execution option of connections that only read (see `reader`).
_READ_ONLY = "credit_bot_read_only"


def reader(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read: on SQLite they begin
    deferred, so they never take (or queue for) the write lock; in WAL mode a reader sees
    the last commit and never waits for a writer."""
    return engine.execution_options(**{_READ_ONLY: True})


def sqlite_begin(*, write: bool) -> str:
    """How a SQLite transaction begins: writers take the write lock first (IMMEDIATE) and
    queue on the busy timeout instead of failing with "database is locked" when a read lock
    would have to be upgraded mid-transaction; readers begin deferred and never wait."""
    return "BEGIN IMMEDIATE" if write else "BEGIN"


def create_store_engine(url: str, *, busy_timeout_seconds: float = 30) -> Engine:
    """An engine tuned for the store's short write transactions on either backend.
    `busy_timeout_seconds`: how long a SQLite writer queues for the write lock."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout_seconds)
    return create_engine(
        url, pool_size=10, max_overflow=30, pool_pre_ping=True, hide_parameters=True
    )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory or URI-style database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_engine(url: str, busy_timeout_seconds: float) -> Engine:
    path = sqlite_path(url)
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if path is not None:
        # The identity check below must look at the file the connection opened, whatever
        # the working directory becomes later.
        path = path.absolute()
        url = f"sqlite:///{path}"
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_seconds},
        poolclass=StaticPool if memory else None,
        hide_parameters=True,
    )
    # The first connection may create the database; later ones must find it where it was:
    # a file deleted under a running bot is an outage, not a fresh empty database.
    created = {"done": path is None or path.exists()}

    @event.listens_for(engine, "do_connect")
    def _open_existing(
        _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        if path is not None and created["done"] and not path.exists():
            raise sqlite3.OperationalError(f"database file {path} is missing")

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE below is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed claim survives a power cut (NORMAL may lose the last commits in
        # WAL mode, and a lost claim could be approved, and sent, a second time).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if path is not None:
            created["done"] = True
            record.info[_OPENED] = _identity(path)

    @event.listens_for(engine, "checkout")
    def _still_the_same_file(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # Every store transaction checks a connection out. A connection whose file was
        # deleted or replaced would write where nobody will ever read: drop it, and let
        # the pool open the file now at the path (or fail, while there is none).
        if path is not None and record.info.get(_OPENED) != _identity(path):
            raise DisconnectionError(f"database file {path} was deleted or replaced")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # Straight to sqlite3: through exec_driver_sql, BEGIN cost a whole statement
        # execution of SQLAlchemy's (events, a cursor, a result) on every transaction.
        begin = sqlite_begin(write=not conn.get_execution_options().get(_READ_ONLY))
        driver = conn.connection.driver_connection
        try:
            driver.execute(begin)  # type: ignore[union-attr]
        except sqlite3.Error as error:
            # SQLAlchemy wraps what its own statements raise, not what a listener does: the
            # store's callers catch SQLAlchemy's errors (a locked, full or vanished file).
            raise DBAPIError.instance(
                begin, None, error, sqlite3.Error, hide_parameters=True
            ) from error

    return engine


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)
