"""The sub-account directory against the loopback fake, on an injected clock (no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from bot.smspartner.client import APIError, CallRecord, SMSPartnerClient
from bot.smspartner.directory import CARD_MAX_AGE_SECONDS, SubaccountDirectory
from tests.fakes.smspartner import FakeSMSPartner

API_KEY = "directory-smspartner-key"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("500.125")) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSMSPartner) -> Iterator[FakeSMSPartner]:
    server.reset()
    server.main_balance = Decimal("500.125")
    server.subaccounts.clear()
    server.add_subaccount("shop-paris", Decimal("12.5"), email="Paris.Shop@Example.com")
    server.add_subaccount("shop-lyon", Decimal("0.8"), email="lyon@example.com")
    server.add_subaccount("warehouse", Decimal("3"), email="stock@example.com")
    yield server
    server.reset()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(fake: FakeSMSPartner, clock: Clock) -> Iterator[SubaccountDirectory]:
    with requests.Session() as session:
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        yield SubaccountDirectory(client, cache_seconds=300, min_refresh_seconds=5, now=clock)


def _list_calls(fake: FakeSMSPartner) -> int:
    return len(fake.requests_to("subaccount_list"))


def test_a_warm_cache_answers_without_calling(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """The first look-up reads the list once; the next ones, within the cache time, none."""
    assert directory.look_up("shop-paris").subaccount is not None
    assert _list_calls(fake) == 1
    clock.advance(299)
    found = directory.look_up("shop-lyon").subaccount
    assert found is not None and str(found.balance) == "0.800"
    assert _list_calls(fake) == 1


def test_the_cache_expires_after_its_time(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """After SUBACCOUNT_CACHE_SECONDS the list is read again, with the balances of now."""
    directory.look_up("shop-paris")
    fake.subaccounts["shop-paris"] = Decimal("99")
    clock.advance(300)
    found = directory.look_up("shop-paris").subaccount
    assert found is not None and found.balance == Decimal("99")
    assert _list_calls(fake) == 2


def test_a_miss_refreshes_once_and_finds_a_new_subaccount(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """A token created after the list was read is found: the miss re-reads it once."""
    directory.look_up("shop-paris")
    fake.add_subaccount("shop-nice", Decimal("1"))
    clock.advance(10)
    found = directory.look_up("shop-nice").subaccount
    assert found is not None and found.token == "shop-nice"
    assert _list_calls(fake) == 2


def test_a_flood_of_typos_refreshes_at_most_once_per_interval(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """100 unknown names within 5 s cause one refresh; 5 s later, one more at most."""
    directory.look_up("shop-paris")
    clock.advance(10)
    for attempt in range(100):
        assert directory.look_up(f"typo-{attempt}").subaccount is None
    assert _list_calls(fake) == 2
    clock.advance(5)
    for attempt in range(100):
        directory.look_up(f"typo-{attempt}")
    assert _list_calls(fake) == 3


def test_a_miss_right_after_the_first_read_does_not_read_again(
    directory: SubaccountDirectory, fake: FakeSMSPartner
) -> None:
    """A list read this instant is not re-read for a name it lacks: one call, not two."""
    assert directory.look_up("nobody").subaccount is None
    assert _list_calls(fake) == 1


def test_email_is_found_in_any_case(directory: SubaccountDirectory) -> None:
    """An e-mail matches whatever its case; the answer carries the token."""
    found = directory.look_up("PARIS.shop@example.COM").subaccount
    assert found is not None and found.token == "shop-paris"


def test_token_is_exact(directory: SubaccountDirectory) -> None:
    """A token matches only as written: SHOP-PARIS is not shop-paris, but is suggested."""
    lookup = directory.look_up("SHOP-PARIS")
    assert lookup.subaccount is None
    assert lookup.close_matches[0] == "shop-paris"


def test_a_typo_gets_up_to_three_close_matches(
    directory: SubaccountDirectory, fake: FakeSMSPartner
) -> None:
    """A near miss suggests tokens or e-mails as SMS Partner writes them, at most 3."""
    for city in ("shop-pau", "shop-parme", "shop-paros"):
        fake.add_subaccount(city)
    lookup = directory.look_up("shop-pari")
    assert lookup.subaccount is None
    assert len(lookup.close_matches) == 3
    assert lookup.close_matches[0] == "shop-paris"
    assert directory.look_up("lyon@exampel.com").close_matches[0] == "lyon@example.com"
    assert directory.look_up("zzzzzzzz").close_matches == ()


def test_card_balances_are_at_most_a_minute_old(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """With max_age=60 an older list is read again, though the cache would still serve it."""
    directory.look_up("warehouse")
    clock.advance(CARD_MAX_AGE_SECONDS)
    directory.look_up("warehouse", max_age=CARD_MAX_AGE_SECONDS)
    assert _list_calls(fake) == 2
    directory.look_up("warehouse")
    assert _list_calls(fake) == 2


def test_main_account_is_reused_for_a_minute(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """/me is read once, reused while under 60 s old, then read again with the new balance."""
    assert str(directory.main_account().balance) == "500.125"
    clock.advance(59)
    directory.main_account()
    assert len(fake.requests_to("me")) == 1
    fake.main_balance = Decimal("400")
    clock.advance(1)
    assert str(directory.main_account().balance) == "400.000"
    assert len(fake.requests_to("me")) == 2


def test_an_unreadable_list_raises_and_is_not_hammered(
    directory: SubaccountDirectory, fake: FakeSMSPartner, clock: Clock
) -> None:
    """A refused read raises to every caller for 5 s without another call, then is retried."""
    fake.fail_endpoint("subaccount_list", 10, times=1)  # a second read would succeed
    for _ in range(20):
        with pytest.raises(APIError):
            directory.look_up("shop-paris")
    assert _list_calls(fake) == 1
    clock.advance(5)
    assert directory.look_up("shop-paris").subaccount is not None
    assert _list_calls(fake) == 2


def test_concurrent_look_ups_share_one_read(
    directory: SubaccountDirectory, fake: FakeSMSPartner
) -> None:
    """Threads asking while the list is being read wait for that read: one call for all."""
    fake.hang_endpoint("subaccount_list")
    answers: list[str | None] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        found = directory.look_up("warehouse").subaccount
        answers.append(found.token if found else None)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    fake.wait_for_requests(1)
    fake.release()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == ["warehouse"] * 8
    assert _list_calls(fake) == 1


def test_subaccounts_lists_the_cached_list(
    directory: SubaccountDirectory, fake: FakeSMSPartner
) -> None:
    """subaccounts() gives every sub-account from the same cache as the look-ups."""
    directory.look_up("warehouse")
    tokens = [subaccount.token for subaccount in directory.subaccounts()]
    assert tokens == ["shop-paris", "shop-lyon", "warehouse"]
    assert _list_calls(fake) == 1


def test_a_transfer_makes_the_next_card_read_balances_again(
    fake: FakeSMSPartner, clock: Clock
) -> None:
    """Through the client's observer: after an add SMS Partner answered, the next look-up and
    /me read fresh balances at once (even within the refresh limit); a refused add does not."""
    heard: list[CallRecord] = []
    with requests.Session() as session:
        client = SMSPartnerClient(
            api_key=API_KEY, base_url=fake.base_url, session=session, observer=heard.append
        )
        directory = SubaccountDirectory(client, cache_seconds=300, now=clock)

        def add(amount: str) -> None:
            try:
                client.add_credit("shop-paris", Decimal(amount))
            finally:
                directory.note_call(heard[-1])  # as build_bot wires it: every call is told

        assert str(directory.main_account().balance) == "500.125"
        assert directory.look_up("shop-paris").subaccount is not None
        add("10.00")
        found = directory.look_up("shop-paris").subaccount
        assert found is not None and str(found.balance) == "22.500"
        assert str(directory.main_account().balance) == "490.125"
        assert (_list_calls(fake), len(fake.requests_to("me"))) == (2, 2)
        fake.force_error(8, "Crédit insuffisant")
        with pytest.raises(APIError):
            add("10.00")
        directory.look_up("shop-paris")
        directory.main_account()
        assert (_list_calls(fake), len(fake.requests_to("me"))) == (2, 2)


def test_a_zero_cache_reads_the_main_account_for_every_card(
    fake: FakeSMSPartner, clock: Clock
) -> None:
    """SUBACCOUNT_CACHE_SECONDS=0 holds for /me too: it is not kept for the card's minute."""
    with requests.Session() as session:
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        directory = SubaccountDirectory(client, cache_seconds=0, min_refresh_seconds=0, now=clock)
        directory.main_account()
        clock.advance(1)
        directory.main_account()
        assert len(fake.requests_to("me")) == 2
