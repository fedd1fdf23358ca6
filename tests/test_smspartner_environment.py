"""The environment the client reads once, when made: proxies (NO_PROXY honoured) and CA bundle.

requests would read them on every call; the client reads them at construction, so a proxy set
in the environment is still used, NO_PROXY still excludes, and a change waits for a restart."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from bot.smspartner.client import NoAnswerError, OutcomeUnknownError, SMSPartnerClient
from tests.fakes.http_proxy import HTTPProxy
from tests.fakes.smspartner import FakeSMSPartner

API_KEY = "environment-smspartner-key"
TOKEN = "sub-env"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
ADD_PATH = "/v1/subaccount/credit/add"


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


@pytest.fixture(scope="module")
def running_proxy() -> Iterator[HTTPProxy]:
    with HTTPProxy() as running:
        yield running


@pytest.fixture
def proxy(running_proxy: HTTPProxy) -> HTTPProxy:
    running_proxy.forwarded.clear()
    return running_proxy


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA bundle but what a test sets (either case: urllib reads both)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(params=["own", "injected"])
def session_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def _client(fake: FakeSMSPartner, kind: str, **options: Any) -> SMSPartnerClient:
    session = requests.Session() if kind == "injected" else None
    return SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session, **options)


def test_a_proxy_in_the_environment_carries_every_call(
    fake: FakeSMSPartner, proxy: HTTPProxy, session_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY set before the client is made: transfers and reads all go through it."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with _client(fake, session_kind) as client:
        client.add_credit(TOKEN, Decimal("1"))
        client.remove_credit(TOKEN, Decimal("1"))
        client.main_account()
    assert proxy.forwarded == [
        ("POST", ADD_PATH),
        ("POST", "/v1/subaccount/credit/remove"),
        ("GET", "/v1/me"),
    ]
    assert len(fake.requests) == 3


def test_no_proxy_for_the_api_host_goes_direct(
    fake: FakeSMSPartner, proxy: HTTPProxy, session_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the API's host wins over HTTP_PROXY: nothing reaches the proxy."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with _client(fake, session_kind) as client:
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == []
    assert len(fake.requests) == 1


def test_no_proxy_for_another_host_still_uses_the_proxy(
    fake: FakeSMSPartner, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the test above: NO_PROXY only excludes the hosts it names."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "api.example.invalid")
    with _client(fake, "own") as client:
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == [("POST", ADD_PATH)]


def test_the_environment_is_read_when_the_client_is_made(
    fake: FakeSMSPartner, proxy: HTTPProxy, session_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy set after the client was made waits for the next restart; one removed too."""
    with _client(fake, session_kind) as client:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == []
    with _client(fake, session_kind) as client:
        monkeypatch.delenv("HTTP_PROXY")
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == [("POST", ADD_PATH)]


def test_an_injected_session_that_ignores_the_environment_keeps_ignoring_it(
    fake: FakeSMSPartner, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=False on an injected session: the environment's proxy is not used."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with requests.Session() as session:
        session.trust_env = False
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == []
    assert len(fake.requests) == 1


def test_an_injected_sessions_own_proxy_is_used(fake: FakeSMSPartner, proxy: HTTPProxy) -> None:
    """session.proxies, with nothing in the environment, carries the calls as before."""
    with requests.Session() as session:
        session.proxies = {"http": proxy.url}
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        client.add_credit(TOKEN, Decimal("1"))
    assert proxy.forwarded == [("POST", ADD_PATH)]


def test_the_client_leaves_an_injected_sessions_settings_alone(
    fake: FakeSMSPartner, proxy: HTTPProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env, auth and proxies stay the owner's; only the made session stops reading."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with requests.Session() as session:
        SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        assert (session.trust_env, session.auth, session.proxies) == (True, None, {})
    with SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url) as client:
        assert client._session.trust_env is False


@pytest.mark.parametrize("kind", ["transfer", "read"])
def test_a_call_through_a_stalled_proxy_ends_within_the_timeout(
    fake: FakeSMSPartner, proxy: HTTPProxy, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that holds the answer back: no answer within the timeout, sent once (that its
    connections obey the total deadline is test_connections_to_the_api_are_bounded_ones)."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake.hang = True
    with _client(fake, "injected", timeout=0.3) as client:
        if kind == "transfer":
            with pytest.raises(OutcomeUnknownError, match=r"did not answer within 0\.3 s"):
                client.add_credit(TOKEN, Decimal("1"))
        else:
            with pytest.raises(NoAnswerError, match=r"did not answer within 0\.3 s"):
                client.main_account()
    assert len(proxy.forwarded) == 1


class SendSpy(requests.Session):
    """A real session that remembers what each request was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.verify_sent: list[object] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.verify_sent.append(kwargs.get("verify"))
        return super().send(request, **kwargs)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("session_verify", [True, False])
def test_a_ca_bundle_in_the_environment_verifies_the_api(
    fake: FakeSMSPartner, monkeypatch: pytest.MonkeyPatch, variable: str, session_verify: bool
) -> None:
    """The bundle either variable names is what verifies TLS, even on a verify=False session."""
    monkeypatch.setenv(variable, "/etc/ssl/certs/bundle-from-the-environment.pem")
    with SendSpy() as session:
        session.verify = session_verify
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        client.add_credit(TOKEN, Decimal("1"))
    assert session.verify_sent == ["/etc/ssl/certs/bundle-from-the-environment.pem"]


def test_a_sessions_own_ca_bundle_wins_over_the_environment(
    fake: FakeSMSPartner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in requests: a session given a bundle path keeps it whatever the environment says."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/bundle-from-the-environment.pem")
    with SendSpy() as session:
        session.verify = "/etc/ssl/certs/the-sessions-own.pem"
        client = SMSPartnerClient(api_key=API_KEY, base_url=fake.base_url, session=session)
        client.add_credit(TOKEN, Decimal("1"))
    assert session.verify_sent == ["/etc/ssl/certs/the-sessions-own.pem"]
