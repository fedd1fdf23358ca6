"""The read calls (GET /me, GET /subaccount/list): parse, paging, retries, errors, secrets."""

from __future__ import annotations

import dataclasses
import logging
import socket
import traceback
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from bot.smspartner.accounts import (
    MainAccount,
    Subaccount,
    parse_main_account,
    parse_subaccount_page,
)
from bot.smspartner.client import (
    APIError,
    BadAnswerError,
    CallRecord,
    NoAnswerError,
    NotSentError,
    RateLimitedError,
    SMSPartnerClient,
    SMSPartnerError,
)
from tests.fakes.smspartner import FakeSMSPartner

API_KEY = "reads-smspartner-key-5f3a"
SUB_KEY = "sub-secret-key-9d1c"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("10225.119")) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSMSPartner) -> Iterator[FakeSMSPartner]:
    server.reset()
    server.main_balance = Decimal("10225.119")
    server.subaccounts.clear()
    server.add_subaccount("shop-paris", Decimal("0.8"), email="Paris@Example.com")
    server.add_subaccount("shop-lyon", Decimal("61.25"))
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
            timeout=2.0,
            session=session,
            observer=records.append,
        )


# -- the parse ------------------------------------------------------------------------------


def test_main_account_parse_keeps_three_decimals() -> None:
    """/me's balance "10225.119" stays that exact Decimal; the owner's names are read."""
    account = parse_main_account(
        {
            "success": True,
            "user": {"username": "a@b.c", "firstname": "John", "lastname": "Doe"},
            "credits": {"solde": "10225.119", "currency": "EUR", "balance": "10225.119"},
        }
    )
    assert account == MainAccount(Decimal("10225.119"), "EUR", "a@b.c", "John", "Doe")
    assert str(account.balance) == "10225.119"


def test_subaccount_parse_drops_the_subaccount_api_key() -> None:
    """A listed sub-account's own apiKey is in no field and no repr of what the parse returns."""
    page = parse_subaccount_page(
        {
            "success": True,
            "total": Decimal(1),
            "nb_per_page": Decimal(20),
            "data": [
                {
                    "id": Decimal(7),
                    "email": "x@example.com",
                    "type": "subaccount",
                    "token": "tok-1",
                    "createdAt": "2026-01-05 09:30:00",
                    "credits": {"balance": "0.800", "currency": "EUR"},
                    "apiKey": SUB_KEY,
                }
            ],
        }
    )
    (subaccount,) = page.subaccounts
    assert subaccount == Subaccount(
        "tok-1", "x@example.com", "7", "subaccount", "2026-01-05 09:30:00", Decimal("0.800"), "EUR"
    )
    assert str(subaccount.balance) == "0.800"
    assert SUB_KEY not in repr(page)
    assert "apiKey" not in {field.name for field in dataclasses.fields(Subaccount)}


@pytest.mark.parametrize(
    "fields",
    [
        {"success": True},
        {"success": True, "credits": {"currency": "EUR"}},
        {"success": True, "credits": {"balance": 12.5, "currency": "EUR"}},
        {"success": True, "credits": {"balance": "1e3", "currency": "EUR"}},
        {"success": True, "credits": {"balance": "1.000", "currency": ""}},
    ],
)
def test_main_account_without_a_readable_balance_is_a_bad_answer(fields: dict[str, Any]) -> None:
    """No credits, no balance, a float (never parsed so), an exponent or no currency: unreadable."""
    with pytest.raises(BadAnswerError):
        parse_main_account(fields)


# -- against the fake -----------------------------------------------------------------------


