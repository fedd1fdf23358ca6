"""The store's hot statements run without SQLAlchemy's execution layer (bot/store/prepared.py):
they write and read exactly what SQLAlchemy does, and fail as SQLAlchemy does."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from bot.domain import Action, CreditRequest, Status
from bot.store import DuplicateCommandError, Store, create_store_engine, schema
from bot.store.prepared import Statements

SECRET_URL = "https://hooks.slack.test/commands/T1/secret-never-in-errors"
# With microseconds, and not UTC: stored and read back as the same instant, in UTC.
SEEN_AT = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
AMOUNTS = [Decimal("10"), Decimal("10.50"), Decimal("0.001"), Decimal("1E+3")]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.migrate()
    yield store
    store.close()


def _create(store: Store, amount: Decimal, *, full: bool, trigger: str = "") -> CreditRequest:
    """A request with every optional field set (`full`) or none of them."""
    optional: dict[str, Any] = (
        dict(
            trigger_id=trigger or f"trigger-{amount}",
            subaccount_email="sub@example.test",
            main_balance_before=amount * 3,
            subaccount_balance_before=Decimal("0.000"),
            balances_seen_at=SEEN_AT,
            reason="topping up for the campaign",
            approvals_needed=2,
        )
        if full
        else {}
    )
    return store.create(
        action=Action.ADD,
        subaccount_token="sub-7",
        amount=amount,
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=SECRET_URL if full else None,
        ttl_seconds=900,
        now=_just_before_now() if full else None,
        **optional,
    )


def _just_before_now() -> dt.datetime:
    """In the past, so a claim made now is in time and its audit event comes after."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(microsecond=654321)


def _by_sqlalchemy(store: Store, request_id: str) -> CreditRequest:
    """The request as the store's SQLAlchemy reads (the listing) return it."""
    return next(r for r in store.recent(limit=500) if r.id == request_id)


def _assert_same(fast: CreditRequest | None, request_id: str, store: Store) -> None:
    """Equal field by field, by repr: Decimals with their exponent, datetimes with their zone."""
    assert fast is not None
    slow = _by_sqlalchemy(store, request_id)
    assert repr(fast) == repr(slow)
    for field in dataclasses.fields(fast):
        value = getattr(fast, field.name)
        assert not isinstance(value, float), field.name
        if isinstance(value, dt.datetime):
            assert value.tzinfo is dt.UTC, field.name


@pytest.mark.parametrize("full", [True, False], ids=["every-field", "no-optional-field"])
@pytest.mark.parametrize("amount", AMOUNTS, ids=str)
def test_fast_path_returns_what_sqlalchemy_reads(store: Store, amount: Decimal, full: bool) -> None:
    """Create, card, claim, success, card mark, get: each request returned by the fast
    path equals the one SQLAlchemy reads back, on SQLite and PostgreSQL."""
    # create() returns the request it was given; what was stored is what get() reads.
    created = _create(store, amount, full=full)
    _assert_same(store.get(created.id), created.id, store)
    store.attach_card(request_id=created.id, message_ts="1700000000.000100")
    if full:
        assert store.approve_first(request_id=created.id, approver_id="UONE")
    claimed = store.claim(request_id=created.id, approver_id="UAPP", executor="replica-1")
    assert claimed is not None and claimed.status is Status.EXECUTING
    assert claimed.executing_at is not None
    _assert_same(claimed, created.id, store)
    done = store.record_success(
        request_id=created.id,
        main_balance=amount * 100,
        subaccount_balance=amount + Decimal("0.10"),
        currency="EUR",
    )
    _assert_same(done, created.id, store)
    store.mark_card(request_id=created.id, status=Status.SUCCEEDED)
    found = store.get(created.id)
    assert found is not None and found.card_status is Status.SUCCEEDED
    _assert_same(found, created.id, store)
    assert [e.status for e in store.events(created.id)] == [
        Status.PENDING,
        Status.EXECUTING,
        Status.SUCCEEDED,
    ]


