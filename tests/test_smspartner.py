"""The SMS Partner client against a loopback fake of the vendor's API."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from bot.smspartner.client import (
    APIError,
    BadAnswerError,
    NotSentError,
    OutcomeUnknownError,
    RateLimitedError,
    SMSPartnerClient,
    SMSPartnerError,
    Transfer,
    error_text,
)
from tests.fakes.smspartner import MESSAGES, RATE_LIMITED_MESSAGE, FakeSMSPartner

API_KEY = "test-smspartner-key"
TOKEN = "sub-1"
EMPTY_TOKEN = "sub-empty"
START_MAIN = Decimal("1000.000")
START_SUB = Decimal("10.000")

MakeClient = Callable[..., SMSPartnerClient]

# code, what SMS Partner says, what we show: SPEC.md section 1, plus the other numberings.
ERROR_TABLE = [
    (1, "Clé API requise", "The bot has no SMS Partner API key configured."),
    (2, "Crédit requis", "No credit amount was sent."),
    (3, "Identifiant du sous-compte requis", "No sub-account token was sent."),
    (
        4,
        "Vous n'avez pas la permission",
        "This SMS Partner account is not allowed to manage sub-account credit.",
    ),
    (5, "Le crédit à attribuer doit être supérieur à 0", "The amount must be greater than 0."),
    (
        6,
        "Le solde doit être supérieur à 0",
        "The balance to take the credit from must be greater than 0.",
    ),
    (7, "Le sous-compte n'existe pas", "Sub-account does not exist."),
    (8, "Crédit insuffisant", "Insufficient credit for this transfer."),
    (9, "Invalid API key", "The SMS Partner API key is invalid."),
    (10, "Clé API incorrecte", "The SMS Partner API key is invalid."),
    (11, "Crédit insuffisant", "Insufficient credit for this transfer."),
    (
        96,
        "IP non autorisée",
        "SMS Partner refuses calls from this server's IP address (the account has an IP "
        "allow-list).",
    ),
    (42, "Erreur inattendue <b>", "SMS Partner error 42: Erreur inattendue <b>"),
]


def _unused_port() -> int:
    """A port nothing listens on: the OS gave it to us, and we let it go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _no_float(text: str) -> Any:
    raise AssertionError(f"a JSON float went on the wire: {text}")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSMSPartner) -> Iterator[FakeSMSPartner]:
    server.reset()
    server.main_balance = START_MAIN
    server.subaccounts.clear()
    server.add_subaccount(TOKEN, START_SUB)
    server.add_subaccount(EMPTY_TOKEN, Decimal("0"))
    yield server
    server.reset()  # also frees a handler a test left hanging


@pytest.fixture
def make_client(fake: FakeSMSPartner) -> Iterator[MakeClient]:
    sessions: list[requests.Session] = []

    def make(**overrides: Any) -> SMSPartnerClient:
        session = requests.Session()
        sessions.append(session)
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": fake.base_url,
            "timeout": 2.0,
            "session": session,
        }
        return SMSPartnerClient(**(options | overrides))

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def client(make_client: MakeClient) -> SMSPartnerClient:
    return make_client()


def _untouched(fake: FakeSMSPartner) -> bool:
    return fake.main_balance == START_MAIN and fake.subaccounts[TOKEN] == START_SUB


# -- money moves ---------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["json", "xml"])
def test_add_moves_credit_into_the_subaccount(
    make_client: MakeClient, fake: FakeSMSPartner, response_format: str
) -> None:
    """add takes the amount from the main account and reports both balances exactly."""
    transfer = make_client(response_format=response_format).add_credit(TOKEN, Decimal("10.50"))
    assert transfer == Transfer(Decimal("989.500"), Decimal("20.500"), "EUR")
    assert (str(transfer.main_balance), str(transfer.subaccount_balance)) == ("989.500", "20.500")
    assert (fake.main_balance, fake.subaccounts[TOKEN]) == (Decimal("989.5"), Decimal("20.5"))


@pytest.mark.parametrize("response_format", ["json", "xml"])
def test_remove_moves_credit_back_to_the_main_account(
    make_client: MakeClient, fake: FakeSMSPartner, response_format: str
) -> None:
    """remove takes the amount from the sub-account and reports both balances exactly."""
    transfer = make_client(response_format=response_format).remove_credit(TOKEN, Decimal("2.25"))
    assert transfer == Transfer(Decimal("1002.250"), Decimal("7.750"), "EUR")
    assert (str(transfer.main_balance), str(transfer.subaccount_balance)) == ("1002.250", "7.750")
    assert (fake.main_balance, fake.subaccounts[TOKEN]) == (Decimal("1002.25"), Decimal("7.75"))


