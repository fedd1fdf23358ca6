"""The SMS Partner client: move credit between the main account and one sub-account, and read
the accounts (the main account, the list of sub-accounts).

What a call can raise is drawn in `bot.smspartner.errors` (re-exported here). In short: APIError
(refused, nothing moved), RateLimitedError (429), NotSentError (nothing left), OutcomeUnknownError
(a credit POST left, no readable outcome), NoAnswerError (a read left, no answer), BadAnswerError.

Every call lasts at most `timeout` seconds in all, connect, send and read together, whatever
the server does (`bot.smspartner.deadline`). A caller's mistake (an amount that is not a finite
`Decimal`) raises TypeError or ValueError before anything is sent.

A credit POST is never sent twice: no retries, no redirects followed, TLS always verified, and
the key travels only in its body. A read is a GET with the key in the query string, as the API
wants it: such a URL is never logged (urllib3's own DEBUG lines included) and never in an
exception; reads are tried once more after a connect failure or an HTTP 5xx, since they move
nothing. An optional observer hears of every HTTP call (a `CallRecord`), for metrics.

What requests would read from the environment on every call (HTTP(S)_PROXY and NO_PROXY for
the API's host, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, and ~/.netrc for a session the client made)
is read once, when the client is made: a change takes effect at the next restart.
"""

from __future__ import annotations

import codecs
import http.client
import json
import logging
import os
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeVar

import requests
import urllib3.exceptions
from requests.utils import get_environ_proxies, get_netrc_auth
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, ProtocolError
from urllib3.util.retry import Retry

from bot.smspartner.accounts import (
    MainAccount,
    Subaccount,
    SubaccountPage,
    balance,
    parse_main_account,
    parse_subaccount_page,
)
from bot.smspartner.deadline import BoundedAdapter, CallDeadline
from bot.smspartner.errors import (
    ERROR_TEXTS,
    RATE_LIMITED_STATUS,
    APIError,
    BadAnswerError,
    NoAnswerError,
    NotSentError,
    OutcomeUnknownError,
    RateLimitedError,
    SMSPartnerError,
    error_text,
)

__all__ = [
    "ERROR_TEXTS",
    "RATE_LIMITED_STATUS",
    "APIError",
    "BadAnswerError",
    "CallRecord",
    "MainAccount",
    "NoAnswerError",
    "NotSentError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "SMSPartnerClient",
    "SMSPartnerError",
    "Subaccount",
    "Transfer",
    "error_text",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Just above a multiple of 3 s, TCP's first retransmission window (requests' own advice).
CONNECT_TIMEOUT_SECONDS = 3.05
ADD_PATH = "/subaccount/credit/add"
REMOVE_PATH = "/subaccount/credit/remove"
ME_PATH = "/me"
LIST_PATH = "/subaccount/list"
PAGE_SIZE = 20  # SMS Partner's, when an answer does not say
# 10,000 sub-accounts: a listing that has not ended by then is looping, not long.
MAX_PAGES = 500
# A read moves nothing, so it may be sent again, but only once: a struggling API is not
# helped by a bot that insists, and the person waiting wants an answer soon.
READ_ATTEMPTS = 2
SERVER_ERROR_STATUS = 500
JSON_HEADERS = {"Content-Type": "application/json"}

# The XML answer is positional: these are the names of its <entry> elements, in order.
XML_SUCCESS_FIELDS = ("success", "code", "credit", "subaccountCredit", "currency")
XML_FAILURE_FIELDS = ("success", "code", "message")
# The vendor is trusted TLS, but a DTD is never part of its answer and is the door to entity
# expansion attacks, so its presence alone makes the answer unreadable.
XML_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
PLAIN_CODE = re.compile(r"[0-9]{1,9}")
QUERY_KEY = re.compile(r"(apiKey=)[^&\s'\"]*")

T = TypeVar("T")


