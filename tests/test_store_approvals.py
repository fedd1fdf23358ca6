"""The store's approval claims under concurrency, on SQLite and PostgreSQL: one first
approver, the claim only by a different second one, the daily limit inside the claim."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from bot.domain import Action, CreditRequest, Status
from bot.store import Store

THREADS = 12


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.migrate()
    yield store
    store.close()


def _open(
    store: Store, amount: str, *, approvals_needed: int = 1, token: str = "sub-1"
) -> CreditRequest:
    return store.create(
        action=Action.ADD,
        subaccount_token=token,
        amount=Decimal(amount),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=600,
        approvals_needed=approvals_needed,
    )


def test_of_approvers_clicking_at_once_exactly_one_is_first(store: Store) -> None:
    """Many approve_first calls at once by different approvers: one records, all others see None."""
    request = _open(store, "600", approvals_needed=2)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(
            pool.map(
                lambda n: store.approve_first(request_id=request.id, approver_id=f"UAPP{n}"),
                range(THREADS),
            )
        )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = store.get(request.id)
    assert stored is not None and stored.first_approver_id == winners[0].first_approver_id
    assert [a for a, _ in store.approvals(request.id)] == [stored.first_approver_id]


def test_a_request_needing_two_is_claimed_only_by_a_different_second_approver(store: Store) -> None:
    """No claim before the first approval, none by the first approver, one by another."""
    request = _open(store, "600", approvals_needed=2)
    assert store.claim(request_id=request.id, approver_id="UA", executor="x") is None
    store.approve_first(request_id=request.id, approver_id="UA")
    assert store.claim(request_id=request.id, approver_id="UA", executor="x") is None
    claimed = store.claim(request_id=request.id, approver_id="UB", executor="x")
    assert claimed is not None and claimed.status is Status.EXECUTING
    assert sorted(a for a, _ in store.approvals(request.id)) == ["UA", "UB"]


def test_daily_limit_holds_for_concurrent_claims(store: Store) -> None:
    """Ten 30 EUR requests claimed at once under a 100 EUR limit: three execute, seven are
    failed as over the limit, and nothing else on another sub-account is affected."""
    requests = [_open(store, "30") for _ in range(10)]
    other = _open(store, "90", token="sub-2")
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        claimed = list(
            pool.map(
                lambda r: store.claim(
                    request_id=r.id, approver_id="UAPP", executor="x", daily_limit=Decimal("100")
                ),
                [*requests, other],
            )
        )
    statuses = [c.status for c in claimed if c is not None]
    assert statuses.count(Status.EXECUTING) == 4  # three of sub-1, and sub-2's own
    assert statuses.count(Status.FAILED) == 7
    failed = next(c for c in claimed if c is not None and c.status is Status.FAILED)
    assert failed.error_message is not None and "Daily limit reached" in failed.error_message
    assert store.added_in_last_day("sub-1") == Decimal("90")


def test_reminder_is_claimed_once(store: Store) -> None:
    """Of many claim_reminder calls at once, one gets the request."""
    request = _open(store, "10")
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(
            pool.map(lambda _: store.claim_reminder(request_id=request.id), range(THREADS))
        )
    assert len([r for r in results if r is not None]) == 1