def test_every_transition_returns_what_sqlalchemy_reads(store: Store) -> None:
    """Cancel, expire, failure, unknown, a late success by its executor, abandon, resolve."""
    cancelled = _create(store, Decimal("1.5"), full=True, trigger="t-cancel")
    _assert_same(store.cancel(request_id=cancelled.id, canceller_id="UREQ"), cancelled.id, store)
    expired = _create(store, Decimal("2"), full=False)
    later = expired.expires_at + dt.timedelta(microseconds=1)
    _assert_same(store.expire(request_id=expired.id, now=later), expired.id, store)
    abandoned = _create(store, Decimal("3"), full=False)
    _assert_same(store.abandon(request_id=abandoned.id, reason="no card"), abandoned.id, store)
    failed = _create(store, Decimal("4.25"), full=False)
    store.claim(request_id=failed.id, approver_id="UAPP", executor="replica-1")
    done = store.record_failure(request_id=failed.id, error_code=42, error_message="refused")
    assert done is not None and done.error_code == 42
    _assert_same(done, failed.id, store)
    late = _create(store, Decimal("5.000"), full=False)
    store.claim(request_id=late.id, approver_id="UAPP", executor="replica-1")
    _assert_same(store.record_unknown(request_id=late.id, reason="timeout"), late.id, store)
    overruled = store.record_success(
        request_id=late.id,
        main_balance=Decimal("7.0"),
        subaccount_balance=Decimal("5.000"),
        currency="EUR",
        executor="replica-1",
    )
    _assert_same(overruled, late.id, store)
    resolved = _create(store, Decimal("6"), full=False)
    store.claim(request_id=resolved.id, approver_id="UAPP", executor="replica-1")
    store.record_unknown(request_id=resolved.id, reason="timeout")
    settled = store.resolve(request_id=resolved.id, resolver_id="URES", went_through=False)
    _assert_same(settled, resolved.id, store)
    assert [e.status for e in store.events(resolved.id)] == [
        Status.PENDING,
        Status.EXECUTING,
        Status.UNKNOWN,
        Status.FAILED,
    ]


def test_fast_path_stores_what_sqlalchemy_stores(store: Store) -> None:
    """The row a /credit writes holds, column by column, what SQLAlchemy's INSERT of the
    same request writes (Decimal text, SQLite's datetime strings, PostgreSQL's timestamptz)."""
    fast = _create(store, Decimal("10.50"), full=True)
    names = [c.name for c in schema.credit_requests.c]
    values = {
        name: value.value if isinstance(value, Action | Status) else value
        for name, value in dataclasses.asdict(fast).items()
        if name in names
    }
    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.credit_requests), {**values, "id": "cr_slow", "trigger_id": "slow"}
        )
    # As the driver returns them, before any type of ours reads them.
    query = text(f"SELECT {', '.join(names)} FROM credit_requests WHERE id = :id")  # noqa: S608
    with store.engine.connect() as conn:
        stored = [
            dict(conn.execute(query, {"id": request_id}).one()._mapping)
            for request_id in (fast.id, "cr_slow")
        ]
    for row in stored:
        del row["id"], row["trigger_id"]
    assert stored[0] == stored[1]
    assert repr(stored[0]) == repr(stored[1])


def test_a_duplicate_trigger_id_still_raises_duplicate_command_error(store: Store) -> None:
    """The fast INSERT's IntegrityError is still SQLAlchemy's, so the replay is recognised,
    and the failed transaction left nothing behind."""
    first = _create(store, Decimal("10"), full=True, trigger="same-command")
    with pytest.raises(DuplicateCommandError) as raised:
        _create(store, Decimal("10"), full=True, trigger="same-command")
    assert raised.value.request.id == first.id
    assert [r.id for r in store.recent(limit=10)] == [first.id]