def test_three_decimal_balances_keep_their_digits(client: SMSPartnerClient) -> None:
    """A balance written 0.800 comes back as Decimal('0.800'), not 0.8 nor 0.80."""
    transfer = client.add_credit(EMPTY_TOKEN, Decimal("0.8"))
    assert str(transfer.subaccount_balance) == "0.800"
    assert str(transfer.main_balance) == "999.200"


@pytest.mark.parametrize(
    "body",
    [
        b'{"success": true, "code": 200, "credit": "10225.119", "subaccountCredit": "0.800",'
        b' "currency": "EUR"}',
        b'{"success": true, "code": 200, "credit": 10225.119, "subaccountCredit": 0.800,'
        b' "currency": "EUR"}',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<result>\n<entry>true</entry>\n'
        b"<entry>200</entry>\n<entry>10225.119</entry>\n<entry>0.800</entry>\n"
        b"<entry>\n  <![CDATA[EUR]]>\n</entry>\n</result>",
    ],
    ids=["json-strings", "json-numbers", "xml-cdata"],
)
def test_balances_as_strings_or_numbers_stay_exact(
    client: SMSPartnerClient, fake: FakeSMSPartner, body: bytes
) -> None:
    """Balances sent as strings, numbers or XML text all come back as the exact Decimal."""
    fake.force_body(body)
    transfer = client.add_credit(TOKEN, Decimal("1"))
    assert (str(transfer.main_balance), str(transfer.subaccount_balance)) == ("10225.119", "0.800")
    assert transfer.currency == "EUR"


def test_slow_answer_within_the_timeout_is_read(
    make_client: MakeClient, fake: FakeSMSPartner
) -> None:
    """An answer that comes late but within the timeout is a normal success."""
    fake.delay_seconds = 0.05
    transfer = make_client(timeout=2.0).add_credit(TOKEN, Decimal("1"))
    assert transfer.subaccount_balance == Decimal("11")


def test_client_made_session_is_closed_with_the_client(fake: FakeSMSPartner) -> None:
    """Without an injected session the client makes one and closes it on exit."""
    with SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url) as client:
        assert client.add_credit(TOKEN, Decimal("1")).subaccount_balance == Decimal("11")


# -- what goes on the wire -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "wire"),
    [("10.50", "10.50"), ("7", "7"), ("0.01", "0.01"), ("1E+2", "100"), ("999.99", "999.99")],
)
def test_credit_goes_on_the_wire_as_a_plain_string(
    client: SMSPartnerClient, fake: FakeSMSPartner, amount: str, wire: str
) -> None:
    """credit is sent as the exact JSON string in plain notation; no float anywhere."""
    client.add_credit(TOKEN, Decimal(amount))
    (request,) = fake.requests
    assert f'"credit": "{wire}"'.encode() in request.body
    body = json.loads(request.body, parse_float=_no_float)
    assert body == {"apiKey": API_KEY, "credit": wire, "tokenSubaccount": TOKEN}
    assert request.headers["content-type"] == "application/json"


def test_xml_format_is_asked_for_in_the_body(make_client: MakeClient, fake: FakeSMSPartner) -> None:
    """response_format='xml' adds _format: xml to the body and nothing else changes."""
    make_client(response_format="xml").remove_credit(TOKEN, Decimal("1"))
    (request,) = fake.requests
    body = json.loads(request.body, parse_float=_no_float)
    assert body == {"apiKey": API_KEY, "credit": "1", "tokenSubaccount": TOKEN, "_format": "xml"}


@pytest.mark.parametrize(
    ("action", "path"),
    [("add", "/v1/subaccount/credit/add"), ("remove", "/v1/subaccount/credit/remove")],
)
def test_url_is_the_endpoint_without_query_string(
    client: SMSPartnerClient, fake: FakeSMSPartner, action: str, path: str
) -> None:
    """Each call is a POST to its own endpoint; the key is in the body, never the URL."""
    getattr(client, f"{action}_credit")(TOKEN, Decimal("1"))
    (request,) = fake.requests
    assert (request.method, request.path, request.query) == ("POST", path, "")


