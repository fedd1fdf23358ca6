"""Store reads on SQLite take no write lock, and each transition is one UPDATE that
returns its row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.domain import Action, CreditRequest, Status
from bot.store import Store, create_store_engine


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "credit_bot.db"


@pytest.fixture
def store(sqlite_file: Path) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{sqlite_file}")
    store.migrate()
    yield store
    store.close()


def _create(store: Store) -> CreditRequest:
    return store.create(
        action=Action.ADD,
        subaccount_token="sub-1",
        amount=Decimal("10.50"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=900,
    )


def test_a_read_does_not_wait_for_a_writer_holding_the_lock(
    store: Store, sqlite_file: Path
) -> None:
    """While another connection holds SQLite's write lock, get() and the listings still
    answer (a BEGIN IMMEDIATE would queue for the lock, then fail after its timeout)."""
    request = _create(store)
    writer = sqlite3.connect(sqlite_file, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        found = store.get(request.id)
        assert found is not None and found.status is Status.PENDING
        assert [r.id for r in store.pending()] == [request.id]
        assert [e.status for e in store.events(request.id)] == [Status.PENDING]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_transition_is_one_update_returning_the_row(store: Store) -> None:
    """A claim, then its outcome: the store reads the row back from the UPDATE itself,
    never with a second SELECT after it; a read begins deferred, without the write lock.
    Seen by SQLite itself (its trace of what it ran), BEGIN and COMMIT included."""
    request = _create(store)
    statements: list[str] = []

    def _seen(sql: str) -> None:
        words = sql.split()
        statements.append(" ".join(words) if words[0] == "BEGIN" else words[0])

    store.engine.dispose()  # the connections opened from here on are traced

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.set_trace_callback(_seen)

    claimed = store.claim(request_id=request.id, approver_id="UAPP", executor="me")
    assert claimed is not None and claimed.status is Status.EXECUTING
    # The claim's UPDATE, its audit event, its approval: nothing read before the UPDATE.
    assert statements[-5:] == ["BEGIN IMMEDIATE", "UPDATE", "INSERT", "INSERT", "COMMIT"]
    assert "SELECT" not in statements
    statements.clear()
    done = store.record_success(
        request_id=request.id,
        main_balance=Decimal("989.500"),
        subaccount_balance=Decimal("10.500"),
        currency="EUR",
    )
    assert done is not None and done.status is Status.SUCCEEDED
    assert done.main_balance == Decimal("989.500")
    assert statements == ["BEGIN IMMEDIATE", "UPDATE", "INSERT", "COMMIT"]
    statements.clear()
    assert store.get(request.id) == done
    assert statements[:2] == ["BEGIN", "SELECT"]


def test_a_writer_that_cannot_get_the_lock_fails_as_a_database_error(
    sqlite_file: Path,
) -> None:
    """BEGIN IMMEDIATE runs on sqlite3 directly: when it times out waiting for the lock, the
    caller still gets SQLAlchemy's error (the one every caller of the store handles), and
    nothing is written."""
    store = Store.from_url(f"sqlite:///{sqlite_file}")
    store.migrate()
    request = _create(store)
    impatient = Store(create_store_engine(f"sqlite:///{sqlite_file}", busy_timeout_seconds=0.05))
    writer = sqlite3.connect(sqlite_file, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            impatient.attach_card(request_id=request.id, message_ts="1700000000.000100")
        writer.execute("ROLLBACK")
        found = store.get(request.id)
        assert found is not None and found.message_ts is None
        impatient.attach_card(request_id=request.id, message_ts="1700000000.000100")
        found = store.get(request.id)
        assert found is not None and found.message_ts == "1700000000.000100"
    finally:
        writer.close()
        impatient.close()
        store.close()
