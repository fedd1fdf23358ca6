"""Connections to SMS Partner: kept between calls, enough of them for a burst, and never
reused once idle long enough for the server to have closed them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests

from bot.smspartner import deadline
from bot.smspartner.client import KEPT_CONNECTIONS, SMSPartnerClient
from tests.fakes.smspartner import FakeSMSPartner
from tests.fakes.tcp_proxy import TCPProxy

API_KEY = "connections-smspartner-key"
TOKEN = "sub-connections"


@pytest.fixture
def fake() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, keep_alive=True) as fake:
        fake.add_subaccount(TOKEN, Decimal("10.000"))
        yield fake


@pytest.fixture
def proxy(fake: FakeSMSPartner) -> Iterator[TCPProxy]:
    """Counts the connections the client opens (the fake's port behind it)."""
    port = urlsplit(fake.base_url).port
    assert port is not None
    with TCPProxy(port) as proxy:
        yield proxy


@pytest.fixture
def client(fake: FakeSMSPartner, proxy: TCPProxy) -> Iterator[SMSPartnerClient]:
    base_url = urlsplit(fake.base_url)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    with requests.Session() as session:
        yield SMSPartnerClient(api_key=API_KEY, base_url=base_url, timeout=5, session=session)


def test_calls_in_a_row_share_one_connection(
    client: SMSPartnerClient, proxy: TCPProxy, fake: FakeSMSPartner
) -> None:
    for _ in range(5):
        client.add_credit(TOKEN, Decimal("1"))
    assert len(fake.requests_to("add")) == 5
    assert proxy.accepted == 1


def test_a_connection_idle_too_long_is_replaced_not_reused(
    client: SMSPartnerClient, proxy: TCPProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server may close an idle connection as a transfer is sent on it, and a transfer is
    never sent twice: after MAX_IDLE_SECONDS the next call opens a fresh connection."""
    monkeypatch.setattr(deadline, "MAX_IDLE_SECONDS", 0.2)
    client.add_credit(TOKEN, Decimal("1"))
    client.add_credit(TOKEN, Decimal("1"))
    assert proxy.accepted == 1
    time.sleep(0.3)
    client.add_credit(TOKEN, Decimal("1"))
    assert proxy.accepted == 2


def test_a_burst_keeps_its_connections_for_the_next_one(
    client: SMSPartnerClient, proxy: TCPProxy, fake: FakeSMSPartner
) -> None:
    """More calls at once than requests keeps by default (10): all of them kept, so the next
    burst opens none."""
    fake.delay_seconds = 0.3  # the calls overlap: one connection each
    threads = 20
    assert threads <= KEPT_CONNECTIONS
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client.add_credit(TOKEN, Decimal("1")), range(threads)))
        opened = proxy.accepted
        assert opened == threads
        list(pool.map(lambda _: client.add_credit(TOKEN, Decimal("1")), range(threads)))
    assert proxy.accepted == opened