class SpySession(requests.Session):
    """A real session that also remembers the options each request was sent with: at `send`,
    the step every request goes through, whether via `Session.request` or prepared."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.urls: list[str | None] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(kwargs)
        self.urls.append(request.url)
        return super().send(request, **kwargs)


def test_post_verifies_tls_follows_no_redirect_and_never_retries(
    fake: FakeSMSPartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even on a session with verify=False: verify on, no redirects, (connect, read) timeout,
    and the adapter for the API retries nothing."""
    # Else verify would be the bundle they name (tests/test_smspartner_environment.py).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with SpySession() as session:
        session.verify = False
        client = SMSPartnerClient(
            api_key=API_KEY, base_url=fake.base_url, session=session, timeout=0.5
        )
        client.add_credit(TOKEN, Decimal("1"))
        (options,) = session.sent
        assert options["verify"] is True
        assert options["allow_redirects"] is False
        assert options["timeout"] == (0.5, 0.5)
        assert session.urls == [f"{fake.base_url}/subaccount/credit/add"]
        retry = session.get_adapter(f"{fake.base_url}/subaccount/credit/add").max_retries
        assert (retry.total, retry.connect, retry.read, retry.redirect) == (0, 0, 0, 0)


@pytest.mark.parametrize("amount", [10.5, 10, "10.50"])
def test_an_amount_that_is_not_a_decimal_is_refused_before_sending(
    client: SMSPartnerClient, fake: FakeSMSPartner, amount: object
) -> None:
    """A float (or any non-Decimal) amount is a programming error: TypeError, nothing sent."""
    with pytest.raises(TypeError):
        client.add_credit(TOKEN, amount)  # type: ignore[arg-type]
    assert fake.requests == []


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_amount_is_refused_before_sending(
    client: SMSPartnerClient, fake: FakeSMSPartner, amount: str
) -> None:
    """NaN and infinities have no plain notation: ValueError, nothing sent."""
    with pytest.raises(ValueError, match="finite"):
        client.add_credit(TOKEN, Decimal(amount))
    assert fake.requests == []


# -- SMS Partner says no -------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [("json", 200), ("json", 400), ("xml", 200), ("xml", 400)],
    ids=lambda a: f"{a[0]}-{a[1]}",
)
@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda row: f"code-{row[0]}")
def test_each_vendor_error_becomes_an_api_error(
    make_client: MakeClient,
    fake: FakeSMSPartner,
    row: tuple[int, str, str],
    answer: tuple[str, int],
) -> None:
    """Each refusal, JSON or XML, HTTP 200 or 400, gives its code, our text, the vendor's words."""
    code, vendor_message, text = row
    response_format, http_status = answer
    fake.force_error(code, vendor_message, http_status=http_status)
    with pytest.raises(APIError) as caught:
        make_client(response_format=response_format).add_credit(TOKEN, Decimal("5"))
    error = caught.value
    assert type(error) is APIError
    assert (error.code, error.text, error.vendor_message) == (code, text, vendor_message)
    known = code != 42
    assert error.user_message == (f'{text} (SMS Partner: "{vendor_message}")' if known else text)
    assert str(error) == error.user_message
    assert error_text(code, vendor_message) == text
    assert _untouched(fake)


def test_unknown_code_without_a_message_still_reads() -> None:
    """An unknown code with an empty vendor message gives a sentence, not a dangling colon."""
    assert error_text(42, "") == "SMS Partner error 42."
    assert APIError(42, "").user_message == "SMS Partner error 42."
    assert APIError(8, "").user_message == "Insufficient credit for this transfer."


@pytest.mark.parametrize(
    ("call", "api_key", "code"),
    [
        (("add", TOKEN, "5"), "", 1),
        (("add", TOKEN, "5"), "wrong-key", 10),
        (("add", "", "5"), API_KEY, 3),
        (("add", TOKEN, "0"), API_KEY, 5),
        (("add", TOKEN, "-1"), API_KEY, 5),
        (("add", "nobody", "5"), API_KEY, 7),
        (("add", TOKEN, "1000.001"), API_KEY, 8),
        (("remove", EMPTY_TOKEN, "1"), API_KEY, 6),
        (("remove", TOKEN, "10.001"), API_KEY, 8),
    ],
)
def test_vendor_rules_are_refused_with_their_code(
    make_client: MakeClient,
    fake: FakeSMSPartner,
    call: tuple[str, str, str],
    api_key: str,
    code: int,
) -> None:
    """The fake applies SMS Partner's rules, and each refusal arrives as its APIError."""
    action, token, amount = call
    client = make_client(api_key=api_key)
    with pytest.raises(APIError) as caught:
        getattr(client, f"{action}_credit")(token, Decimal(amount))
    assert (caught.value.code, caught.value.vendor_message) == (code, MESSAGES[code])
    assert _untouched(fake)