def test_main_account_reads_the_live_balance(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """main_account() is one GET /me with the key in the query; balance exactly as sent."""
    account = client.main_account()
    assert str(account.balance) == "10225.119"
    assert (account.currency, account.username) == ("EUR", fake.username)
    (request,) = fake.requests
    assert (request.method, request.path) == ("GET", "/v1/me")
    assert f"apiKey={API_KEY}" in request.query


def test_subaccounts_reads_the_same_balances_as_the_credit_calls(
    client: SMSPartnerClient,
) -> None:
    """After an add, the listing shows both sub-accounts with 3-decimal balances, no keys."""
    client.add_credit("shop-paris", Decimal("1.2"))
    listed = {subaccount.token: subaccount for subaccount in client.subaccounts()}
    assert list(listed) == ["shop-paris", "shop-lyon"]
    assert str(listed["shop-paris"].balance) == "2.000"
    assert str(listed["shop-lyon"].balance) == "61.250"
    assert listed["shop-paris"].email == "Paris@Example.com"
    assert str(client.main_account().balance) == "10223.919"


def test_subaccounts_reads_every_page(
    client: SMSPartnerClient, fake: FakeSMSPartner, records: list[CallRecord]
) -> None:
    """45 sub-accounts, 20 a page: 3 GETs (pages 1, 2, 3), all 45 in order, each once."""
    fake.subaccounts.clear()
    for number in range(45):
        fake.add_subaccount(f"sub-{number:02d}", Decimal(number))
    listed = client.subaccounts()
    assert [subaccount.token for subaccount in listed] == [f"sub-{n:02d}" for n in range(45)]
    pages = [request.query.rpartition("page=")[2] for request in fake.requests]
    assert pages == ["1", "2", "3"]
    assert [(r.operation, r.outcome) for r in records] == [("subaccount_list", "ok")] * 3


def test_exactly_full_pages_stop_at_the_total(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """40 sub-accounts: the total says 2 pages are all, so no third GET is made."""
    fake.subaccounts.clear()
    for number in range(40):
        fake.add_subaccount(f"sub-{number:02d}")
    assert len(client.subaccounts()) == 40
    assert len(fake.requests) == 2


def test_no_subaccounts_is_an_empty_list(client: SMSPartnerClient, fake: FakeSMSPartner) -> None:
    """An account without sub-accounts lists none, in one GET."""
    fake.subaccounts.clear()
    assert client.subaccounts() == []
    assert len(fake.requests) == 1


@pytest.mark.parametrize("endpoint", ["me", "subaccount_list"])
def test_invalid_key_is_refused_and_not_retried(
    fake: FakeSMSPartner, endpoint: str, records: list[CallRecord]
) -> None:
    """Code 10 on a read is an APIError with our text and the vendor's; asked once only."""
    with requests.Session() as session:
        client = SMSPartnerClient(
            api_key="wrong-key", base_url=fake.base_url, session=session, observer=records.append
        )
        call = client.main_account if endpoint == "me" else client.subaccounts
        with pytest.raises(APIError) as caught:
            call()
    assert caught.value.code == 10
    assert caught.value.user_message.startswith("The SMS Partner API key is invalid.")
    assert len(fake.requests) == 1
    assert records[0] == dataclasses.replace(
        records[0], operation=endpoint, outcome="refused", code=10
    )


def test_rate_limited_read_is_not_retried(client: SMSPartnerClient, fake: FakeSMSPartner) -> None:
    """HTTP 429 on a read is RateLimitedError after one GET: insisting would not help."""
    fake.fail_endpoint("me", 429, "Trop de requêtes", http_status=429)
    with pytest.raises(RateLimitedError):
        client.main_account()
    assert len(fake.requests) == 1


def test_one_server_error_is_retried_once(
    client: SMSPartnerClient, fake: FakeSMSPartner, records: list[CallRecord]
) -> None:
    """A 500 then a good answer: the read succeeds on its second GET."""
    fake.fail_endpoint("me", 500, "Erreur interne", http_status=500, times=1)
    assert str(client.main_account().balance) == "10225.119"
    assert [r.outcome for r in records] == ["bad_answer", "ok"]
    assert len(fake.requests_to("me")) == 2


def test_a_lasting_server_error_gives_up_after_two_tries(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """A page that keeps answering 500 is BadAnswerError after two GETs, not more."""
    fake.fail_endpoint("subaccount_list", 500, "Erreur interne", http_status=500)
    with pytest.raises(BadAnswerError, match="HTTP 500"):
        client.subaccounts()
    assert len(fake.requests) == 2


def test_unreachable_read_is_tried_twice_then_not_sent(records: list[CallRecord]) -> None:
    """A refused connection is retried once, then NotSentError; two not_sent records."""
    with requests.Session() as session:
        client = SMSPartnerClient(
            api_key=API_KEY,
            base_url=f"http://127.0.0.1:{_closed_port()}/v1",
            session=session,
            observer=records.append,
        )
        with pytest.raises(NotSentError, match="refused the connection"):
            client.main_account()
    assert [(r.operation, r.outcome, r.code) for r in records] == [("me", "not_sent", None)] * 2


def test_hung_read_is_no_answer_and_not_retried(
    fake: FakeSMSPartner, records: list[CallRecord]
) -> None:
    """A read that gets no answer in time is NoAnswerError, said plainly, after one GET."""
    fake.hang_endpoint("subaccount_list")
    with requests.Session() as session:
        client = SMSPartnerClient(
            api_key=API_KEY,
            base_url=fake.base_url,
            timeout=0.3,
            session=session,
            observer=records.append,
        )
        with pytest.raises(NoAnswerError, match=r"^SMS Partner did not answer within 0\.3 s\.$"):
            client.subaccounts()
    assert len(fake.requests) == 1
    assert [r.outcome for r in records] == ["unknown"]


def test_hang_on_one_endpoint_leaves_the_others(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """hang_endpoint("subaccount_list") holds only the listing: /me still answers."""
    fake.hang_endpoint("subaccount_list")
    assert client.main_account().currency == "EUR"


# -- secrets --------------------------------------------------------------------------------


def _arm(fake: FakeSMSPartner, scenario: str) -> dict[str, Any]:
    if scenario == "refused":
        return {"base_url": f"http://127.0.0.1:{_closed_port()}/v1"}
    if scenario in ("hang", "trickle"):
        if scenario == "hang":
            fake.hang = True
        else:
            fake.trickle_seconds = 0.05
        return {"timeout": 0.3}
    if scenario == "key-echoed":
        fake.force_error(10, f"Clé API incorrecte : {API_KEY}", http_status=401)
    elif scenario == "garbage":
        fake.garbage_body = True
    elif scenario != "success":
        setattr(fake, scenario, True)
    return {}


@pytest.mark.parametrize("endpoint", ["me", "subaccount_list"])
@pytest.mark.parametrize(
    "scenario",
    [
        "success",
        "key-echoed",
        "rate_limited",
        "http_500",
        "garbage",
        "hang",
        "trickle",
        "close_connection_after_request",
        "refused",
    ],
)
def test_no_key_in_any_exception_or_log_line(
    fake: FakeSMSPartner, caplog: pytest.LogCaptureFixture, scenario: str, endpoint: str
) -> None:
    """Neither our key (in the GET's query) nor a sub-account's key appears in an exception's
    text, repr or traceback, a returned value's repr, or any DEBUG record (urllib3's too)."""
    secrets = [API_KEY, *(fake.subaccount_api_key(token) for token in fake.subaccounts)]
    options = {"api_key": API_KEY, "base_url": fake.base_url} | _arm(fake, scenario)
    shown: list[str] = []
    with caplog.at_level(logging.DEBUG), requests.Session() as session:
        client = SMSPartnerClient(session=session, **options)
        try:
            result = client.main_account() if endpoint == "me" else client.subaccounts()
        except SMSPartnerError as error:
            shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
        else:
            assert scenario == "success"
            shown.append(repr(result))
    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(record.args) for record in caplog.records]
    assert caplog.records
    assert not [text for text in shown if any(secret in text for secret in secrets)]
    if scenario == "success":
        assert any("apiKey=[redacted]" in record.getMessage() for record in caplog.records)
