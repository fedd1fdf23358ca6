"""Settling unknown outcomes by hand, and what the card saw: the store and the flow, on a real
database (SQLite, and PostgreSQL when configured) and a loopback SMS Partner."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from bot import audit
from bot.domain import Action, CreditRequest, Status
from bot.flow.commands import CreditCommand
from bot.flow.lookups import CannotResolve, Insufficient, NotFound, Seen, look_before_card
from bot.flow.policy import CANNOT_CHECK_APPROVERS, Policy
from bot.flow.resolutions import BalancesNow, Refusal, Resolutions, Resolved
from bot.smspartner.client import SMSPartnerClient
from bot.smspartner.directory import SubaccountDirectory
from bot.store import Store
from bot.texts import Texts
from tests.fakes.smspartner import FakeSMSPartner

EN = Texts.for_language("en")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def fake() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(main_balance=Decimal("10225.119")) as server:
        server.add_subaccount("shop-paris", Decimal("0.800"), email="Paris@Example.com")
        yield server


@pytest.fixture
def directory(fake: FakeSMSPartner) -> SubaccountDirectory:
    client = SMSPartnerClient(api_key=fake.api_key, base_url=fake.base_url, timeout=2)
    return SubaccountDirectory(client, min_refresh_seconds=0)


def _unknown(store: Store, *, requester: str = "UREQ") -> CreditRequest:
    request = store.create(
        action=Action.ADD,
        subaccount_token="shop-paris",
        amount=Decimal("5.00"),
        currency="EUR",
        requester_id=requester,
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=60,
        main_balance_before=Decimal("10225.119"),
        subaccount_balance_before=Decimal("0.800"),
    )
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/x")
    unknown = store.record_unknown(request_id=request.id, reason="No answer from SMS Partner.")
    assert unknown is not None
    return unknown


def test_resolution_is_one_attributed_transition(store: Store) -> None:
    """unknown -> succeeded once, with who and when, in the trail; a second try wins nothing."""
    request = _unknown(store)
    resolved = store.resolve(request_id=request.id, resolver_id="UAPP2", went_through=True)
    assert resolved is not None and resolved.status is Status.SUCCEEDED
    assert resolved.resolver_id == "UAPP2" and resolved.resolved_at is not None
    assert store.resolve(request_id=request.id, resolver_id="UAPP", went_through=False) is None
    last = store.events(request.id)[-1]
    assert (last.status, last.actor_id) == (Status.SUCCEEDED, "UAPP2")
    assert last.detail == "resolved by hand: it went through"
    row = list(audit.list_requests(store, limit=1, status=None))[1].split("\t")
    assert row[audit.COLUMNS.index("resolver")] == "UAPP2"


def test_only_unknown_requests_can_be_resolved(store: Store) -> None:
    """A pending request cannot be settled by hand: nothing was sent."""
    request = store.create(
        action=Action.ADD,
        subaccount_token="shop-paris",
        amount=Decimal("1.00"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=60,
    )
    assert store.resolve(request_id=request.id, resolver_id="UAPP", went_through=True) is None


def test_racing_resolutions_have_one_winner(store: Store) -> None:
    """Ten approvers click at once, some each way: exactly one resolution is recorded."""
    request = _unknown(store)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(
                lambda n: store.resolve(
                    request_id=request.id, resolver_id=f"UAPP{n}", went_through=n % 2 == 0
                ),
                range(10),
            )
        )
    assert len([r for r in results if r is not None]) == 1
    settled = [e for e in store.events(request.id) if e.detail and "by hand" in e.detail]
    assert len(settled) == 1


def test_who_may_check_and_settle(store: Store, directory: SubaccountDirectory) -> None:
    """The requester may check but not settle; an approver may both; a stranger neither."""
    request = _unknown(store)
    flow = Resolutions(
        store=store, directory=directory, policy=Policy(approvers=frozenset({"UAPP"}))
    )
    checked = flow.check_balances(request.id, user_id="UREQ", channel_id="CFIN")
    assert isinstance(checked, BalancesNow)
    assert checked.subaccount_balance == Decimal("0.800")
    assert checked.main_balance == Decimal("10225.119")
    assert isinstance(flow.check_balances(request.id, user_id="UX", channel_id="CFIN"), Refusal)
    refused = flow.resolve(request.id, user_id="UREQ", channel_id="CFIN", went_through=True)
    assert isinstance(refused, Refusal) and "approver" in EN.say(refused.wording)
    elsewhere = flow.resolve(request.id, user_id="UAPP", channel_id="COTHER", went_through=True)
    assert isinstance(elsewhere, Refusal) and "does not exist" in EN.say(elsewhere.wording)
    done = flow.resolve(request.id, user_id="UAPP", channel_id="CFIN", went_through=False)
    assert isinstance(done, Resolved) and done.request.status is Status.FAILED


def test_without_approvers_the_requester_settles(
    store: Store, directory: SubaccountDirectory
) -> None:
    """With no approvers configured, the requester settles their own request."""
    request = _unknown(store)
    flow = Resolutions(store=store, directory=directory, policy=Policy())
    done = flow.resolve(request.id, user_id="UREQ", channel_id="CFIN", went_through=True)
    assert isinstance(done, Resolved)


def test_an_unknown_group_membership_refuses(store: Store, directory: SubaccountDirectory) -> None:
    """Approvers in a group Slack cannot be asked about: settling waits, it is not guessed."""
    request = _unknown(store)
    flow = Resolutions(
        store=store, directory=directory, policy=Policy(approvers=frozenset({"SFIN"}))
    )
    refused = flow.resolve(request.id, user_id="UAPP", channel_id="CFIN", went_through=True)
    assert refused == Refusal(CANNOT_CHECK_APPROVERS)


def test_look_before_card(directory: SubaccountDirectory, fake: FakeSMSPartner) -> None:
    """By e-mail: its token and both exact balances; short of money or unknown: refused."""
    seen = look_before_card(directory, CreditCommand(Action.ADD, "paris@example.COM", Decimal("5")))
    assert isinstance(seen, Seen)
    assert (seen.token, seen.email) == ("shop-paris", "Paris@Example.com")
    assert (seen.subaccount_balance, seen.main_balance) == (Decimal("0.800"), Decimal("10225.119"))
    short = look_before_card(directory, CreditCommand(Action.REMOVE, "shop-paris", Decimal("1")))
    assert short == Insufficient(Action.REMOVE, Decimal("0.800"), "EUR")
    missing = look_before_card(directory, CreditCommand(Action.ADD, "shop-pari", Decimal("1")))
    assert missing == NotFound("shop-pari", ("shop-paris",))


def test_unreadable_list_still_gives_a_card_for_a_token(fake: FakeSMSPartner) -> None:
    """List and /me failing: a token gets a card without balances; an e-mail cannot be resolved."""
    fake.fail_endpoint("subaccount_list", 10)
    fake.fail_endpoint("me", 10)
    client = SMSPartnerClient(api_key=fake.api_key, base_url=fake.base_url, timeout=2)
    directory = SubaccountDirectory(client, min_refresh_seconds=0)
    seen = look_before_card(directory, CreditCommand(Action.ADD, "shop-paris", Decimal("5")))
    assert seen == Seen("shop-paris", None, None, None, None, None)
    by_email = look_before_card(directory, CreditCommand(Action.ADD, "a@example.com", Decimal("5")))
    assert by_email == CannotResolve("a@example.com")