@pytest.mark.parametrize(
    "body",
    [b'{"success": "true", "code": 10, "message": "x"}', b'{"success": 1, "code": 10}'],
)
def test_success_other_than_true_is_a_refusal(
    client: SMSPartnerClient, fake: FakeSMSPartner, body: bytes
) -> None:
    """Only `"success": true` is a success; "true" or 1 is read as a refusal."""
    fake.force_body(body)
    with pytest.raises(APIError) as caught:
        client.add_credit(TOKEN, Decimal("1"))
    assert caught.value.code == 10


@pytest.mark.parametrize("garbage", [False, True], ids=["json-body", "garbage-body"])
def test_http_429_is_rate_limited(
    client: SMSPartnerClient, fake: FakeSMSPartner, garbage: bool
) -> None:
    """HTTP 429 is RateLimitedError, whatever its body, and nothing moved."""
    fake.rate_limited = True
    fake.garbage_body = garbage
    with pytest.raises(RateLimitedError) as caught:
        client.add_credit(TOKEN, Decimal("1"))
    assert caught.value.code == 429
    assert caught.value.vendor_message == ("" if garbage else RATE_LIMITED_MESSAGE)
    assert "try again" in caught.value.user_message.lower()
    assert _untouched(fake)


# -- answers we cannot read ----------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["json", "xml"])
def test_http_500_is_a_bad_answer(
    make_client: MakeClient, fake: FakeSMSPartner, response_format: str
) -> None:
    """HTTP 5xx is BadAnswerError even when its body looks like a refusal."""
    fake.http_500 = True
    with pytest.raises(BadAnswerError, match="HTTP 500"):
        make_client(response_format=response_format).add_credit(TOKEN, Decimal("1"))


@pytest.mark.parametrize("http_status", [200, 400])
def test_garbage_body_is_a_bad_answer(
    client: SMSPartnerClient, fake: FakeSMSPartner, http_status: int
) -> None:
    """A body neither JSON nor XML is BadAnswerError, with HTTP 200 or 400."""
    if http_status == 200:
        fake.garbage_body = True
    else:
        fake.force_body(b"<<< nope", http_status=http_status)
    with pytest.raises(BadAnswerError, match=f"HTTP {http_status}"):
        client.add_credit(TOKEN, Decimal("1"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b'{"success": tr',
        b'{"success": false, "message": "Erreur"}',
        b'{"success": false, "code": "dix", "message": "Erreur"}',
        b'{"success": false, "code": 10.5, "message": "Erreur"}',
        b'{"success": true, "code": 200, "credit": NaN, "subaccountCredit": 1, "currency": "EUR"}',
        b"<result></result>",
        b"<answer><entry>false</entry><entry>10</entry></answer>",
        b"<result><entry>false</entry>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><result><entry>&x;</entry></result>',
    ],
)
def test_unreadable_answer_is_a_bad_answer(
    client: SMSPartnerClient, fake: FakeSMSPartner, body: bytes
) -> None:
    """Empty, truncated, codeless, NaN, wrong-rooted or DTD-carrying answers are BadAnswerError."""
    fake.force_body(body)
    with pytest.raises(BadAnswerError):
        client.add_credit(TOKEN, Decimal("1"))


def test_redirect_is_not_followed(client: SMSPartnerClient, fake: FakeSMSPartner) -> None:
    """A 3xx is BadAnswerError and the POST is not sent again to the new location."""
    fake.force_body(b"", http_status=302, headers={"Location": f"{fake.base_url}/elsewhere"})
    with pytest.raises(BadAnswerError, match="HTTP 302"):
        client.add_credit(TOKEN, Decimal("1"))
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        (b'{"success": true, "code": 200, "subaccountCredit": 1, "currency": "EUR"}', "credit"),
        (
            b'{"success": true, "code": 200, "credit": true, "subaccountCredit": "1_0",'
            b' "currency": "EUR"}',
            "credit, subaccountCredit",
        ),
        (b'{"success": true, "code": 200, "credit": 1, "subaccountCredit": 1}', "currency"),
        (b"<result><entry>true</entry><entry>200</entry><entry>1</entry></result>", "sub"),
    ],
)
def test_success_with_unreadable_balances_is_outcome_unknown(
    client: SMSPartnerClient, fake: FakeSMSPartner, body: bytes, missing: str
) -> None:
    """SMS Partner said the credit moved but its balances are unreadable: outcome unknown,
    never a failure that invites a second transfer."""
    fake.force_body(body)
    with pytest.raises(OutcomeUnknownError, match=missing):
        client.add_credit(TOKEN, Decimal("1"))


