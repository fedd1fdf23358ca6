"""The request store, on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from bot.domain import Action, CreditRequest, Status
from bot.store import DuplicateCommandError, Store, new_request_id, schema, utcnow


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.migrate()
    yield store
    store.close()


def _create(store: Store, *, ttl: float = 900, now: dt.datetime | None = None) -> CreditRequest:
    return store.create(
        action=Action.ADD,
        subaccount_token="sub-42",
        amount=Decimal("10.50"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url="https://hooks.slack.test/x",
        ttl_seconds=ttl,
        now=now,
    )


def test_request_round_trips_exactly(store: Store) -> None:
    """What is stored comes back equal, the amount as the exact Decimal typed."""
    created = _create(store)
    loaded = store.get(created.id)
    assert loaded == created
    assert loaded is not None
    assert str(loaded.amount) == "10.50"
    assert loaded.status is Status.PENDING
    assert loaded.expires_at - loaded.created_at == dt.timedelta(seconds=900)


def test_request_ids_are_random_and_unguessable() -> None:
    """Ids carry 128 random bits: no two alike, no visible sequence."""
    ids = {new_request_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(re.fullmatch(r"cr_[A-Za-z0-9_-]{22}", i) for i in ids)


def test_claim_succeeds_once(store: Store) -> None:
    """pending -> executing happens for the first claimant only."""
    request = _create(store)
    first = store.claim(request_id=request.id, approver_id="UAPP", executor="host/1/a")
    second = store.claim(request_id=request.id, approver_id="UOTHER", executor="host/2/b")
    assert first is not None and first.status is Status.EXECUTING
    assert first.approver_id == "UAPP" and first.executor == "host/1/a"
    assert second is None
    stored = store.get(request.id)
    assert stored is not None and stored.approver_id == "UAPP"


def test_fifty_threads_race_for_one_claim(store: Store) -> None:
    """50 threads claim the same request at once: exactly one wins, one audit event."""
    request = _create(store)
    barrier = threading.Barrier(50)
    winners: list[str] = []
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            barrier.wait()
            if store.claim(request_id=request.id, approver_id=f"U{n:04d}", executor=f"h/{n}/x"):
                winners.append(f"U{n:04d}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    stored = store.get(request.id)
    assert stored is not None and stored.approver_id == winners[0]
    assert [e.status for e in store.events(request.id)] == [Status.PENDING, Status.EXECUTING]


def test_claim_refused_after_expiry(store: Store) -> None:
    """A request past its expiry cannot be claimed, only expired."""
    past = utcnow() - dt.timedelta(seconds=120)
    request = _create(store, ttl=60, now=past)
    assert store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a") is None
    assert store.expired_pending() == [request.id]
    expired = store.expire(request_id=request.id)
    assert expired is not None and expired.status is Status.EXPIRED
    assert store.expire(request_id=request.id) is None


def test_expire_refused_before_expiry(store: Store) -> None:
    """A request still in time is not expired by a sweep."""
    request = _create(store)
    assert store.expired_pending() == []
    assert store.expire(request_id=request.id) is None


def test_cancel_then_no_claim(store: Store) -> None:
    """A cancelled request records who cancelled and can no longer be claimed."""
    request = _create(store)
    cancelled = store.cancel(request_id=request.id, canceller_id="UREQ")
    assert cancelled is not None
    assert cancelled.status is Status.CANCELLED and cancelled.canceller_id == "UREQ"
    assert cancelled.handled_by == "UREQ"
    assert store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a") is None
    assert store.cancel(request_id=request.id, canceller_id="UAPP") is None


def test_success_keeps_balances_exactly(store: Store) -> None:
    """Balances with 3 decimals come back unrounded; the trail names every actor."""
    request = _create(store)
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a")
    done = store.record_success(
        request_id=request.id,
        main_balance=Decimal("10225.119"),
        subaccount_balance=Decimal("0.800"),
        currency="EUR",
    )
    assert done is not None and done.status is Status.SUCCEEDED
    loaded = store.get(request.id)
    assert loaded is not None
    assert str(loaded.main_balance) == "10225.119"
    assert str(loaded.subaccount_balance) == "0.800"
    assert loaded.finished_at is not None
    trail = store.events(request.id)
    assert [(e.status, e.actor_id) for e in trail] == [
        (Status.PENDING, "UREQ"),
        (Status.EXECUTING, "UAPP"),
        (Status.SUCCEEDED, None),
    ]
    assert trail[0].at <= trail[1].at <= trail[2].at


def test_outcomes_only_from_executing(store: Store) -> None:
    """An outcome cannot be recorded on a request nobody claimed, nor recorded twice."""
    request = _create(store)
    assert store.record_failure(request_id=request.id, error_code=8, error_message="x") is None
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a")
    failed = store.record_failure(request_id=request.id, error_code=8, error_message="Insufficient")
    assert failed is not None
    assert (failed.status, failed.error_code, failed.error_message) == (
        Status.FAILED,
        8,
        "Insufficient",
    )
    assert store.record_unknown(request_id=request.id, reason="late") is None


def test_unknown_keeps_reason(store: Store) -> None:
    """executing -> unknown records why."""
    request = _create(store)
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a")
    moved = store.mark_unknown(request_ids=[request.id, "cr_missing"], reason="timeout")
    assert [(r.id, r.status, r.error_message) for r in moved] == [
        (request.id, Status.UNKNOWN, "timeout")
    ]
    assert store.executing() == []


def test_stale_cards_lists_ended_requests_whose_card_lags(store: Store) -> None:
    """An ended request whose card was never replaced is found, and not after mark_card."""
    request = _create(store)
    store.attach_card(request_id=request.id, message_ts="1700000000.000100")
    store.cancel(request_id=request.id, canceller_id="UREQ")
    later = utcnow() + dt.timedelta(minutes=5)
    assert [r.id for r in store.stale_cards(settled_before=later)] == [request.id]
    assert store.stale_cards(settled_before=utcnow() - dt.timedelta(minutes=5)) == []
    store.mark_card(request_id=request.id, status=Status.CANCELLED)
    assert store.stale_cards(settled_before=later) == []


def test_cards_shown_are_marked_together(store: Store) -> None:
    """Several cards recorded as shown in one call: none of them is stale any more, and a
    card not in the call still is."""
    ended = []
    for _ in range(3):
        request = _create(store)
        store.attach_card(request_id=request.id, message_ts="1700000000.000100")
        store.cancel(request_id=request.id, canceller_id="UREQ")
        ended.append(request.id)
    later = utcnow() + dt.timedelta(minutes=5)
    store.mark_cards({request_id: Status.CANCELLED for request_id in ended[:2]})
    assert [r.id for r in store.stale_cards(settled_before=later)] == [ended[2]]
    marked = [store.get(request_id) for request_id in ended[:2]]
    assert all(r is not None and r.card_status is Status.CANCELLED for r in marked)


def test_migrate_creates_latest_schema_once(store: Store) -> None:
    """A new database is at the latest version; migrating again changes nothing."""
    assert store.schema_version() == schema.LATEST_VERSION
    assert store.migrate() == schema.LATEST_VERSION
    assert store.schema_version() == schema.LATEST_VERSION


def test_upgrade_from_version_1_keeps_every_row(database_url: str) -> None:
    """A database made by schema 1 is upgraded at start without losing a row."""
    old = Store.from_url(database_url)
    with old.engine.begin() as conn:
        schema.migrate(conn, target=1)
        conn.execute(
            text(
                "INSERT INTO credit_requests (id, action, subaccount_token, amount, currency,"
                " status, requester_id, channel_id, message_ts, created_at, expires_at,"
                " approver_id, main_balance, subaccount_balance)"
                " VALUES (:id, 'add', 'sub-1', '12.34', 'EUR', :status, 'UREQ', 'CFIN',"
                " '1.2', :at, :at, 'UAPP', '100.000', '0.800')"
            ),
            [
                {"id": "cr_old_succeeded_0001", "status": "succeeded", "at": "2026-01-01 10:00:00"},
                {"id": "cr_old_pending_00002", "status": "pending", "at": "2026-01-01 10:00:00"},
            ],
        )
    assert old.schema_version() == 1
    old.close()

    store = Store.from_url(database_url)
    assert store.migrate() == 1
    assert store.schema_version() == schema.LATEST_VERSION
    done = store.get("cr_old_succeeded_0001")
    pending = store.get("cr_old_pending_00002")
    assert done is not None and pending is not None
    assert (done.status, done.amount, done.subaccount_balance) == (
        Status.SUCCEEDED,
        Decimal("12.34"),
        Decimal("0.800"),
    )
    assert str(done.subaccount_balance) == "0.800"
    # Ended before schema 2: its card already showed the outcome, so no sweep redoes it.
    assert done.card_status is Status.SUCCEEDED
    assert pending.card_status is None
    assert store.expired_pending() == ["cr_old_pending_00002"]
    store.close()


def test_same_trigger_id_opens_one_request(store: Store) -> None:
    """A second create with a command's trigger_id raises, naming the request it opened."""
    first = store.create(
        action=Action.ADD,
        subaccount_token="sub-42",
        amount=Decimal("1"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=900,
        trigger_id="trig-1",
    )
    with pytest.raises(DuplicateCommandError) as raised:
        store.create(
            action=Action.ADD,
            subaccount_token="sub-42",
            amount=Decimal("1"),
            currency="EUR",
            requester_id="UREQ",
            channel_id="CFIN",
            response_url=None,
            ttl_seconds=900,
            trigger_id="trig-1",
        )
    assert raised.value.request.id == first.id
    assert _create(store).trigger_id is None  # commands without one still open requests


def test_late_answer_of_its_executor_overrules_a_recovery_unknown(store: Store) -> None:
    """unknown -> succeeded only for the executor that sent it; the trail says it was late."""
    request = _create(store)
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a")
    store.mark_unknown(request_ids=[request.id], reason="could not be recorded")
    values = {"main_balance": Decimal("1"), "subaccount_balance": Decimal("2"), "currency": "EUR"}
    assert store.record_success(request_id=request.id, executor="h/2/b", **values) is None
    done = store.record_success(request_id=request.id, executor="h/1/a", **values)
    assert done is not None and done.status is Status.SUCCEEDED
    trail = store.events(request.id)
    assert [e.status for e in trail][-2:] == [Status.UNKNOWN, Status.SUCCEEDED]
    assert "recorded late" in (trail[-1].detail or "")


def test_card_back_off_keeps_a_refused_card_out_of_the_way(store: Store) -> None:
    """A failed card waits for its retry time, oldest first; a given-up one is never listed."""
    requests = [_create(store) for _ in range(2)]
    for request in requests:
        store.attach_card(request_id=request.id, message_ts="1700000000.000100")
        store.cancel(request_id=request.id, canceller_id="UREQ")
    later = utcnow() + dt.timedelta(minutes=5)
    assert [r.id for r in store.stale_cards(settled_before=later)] == [r.id for r in requests]
    store.card_failed(request_id=requests[0].id, retry_at=utcnow() + dt.timedelta(minutes=1))
    assert [r.id for r in store.stale_cards(settled_before=later)] == [requests[1].id]
    assert [r.id for r in store.stale_cards(settled_before=later, now=later)] == [
        r.id for r in requests
    ]
    assert store.card_failed(request_id=requests[0].id, retry_at=None) == 2
    assert [r.id for r in store.stale_cards(settled_before=later, now=later)] == [requests[1].id]


def test_overdue_is_judged_by_the_database_clock(store: Store) -> None:
    """A fresh claim is not overdue; one claimed long ago (as the database sees it) is."""
    request = _create(store)
    claimed = store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/a")
    assert claimed is not None and claimed.executing_at is not None
    assert store.overdue_executing(older_than_seconds=60) == []
    assert [r.id for r in store.overdue_executing(older_than_seconds=-60)] == [request.id]


def test_unposted_cards_are_pending_requests_without_a_ts_past_the_age(store: Store) -> None:
    """A pending request with no card ts is listed once old enough; one with a ts never."""
    without_ts, with_ts = _create(store), _create(store)
    store.attach_card(request_id=with_ts.id, message_ts="1700000000.000100")
    assert store.unposted_cards(older_than_seconds=60) == []
    assert store.unposted_cards(older_than_seconds=-60) == [without_ts.id]
