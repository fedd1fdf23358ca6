"""The background pools: bounded, and separate, so transfers held by a hung SMS Partner
hold up neither the acks nor the cards of new commands, nor cancels."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain import Status
from bot.slack.app import CARD_THREADS, READ_THREADS, TRANSFER_THREADS, Pools
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID
from bot.store import Store
from tests.e2e import API_KEY, BOT_TOKEN, AppProcess, app_env, open_request
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner

# Clicks beyond the transfer pool's size, queued behind the hung ones.
QUEUED = 2


def test_each_pool_runs_at_most_its_size_at_once() -> None:
    """A pool full of blocked work starts nothing more until one of them ends."""
    pools = Pools.start()
    release = threading.Event()
    started = threading.Semaphore(0)
    extra_ran = threading.Event()
    try:
        sized = ((pools.transfers, TRANSFER_THREADS), (pools.reads, READ_THREADS))
        for pool, size in (*sized, (pools.cards, CARD_THREADS)):
            release.clear()
            extra_ran.clear()

            def blocked() -> None:
                started.release()
                release.wait()

            for _ in range(size):
                pool.submit(blocked)
            for _ in range(size):
                assert started.acquire(timeout=10)
            pool.submit(extra_ran.set)
            # Every thread is held, so the extra task cannot have started, whatever the timing.
            assert not extra_ran.is_set()
            release.set()
            assert extra_ran.wait(timeout=10)
    finally:
        release.set()
        pools.shutdown(wait=True)


@pytest.fixture
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("100000.000")) as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


def test_hung_transfers_hold_up_no_ack_card_or_cancel(
    tmp_path: Path, slack: FakeSlack, smspartner: FakeSMSPartner
) -> None:
    """With every transfer thread waiting on a hung SMS Partner and more clicks queued,
    a new command is answered and its card posted, and a Cancel click still cancels."""
    tokens = [f"sub-{secrets.token_hex(4)}" for _ in range(TRANSFER_THREADS + QUEUED + 2)]
    # Before the app's first read of SMS Partner's list: later ones would be refused.
    for token in tokens:
        smspartner.add_subaccount(token, Decimal("100.000"))
    database = tmp_path / "credit_bot.db"
    env = app_env(
        slack=slack,
        smspartner=smspartner,
        database_url=f"sqlite:///{database}",
        SMSPARTNER_TIMEOUT_SECONDS="120",
    )
    app = AppProcess(env=env, workdir=tmp_path).start()
    store = Store.from_url(f"sqlite:///{database}")
    try:
        sender = app.sender(slack)
        *clicked, to_cancel, late = tokens
        requests = [open_request(sender, slack, f"add {token} 1") for token in clicked]
        cancel_id = open_request(sender, slack, f"add {to_cancel} 1")

        smspartner.hang_endpoint("add")
        for request_id in requests:
            assert sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP").status_code == 200
        smspartner.wait_for_transfers(TRANSFER_THREADS, timeout=60)

        # The transfer pool is full and has work queued: none of this may wait for it.
        late_id = open_request(sender, slack, f"add {late} 1")
        assert sender.click(CANCEL_ACTION_ID, cancel_id, user_id="UREQ").status_code == 200
        slack.wait_for(
            lambda _: (r := store.get(cancel_id)) is not None and r.status is Status.CANCELLED,
            timeout=30,
        )
        assert store.get(late_id) is not None
        # Bounded: the queued clicks have not reached SMS Partner while the pool is held.
        assert len(smspartner.transfers) == TRANSFER_THREADS
    finally:
        smspartner.release()
        app.stop()
        store.close()