# -- nothing or half an exchange -----------------------------------------------------------


def test_no_answer_in_time_is_outcome_unknown_and_sent_once(
    make_client: MakeClient, fake: FakeSMSPartner
) -> None:
    """A read timeout is OutcomeUnknownError, said in plain words, sent exactly once."""
    fake.hang = True
    with pytest.raises(OutcomeUnknownError, match=r"^SMS Partner did not answer within 0\.3 s\.$"):
        make_client(timeout=0.3).add_credit(TOKEN, Decimal("5"))
    assert len(fake.wait_for_requests(1)) == 1
    assert len(fake.requests) == 1


def test_connection_cut_after_sending_is_outcome_unknown_and_sent_once(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """A connection dropped after the request went is OutcomeUnknownError, sent exactly once."""
    fake.close_connection_after_request = True
    with pytest.raises(OutcomeUnknownError, match=r"^The connection to SMS Partner was cut before"):
        client.add_credit(TOKEN, Decimal("5"))
    assert len(fake.wait_for_requests(1)) == 1
    assert len(fake.requests) == 1


def test_connection_refused_is_not_sent(make_client: MakeClient, fake: FakeSMSPartner) -> None:
    """Nothing listening on the port is NotSentError: nothing reached anyone."""
    client = make_client(base_url=f"http://127.0.0.1:{_unused_port()}/v1")
    with pytest.raises(
        NotSentError, match=r"^SMS Partner refused the connection: nothing was sent"
    ):
        client.add_credit(TOKEN, Decimal("5"))
    assert fake.requests == []


def test_exception_tree() -> None:
    """Every error is an SMSPartnerError, and a 429 is also an APIError."""
    assert issubclass(RateLimitedError, APIError)
    for error in (APIError, NotSentError, OutcomeUnknownError, BadAnswerError):
        assert issubclass(error, SMSPartnerError)


# -- the key stays secret ------------------------------------------------------------------


def _setup_scenario(fake: FakeSMSPartner, scenario: str) -> dict[str, Any]:
    """Arm the fake for `scenario`; return the client options it needs."""
    if scenario == "refused":
        return {"base_url": f"http://127.0.0.1:{_unused_port()}/v1"}
    if scenario == "hang":
        fake.hang = True
        return {"timeout": 0.3}
    if scenario == "key-echoed":
        fake.force_error(10, f"Clé API incorrecte : {API_KEY}", http_status=401)
    elif scenario == "garbage":
        fake.garbage_body = True
    elif scenario != "success":
        setattr(fake, scenario, True)
    return {}


@pytest.mark.parametrize(
    "scenario",
    [
        "success",
        "key-echoed",
        "rate_limited",
        "http_500",
        "garbage",
        "hang",
        "close_connection_after_request",
        "refused",
    ],
)
def test_api_key_never_leaks(
    make_client: MakeClient,
    fake: FakeSMSPartner,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    """The key is in no exception text, repr or traceback, no client repr, no log record."""
    client = make_client(**_setup_scenario(fake, scenario))
    with caplog.at_level(logging.DEBUG):
        try:
            client.add_credit(TOKEN, Decimal("1"))
        except SMSPartnerError as error:
            shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
            if isinstance(error, APIError):
                shown += [error.user_message, error.vendor_message, error.text]
        else:
            assert scenario == "success"
            shown = []
    assert caplog.records, "the client should log each call at DEBUG"
    shown += [repr(client), str(client)]
    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(record.args) for record in caplog.records]
    assert not [text for text in shown if API_KEY in text]


def test_one_debug_line_per_call_without_the_body(
    client: SMSPartnerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call logs one DEBUG line from bot.smspartner with path, status and milliseconds."""
    with caplog.at_level(logging.DEBUG, logger="bot.smspartner.client"):
        client.add_credit(TOKEN, Decimal("1"))
        client.remove_credit(TOKEN, Decimal("1"))
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.smspartner.client"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /subaccount/credit/add -> 200 in ")
    assert lines[1].startswith("POST /subaccount/credit/remove -> 200 in ")
    assert all(line.endswith(" ms") and TOKEN not in line for line in lines)


def test_client_repr_shows_only_the_base_url(
    client: SMSPartnerClient, fake: FakeSMSPartner
) -> None:
    """repr(client) names the base URL and nothing else."""
    assert repr(client) == f"SMSPartnerClient(base_url={fake.base_url!r})"
