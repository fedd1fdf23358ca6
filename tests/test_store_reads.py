"""Store reads on SQLite take no write lock, and each transition is one UPDATE that
returns its row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.domain import Action, CreditRequest, Status
from bot.store import Store


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
    never with a second SELECT after it; a read begins deferred, without the write lock."""
    request = _create(store)
    statements: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        words = sql.split()
        statements.append(" ".join(words) if words[0] == "BEGIN" else words[0])

    claimed = store.claim(request_id=request.id, approver_id="UAPP", executor="me")
    assert claimed is not None and claimed.status is Status.EXECUTING
    assert statements == ["BEGIN IMMEDIATE", "SELECT", "UPDATE", "INSERT", "INSERT"]
    statements.clear()
    done = store.record_success(
        request_id=request.id,
        main_balance=Decimal("989.500"),
        subaccount_balance=Decimal("10.500"),
        currency="EUR",
    )
    assert done is not None and done.status is Status.SUCCEEDED
    assert done.main_balance == Decimal("989.500")
    assert statements == ["BEGIN IMMEDIATE", "UPDATE", "INSERT"]
    statements.clear()
    assert store.get(request.id) == done
    assert statements == ["BEGIN", "SELECT"]