class _HideQueryKeys(logging.Filter):
    """urllib3 logs each request's URL at DEBUG (and on retries): a read's URL holds our key
    in its query string, so the value is blanked before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "apiKey=" in record.msg:
            record.msg = QUERY_KEY.sub(r"\1[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                QUERY_KEY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_HIDE_QUERY_KEYS = _HideQueryKeys()
for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    if _HIDE_QUERY_KEYS not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_HIDE_QUERY_KEYS)


@dataclass(frozen=True)
class Transfer:
    """A move SMS Partner confirmed, with both balances as it reported them afterwards."""

    main_balance: Decimal
    subaccount_balance: Decimal
    currency: str


Operation = Literal["add", "remove", "me", "subaccount_list"]
CallOutcome = Literal["ok", "refused", "rate_limited", "not_sent", "unknown", "bad_answer"]


@dataclass(frozen=True)
class CallRecord:
    """One HTTP call to SMS Partner, as an observer (metrics) hears of it.

    `operation`: "add", "remove", "me" or "subaccount_list" (one record per page and per try).
    `outcome`: "ok", "refused" (APIError), "rate_limited" (429), "not_sent", "unknown" (sent,
    no answer: OutcomeUnknownError or NoAnswerError) or "bad_answer".
    `code`: SMS Partner's code (200 when ok, the refusal's code, 429), None when none was read.
    `seconds`: how long the call took, answer read and parsed."""

    operation: str
    outcome: str
    code: int | None
    seconds: float


Observer = Callable[[CallRecord], None]


@dataclass(frozen=True)
class _Environment:
    """What requests reads from the environment for a call to the API, read once.

    requests scans the whole environment twice per call to find proxies; the client only ever
    talks to one host, and its settings change only at a restart."""

    proxies: dict[str, str]
    ca_bundle: str | None

    @classmethod
    def read(cls, base_url: str) -> _Environment:
        # requests' own functions, so NO_PROXY and the variables' precedence are its own.
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        return cls(proxies=get_environ_proxies(base_url), ca_bundle=ca_bundle or None)


NO_ENVIRONMENT = _Environment(proxies={}, ca_bundle=None)


# Idle connections kept to SMS Partner: as many as the threads that may call it at once
# (bot/slack/app.py's 32 transfer and 8 read threads, and the sweep), so a burst reuses them
# instead of opening and discarding extra ones (requests keeps 10 by default).
KEPT_CONNECTIONS = 48


class SMSPartnerClient:
    """Calls SMS Partner over an injected requests.Session (or one of its own).

    The environment is read here, once (see the module's docstring): a session the client made
    then stops reading it per call (trust_env off); an injected session keeps its own proxies,
    CA bundle and trust_env, and only its per-call environment scan is skipped."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
        response_format: Literal["json", "xml"] = "json",
        observer: Observer | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.response_format = response_format
        self._observer = observer
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._environment = (
            _Environment.read(self.base_url) if self._session.trust_env else NO_ENVIRONMENT
        )
        if self._owns_session:
            # Our own session: nobody else's requests depend on its trust_env. Its netrc
            # credentials for the API's host, if any, are read now instead of per call.
            self._session.auth = get_netrc_auth(self.base_url)
            self._session.trust_env = False
        # A POST cut half-way may already have moved credit, so it is never sent again: the
        # adapter for our URLs retries nothing, whatever the injected session was given (reads
        # are retried by `_read_call`, where the kind of failure is known). Its connections
        # obey each call's total deadline.
        never_retry = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0)
        self._session.mount(
            f"{self.base_url}/",
            BoundedAdapter(max_retries=never_retry, pool_maxsize=KEPT_CONNECTIONS),
        )

    def __repr__(self) -> str:
        return f"SMSPartnerClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the session if this client made it; an injected one belongs to its owner."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SMSPartnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- moving credit ------------------------------------------------------------------

    def add_credit(self, token: str, amount: Decimal) -> Transfer:
        """Move `amount` euros from the main account into sub-account `token`."""
        payload = self._payload(token, amount)
        return self._observed("add", lambda: self._transfer(ADD_PATH, payload))

    def remove_credit(self, token: str, amount: Decimal) -> Transfer:
        """Move `amount` euros from sub-account `token` back to the main account."""
        payload = self._payload(token, amount)
        return self._observed("remove", lambda: self._transfer(REMOVE_PATH, payload))

    def _payload(self, token: str, amount: Decimal) -> dict[str, str]:
        payload = {
            "apiKey": self._api_key,
            "credit": _wire_amount(amount),
            "tokenSubaccount": token,
        }
        if self.response_format == "xml":
            payload["_format"] = "xml"
        return payload

    def _transfer(self, path: str, payload: dict[str, str]) -> Transfer:
        outcome = self._exchange("POST", path, payload=payload)
        if isinstance(outcome, SMSPartnerError):
            # Raised here, outside any `except`, so the requests exception, which holds the
            # prepared request and so the key, is not even reachable as __context__.
            raise outcome
        return _transfer(self._fields(outcome))

    # -- reading accounts ---------------------------------------------------------------

    def main_account(self) -> MainAccount:
        """The main account's balance and owner (`GET /me`); moves nothing."""
        return self._read_call("me", ME_PATH, {}, parse_main_account)

    def subaccounts(self) -> list[Subaccount]:
        """Every sub-account, all pages read (`GET /subaccount/list`, 20 a page), in
        SMS Partner's order; a token listed twice (the list changed between pages) once."""
        found: dict[str, Subaccount] = {}
        for page in range(1, MAX_PAGES + 1):
            listing: SubaccountPage = self._read_call(
                "subaccount_list", LIST_PATH, {"page": str(page)}, parse_subaccount_page
            )
            for subaccount in listing.subaccounts:
                found.setdefault(subaccount.token, subaccount)
            per_page = listing.per_page or PAGE_SIZE
            last = len(listing.subaccounts) < per_page or (
                listing.total is not None and page * per_page >= listing.total
            )
            if last:
                return list(found.values())
        raise BadAnswerError(f"SMS Partner's sub-account list did not end within {MAX_PAGES} pages")

    def _read_call(
        self,
        operation: Operation,
        path: str,
        params: dict[str, str],
        parse: Callable[[dict[str, object]], T],
    ) -> T:
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return self._observed(operation, lambda: self._get(path, params, parse))
            except (NotSentError, BadAnswerError) as error:
                if attempt == READ_ATTEMPTS or not _worth_retrying(error):
                    raise
                logger.debug("GET %s failed (%s): trying once more", path, error)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _get(self, path: str, params: dict[str, str], parse: Callable[[dict[str, object]], T]) -> T:
        outcome = self._exchange("GET", path, params={"apiKey": self._api_key, **params})
        if isinstance(outcome, SMSPartnerError):
            raise outcome  # outside any `except`: see _transfer
        return parse(self._fields(outcome))

    # -- one HTTP exchange ---------------------------------------------------------------

    def _exchange(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        payload: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response | SMSPartnerError:
        """One request within the total deadline: the answer, or the failure to raise."""
        started = time.monotonic()
        deadline = CallDeadline(self.timeout)
        outcome: requests.Response | SMSPartnerError
        try:
            with deadline:
                outcome = self._send(method, path, payload=payload, params=params)
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as error:
            outcome = self._transport_failure(error, deadline, read=method == "GET")
            # The class chain helps whoever debugs the network; it stays out of the text.
            logger.debug("%s %s: %s", method, path, " < ".join(_kinds(error)))
        else:
            if deadline.expired:
                # A socket shut under http.client can look like a complete answer (headers cut
                # short, then an empty body until EOF): nothing read past the deadline counts.
                outcome = self._transport_failure(TimeoutError(), deadline, read=method == "GET")
        elapsed_ms = (time.monotonic() - started) * 1000
        result = outcome.status_code if isinstance(outcome, requests.Response) else "no answer"
        logger.debug("%s %s -> %s in %.0f ms", method, path, result, elapsed_ms)
        return outcome

    def _send(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        payload: dict[str, str] | None,
        params: dict[str, str] | None,
    ) -> requests.Response:
        if method == "GET":
            request = requests.Request(method, f"{self.base_url}{path}", params=params)
        else:
            body = json.dumps(payload).encode("utf-8")
            request = requests.Request(
                method, f"{self.base_url}{path}", headers=JSON_HEADERS, data=body
            )
        # Session.request's own steps (requests' documented "prepared requests"), but with the
        # environment read at construction instead of by Session.merge_environment_settings.
        session = self._session
        return session.send(
            session.prepare_request(request),
            timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
            # A redirected POST would be a second send, maybe to somewhere else.
            allow_redirects=False,
            proxies=self._proxies(),
            stream=session.stream,
            verify=self._verify(),
            cert=session.cert,
        )

    def _proxies(self) -> dict[str, str]:
        """As requests merges them: the environment's win over the session's, and a proxy
        set to None in the session means none."""
        merged = {**self._session.proxies, **self._environment.proxies}
        return {scheme: url for scheme, url in merged.items() if url is not None}

    def _verify(self) -> bool | str:
        """The session's CA bundle, else the environment's; a session with verify=False still
        verifies."""
        verify = self._session.verify or True
        if verify is True and self._environment.ca_bundle is not None:
            return self._environment.ca_bundle
        return verify

    def _transport_failure(
        self, error: BaseException, deadline: CallDeadline, *, read: bool
    ) -> SMSPartnerError:
        causes = list(_causes(error))
        limit = f"{self.timeout:g} s"
        not_sent = _not_sent_text(error, causes)
        if not_sent is None and not deadline.sending:
            # The connection failed before the request was handed to it (a TLS handshake cut
            # or refused): not one byte of it went out.
            not_sent = (
                f"SMS Partner did not complete a connection within {limit}"
                if deadline.expired
                else "No secure connection to SMS Partner could be set up"
            )
        if not_sent is not None:
            return NotSentError(f"{not_sent}: nothing was sent.")
        # Anything else may have happened after the request left: for a transfer, only
        # "unknown" is honest.
        timed_out = deadline.expired or any(
            isinstance(cause, requests.ReadTimeout | TimeoutError | socket.timeout)
            for cause in causes
        )
        if timed_out:
            text = f"SMS Partner did not answer within {limit}."
        elif any(isinstance(cause, _CUT) for cause in causes):
            text = "The connection to SMS Partner was cut before an answer came."
        else:
            text = "The request went to SMS Partner but its answer could not be read."
        return NoAnswerError(text) if read else OutcomeUnknownError(text)

    def _fields(self, response: requests.Response) -> dict[str, object]:
        """The fields of an answer from the API itself, or the error it stands for."""
        status = response.status_code
        if status == RATE_LIMITED_STATUS:
            try:
                message = self._vendor_message(_parse(response.content).get("message"))
            except BadAnswerError:
                message = ""
            raise RateLimitedError(message)
        # Refusals come with 200 or with a 4xx: the body says which; anything else is not
        # an answer from the API itself.
        if not (200 <= status < 300 or 400 <= status < 500):
            raise BadAnswerError(f"HTTP {status}", http_status=status)
        fields = _parse(response.content, status)
        if fields.get("success") is not True:
            raise APIError(
                _code(fields.get("code"), status), self._vendor_message(fields.get("message"))
            )
        return fields

    def _vendor_message(self, value: object) -> str:
        message = str(value).strip() if isinstance(value, str | Decimal) else ""
        # Should SMS Partner ever echo the key back, it must not reach Slack or the logs.
        return message.replace(self._api_key, "[redacted]") if self._api_key else message

    # -- the observer ---------------------------------------------------------------------

    def _observed(self, operation: Operation, call: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            result = call()
        except SMSPartnerError as error:
            self._observe(operation, *_outcome(error), started)
            raise
        self._observe(operation, "ok", 200, started)
        return result

    def _observe(
        self, operation: Operation, outcome: CallOutcome, code: int | None, started: float
    ) -> None:
        if self._observer is None:
            return
        record = CallRecord(operation, outcome, code, time.monotonic() - started)
        try:
            self._observer(record)
        except Exception:
            # Metrics are never worth a transfer: the call's own result stands.
            logger.warning("the SMS Partner call observer failed; call unaffected", exc_info=True)


def _worth_retrying(error: SMSPartnerError) -> bool:
    """A connect failure or a server error passes; a refusal or a malformed answer repeats."""
    if isinstance(error, BadAnswerError):
        return (error.http_status or 0) >= SERVER_ERROR_STATUS
    return isinstance(error, NotSentError)


def _outcome(error: SMSPartnerError) -> tuple[CallOutcome, int | None]:
    if isinstance(error, RateLimitedError):
        return "rate_limited", RATE_LIMITED_STATUS
    if isinstance(error, APIError):
        return "refused", error.code
    if isinstance(error, NotSentError):
        return "not_sent", None
    if isinstance(error, OutcomeUnknownError | NoAnswerError):
        return "unknown", None
    return "bad_answer", None


def _wire_amount(amount: object) -> str:
    """`amount` as SMS Partner's samples send it: a JSON string in plain notation ("10.50")."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a decimal.Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError("amount must be a finite number")
    return format(amount, "f")


# Signs that the connection ended under an exchange in progress.
_CUT = (
    ConnectionError,  # the builtin: reset, aborted, broken pipe
    http.client.RemoteDisconnected,
    http.client.IncompleteRead,
    ProtocolError,
    requests.exceptions.ChunkedEncodingError,
)


def _not_sent_text(error: BaseException, causes: list[BaseException]) -> str | None:
    """What kept the request from leaving, when the error proves it never did."""
    if isinstance(
        error,
        requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidURL,
    ):
        return "The SMS Partner address (SMSPARTNER_BASE_URL) is not a usable URL"
    if any(isinstance(cause, NameResolutionError | socket.gaierror) for cause in causes):
        return "SMS Partner's server name could not be resolved (DNS)"
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes):
        # A certificate is checked in the TLS handshake, before any byte of the request.
        return "SMS Partner's TLS certificate was not accepted"
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "SMS Partner refused the connection"
    # urllib3's own test for "the server did not receive the request".
    if isinstance(error, requests.ConnectTimeout) or any(
        isinstance(cause, ConnectTimeoutError) for cause in causes
    ):
        return "SMS Partner could not be connected to in time"
    return None


def _kinds(error: BaseException) -> list[str]:
    return list(dict.fromkeys(type(cause).__name__ for cause in _causes(error)))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and all it wraps: requests and urllib3 nest the real cause in `args`,
    `reason` (MaxRetryError), `original_error` (ProxyError) and __cause__. Not __context__:
    an error met while handling another is no evidence of where this one happened."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            *current.args,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
            current.__cause__,
        ]
        pending.extend(link for link in linked if isinstance(link, BaseException))


def _parse(content: bytes, status: int | None = None) -> dict[str, object]:
    """The answer's fields by name, from either of SMS Partner's formats."""
    where = f"HTTP {status} with " if status is not None else ""
    start = content.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    if start == b"{":
        return _parse_json(content, where)
    if start == b"<":
        return _parse_xml(content, where)
    raise BadAnswerError(f"{where}a body that is neither JSON nor XML")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number SMS Partner sends")


def _parse_json(content: bytes, where: str) -> dict[str, object]:
    try:
        # Every number becomes a Decimal, so a balance never passes through float.
        parsed = json.loads(
            content, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant
        )
    except ValueError:
        # from None: a JSONDecodeError carries the whole body, useless in a message.
        raise BadAnswerError(f"{where}a body that is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadAnswerError(f"{where}a JSON body that is not an object")
    return parsed


def _parse_xml(content: bytes, where: str) -> dict[str, object]:
    if XML_DTD.search(content):
        raise BadAnswerError(f"{where}an XML body declaring a DTD")
    try:
        root = ET.fromstring(content)  # noqa: S314 - DTDs refused above; expat needs no network
    except ET.ParseError:
        raise BadAnswerError(f"{where}a body that is not valid XML") from None
    entries = [(entry.text or "").strip() for entry in root.findall("entry")]
    if root.tag != "result" or not entries:
        raise BadAnswerError(f"{where}an XML body that is not a <result> of <entry>")
    success = entries[0] == "true"
    names = XML_SUCCESS_FIELDS if success else XML_FAILURE_FIELDS
    fields: dict[str, object] = dict(zip(names, entries, strict=False))
    fields["success"] = success
    return fields


def _code(value: object, status: int) -> int:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and PLAIN_CODE.fullmatch(value.strip()):
        return int(value)
    raise BadAnswerError(f"HTTP {status} with a refusal that has no readable code")


def _transfer(fields: dict[str, object]) -> Transfer:
    """The balances of a success answer. SMS Partner said the credit moved, so an unreadable
    field makes the outcome unknown, never a failure that would invite a second transfer."""
    main = balance(fields.get("credit"))
    sub = balance(fields.get("subaccountCredit"))
    currency = fields.get("currency")
    currency = currency.strip() or None if isinstance(currency, str) else None
    if main is None or sub is None or currency is None:
        read = {"credit": main, "subaccountCredit": sub, "currency": currency}
        missing = ", ".join(name for name, value in read.items() if value is None)
        raise OutcomeUnknownError(
            f"SMS Partner reported success but its answer has no readable {missing}: "
            "the credit probably moved."
        )
    return Transfer(main_balance=main, subaccount_balance=sub, currency=currency)
