"""A hard total bound on every call, plain-English failures, and the call observer."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from bot.smspartner.client import (
    CallRecord,
    NoAnswerError,
    NotSentError,
    OutcomeUnknownError,
    SMSPartnerClient,
)
from bot.smspartner.deadline import BoundedAdapter, BoundedHTTPConnection
from tests.fakes.smspartner import FakeSMSPartner

API_KEY = "bound-smspartner-key"
TOKEN = "sub-bound"
# Each byte comes well within requests' per-read timeout (1 s), so only a total bound can stop
# an answer of a few hundred bytes, which would take about 10 s to trickle in whole.
TRICKLE_SECONDS = 0.03
TIMEOUT_SECONDS = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSMSPartner) -> Iterator[FakeSMSPartner]:
    server.reset()
    server.main_balance = Decimal("1000.000")
    server.subaccounts.clear()
    server.add_subaccount(TOKEN, Decimal("10.000"))
    yield server
    server.reset()


@pytest.fixture
def records() -> list[CallRecord]:
    return []


@pytest.fixture
def client(fake: FakeSMSPartner, records: list[CallRecord]) -> Iterator[SMSPartnerClient]:
    with requests.Session() as session:
        yield SMSPartnerClient(
            api_key=API_KEY,
            base_url=fake.base_url,
            timeout=TIMEOUT_SECONDS,
            session=session,
            observer=records.append,
        )


# -- the total bound ------------------------------------------------------------------------


def test_a_trickled_answer_is_read_when_it_fits_the_bound(fake: FakeSMSPartner) -> None:
    """Control: trickle mode sends a whole, valid answer; only time stops the bounded calls."""
    fake.trickle_seconds = 0.0005
    with requests.Session() as session:
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        assert client.add_credit(TOKEN, Decimal("1")).subaccount_balance == Decimal("11")


def test_a_trickled_credit_answer_makes_the_outcome_unknown(
    client: SMSPartnerClient, fake: FakeSMSPartner, records: list[CallRecord]
) -> None:
    """A POST answered one byte at a time is cut at the timeout: OutcomeUnknownError (it was
    sent, and here the fake did move the credit), not a success 10 s later; sent once."""
    fake.trickle_seconds = TRICKLE_SECONDS
    with pytest.raises(OutcomeUnknownError, match=r"^SMS Partner did not answer within 1 s\.$"):
        client.add_credit(TOKEN, Decimal("5"))
    assert len(fake.requests) == 1
    assert fake.subaccounts[TOKEN] == Decimal("15")
    assert [(r.operation, r.outcome, r.code) for r in records] == [("add", "unknown", None)]


@pytest.mark.parametrize("endpoint", ["me", "subaccount_list"])
def test_a_trickled_read_is_no_answer(
    client: SMSPartnerClient, fake: FakeSMSPartner, endpoint: str
) -> None:
    """A GET answered one byte at a time is cut at the timeout: NoAnswerError, not retried."""
    fake.trickle_seconds = TRICKLE_SECONDS
    call = client.main_account if endpoint == "me" else client.subaccounts
    with pytest.raises(NoAnswerError, match=r"^SMS Partner did not answer within 1 s\.$"):
        call()
    assert len(fake.requests) == 1


def test_the_client_works_again_after_a_cut_call(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """A call the deadline cut leaves no broken connection behind for the next one."""
    fake.trickle_seconds = TRICKLE_SECONDS
    with pytest.raises(NoAnswerError):
        client.main_account()
    fake.reset()
    assert client.main_account().currency == "EUR"


# -- what the failure says ------------------------------------------------------------------


def test_the_class_chain_is_only_in_a_debug_line(
    fake: FakeSMSPartner, caplog: pytest.LogCaptureFixture
) -> None:
    """The text is plain English; requests' and urllib3's class names go to one DEBUG line."""
    fake.hang = True
    with caplog.at_level(logging.DEBUG, logger="bot.smspartner.client"), requests.Session() as s:
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, timeout=0.3, session=s)
        with pytest.raises(OutcomeUnknownError) as caught:
            client.add_credit(TOKEN, Decimal("1"))
    assert str(caught.value) == "SMS Partner did not answer within 0.3 s."
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.smspartner.client"]
    # Which classes depends on who gave up first, the read timeout or the total deadline.
    assert any(re.search(r": \w+ < \w+", line) for line in lines)


# -- the observer ---------------------------------------------------------------------------


def test_observer_hears_each_outcome(
    client: SMSPartnerClient, fake: FakeSMSPartner, records: list[CallRecord]
) -> None:
    """One record per call: ok (200), refused (its code), rate_limited (429), bad_answer."""
    client.add_credit(TOKEN, Decimal("1"))
    with pytest.raises(Exception, match="does not exist"):
        client.remove_credit("nobody", Decimal("1"))
    fake.rate_limited = True
    with pytest.raises(Exception, match="limiting"):
        client.add_credit(TOKEN, Decimal("1"))
    fake.reset()
    fake.http_500 = True
    with pytest.raises(Exception, match="HTTP 500"):
        client.add_credit(TOKEN, Decimal("1"))
    assert [(r.operation, r.outcome, r.code) for r in records] == [
        ("add", "ok", 200),
        ("remove", "refused", 7),
        ("add", "rate_limited", 429),
        ("add", "bad_answer", None),
    ]
    assert all(record.seconds >= 0 for record in records)


def test_an_observer_that_raises_does_not_break_the_call(
    fake: FakeSMSPartner, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing observer is logged and ignored: the transfer's result still comes back."""

    def broken(record: CallRecord) -> None:
        raise RuntimeError("metrics are down")

    with requests.Session() as session:
        client = SMSPartnerClient(
            api_key=API_KEY, base_url=fake.base_url, session=session, observer=broken
        )
        assert client.add_credit(TOKEN, Decimal("1")).subaccount_balance == Decimal("11")
    assert any("observer" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_connections_to_the_api_are_bounded_ones(fake: FakeSMSPartner, scheme: str) -> None:
    """Plain and TLS connections of the API's adapter (also through an HTTP proxy) register
    with the call's deadline; the trickle tests run over http, production over https."""
    with requests.Session() as session:
        SMSPartnerClient(api_key=API_KEY, base_url=f"{scheme}://127.0.0.1:9/v1", session=session)
        adapter = session.get_adapter(f"{scheme}://127.0.0.1:9/v1/me")
        assert isinstance(adapter, BoundedAdapter)
        managers = [adapter.poolmanager, adapter.proxy_manager_for("http://127.0.0.1:9")]
        for manager in managers:
            pool = manager.connection_from_url(f"{scheme}://127.0.0.1:9/")
            assert issubclass(pool.ConnectionCls, BoundedHTTPConnection)


def test_a_failed_tls_handshake_is_not_sent() -> None:
    """A server that answers the TLS hello with garbage fails before the request was handed
    to the connection: NotSentError (safe to ask again), not an unknown outcome."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_garbage() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"this is not TLS\r\n")
                connection.recv(4096)

        server = threading.Thread(target=answer_garbage, daemon=True)
        server.start()
        with requests.Session() as session:
            client = SMSPartnerClient(
                api_key=API_KEY, base_url=f"https://127.0.0.1:{port}/v1", session=session
            )
            with pytest.raises(NotSentError, match="nothing was sent"):
                client.add_credit(TOKEN, Decimal("1"))
        server.join(timeout=5)