def test_sql_errors_hold_no_parameter_value(store: Store) -> None:
    """A failing fast statement raises SQLAlchemy's error, without its parameters: they
    hold response_urls."""
    created = _create(store, Decimal("10"), full=True)
    row = {
        "id": created.id,  # taken: the primary key refuses it
        "action": created.action.value,
        "subaccount_token": "sub-7",
        "amount": Decimal("10"),
        "card_attempts": 0,
        "approvals_needed": 1,
        "currency": "EUR",
        "status": "pending",
        "requester_id": "UREQ",
        "channel_id": "CFIN",
        "response_url": SECRET_URL + "-2",
        "created_at": SEEN_AT,
        "expires_at": SEEN_AT,
    }
    statements = Statements(store.engine)
    with pytest.raises(IntegrityError) as raised, statements.transaction(write=True) as fast:
        fast.execute(insert(schema.credit_requests), row)
    message = str(raised.value)
    assert "secret-never-in-errors" not in message
    # Not even kept on the error, where SQLAlchemy's own would keep them.
    assert raised.value.params is None
    assert store.get(created.id) == created


def test_a_locked_sqlite_fails_every_fast_write_as_sqlalchemy_operational_error(
    tmp_path: Path,
) -> None:
    """Another connection holds the write lock: each fast write queues for its busy timeout,
    then raises SQLAlchemy's OperationalError with nothing written; reads still answer."""
    path = tmp_path / "credit_bot.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    request = _create(store, Decimal("10"), full=False)
    impatient = Store(create_store_engine(f"sqlite:///{path}", busy_timeout_seconds=0.05))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writes = [
            lambda: _create(impatient, Decimal("1"), full=True),
            lambda: impatient.attach_card(request_id=request.id, message_ts="1.2"),
            lambda: impatient.claim(request_id=request.id, approver_id="UAPP", executor="e"),
            lambda: impatient.cancel(request_id=request.id, canceller_id="UREQ"),
            lambda: impatient.mark_cards({request.id: Status.PENDING}),
        ]
        for write in writes:
            with pytest.raises(OperationalError, match="database is locked"):
                write()
        assert impatient.get(request.id) == request
        writer.execute("ROLLBACK")
        assert store.get(request.id) == request
        assert [r.id for r in store.recent(limit=10)] == [request.id]
        claimed = impatient.claim(request_id=request.id, approver_id="UAPP", executor="e")
        assert claimed is not None and claimed.status is Status.EXECUTING
    finally:
        writer.close()
        impatient.close()
        store.close()


def test_several_cards_are_marked_in_one_write_transaction(tmp_path: Path) -> None:
    """mark_cards: one BEGIN IMMEDIATE, an UPDATE per card, one COMMIT (SQLite's trace)."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'credit_bot.db'}")
    store.migrate()
    ids = [_create(store, Decimal(n), full=False).id for n in (1, 2)]
    statements: list[str] = []
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.set_trace_callback(
            lambda sql: statements.append(sql if sql.startswith("BEGIN") else sql.split()[0])
        )

    store.mark_cards({request_id: Status.PENDING for request_id in ids})
    store.mark_cards({})
    assert statements[-4:] == ["BEGIN IMMEDIATE", "UPDATE", "UPDATE", "COMMIT"]
    found = [store.get(request_id) for request_id in ids]
    assert all(r is not None and r.card_status is Status.PENDING for r in found)
    store.close()


def test_a_killed_postgresql_connection_is_invalidated_and_the_next_call_works(
    postgres_url: str,
) -> None:
    """Without pre-ping to hide it, a backend killed under a pooled connection fails the
    call with SQLAlchemy's error, marked invalidated; the pool then opens a new one."""
    store = Store(create_engine(postgres_url, pool_size=1, max_overflow=0, hide_parameters=True))
    store.migrate()
    request = _create(store, Decimal("10.50"), full=True)
    with store.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        with pytest.raises(SQLAlchemyError) as raised:
            store.get(request.id)
        assert getattr(raised.value, "connection_invalidated", False) is True
        assert "secret-never-in-errors" not in str(raised.value)
        assert store.get(request.id) == request
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        admin.dispose()
        store.close()


def test_a_killed_postgresql_connection_is_replaced_by_pre_ping(postgres_url: str) -> None:
    """The store's own engine pings at checkout: the fast path never sees the dead one."""
    store = Store.from_url(postgres_url)
    store.migrate()
    request = _create(store, Decimal("10"), full=False)
    with store.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert store.get(request.id) == request
    finally:
        admin.dispose()
        store.close()
