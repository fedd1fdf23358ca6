"""The SMS Partner client: move credit between the main account and one sub-account.

Everything a call can raise, and what it means for the money:

    SMSPartnerError              base class: catching it catches everything below
    ├── APIError                 SMS Partner answered and refused (`success` not true):
    │   │                        nothing moved. `code`, `vendor_message`, `text`, `user_message`.
    │   └── RateLimitedError     HTTP 429: refused for now, nothing moved; try again later.
    ├── NotSentError             the request never reached SMS Partner (refused, DNS, connect
    │                            timeout, certificate rejected): nothing moved, safe to ask again.
    ├── OutcomeUnknownError      the request left but no readable outcome came back (read
    │                            timeout, connection cut, or a "success" whose balances cannot be
    │                            read): the transfer may have happened. Check before asking again.
    └── BadAnswerError           an answer we cannot read as SMS Partner's: HTTP 3xx or 5xx, a body
                                 neither JSON nor XML, a refusal without a code. Most likely
                                 nothing moved, but nobody said so.

A caller's mistake (an amount that is not a finite `Decimal`) raises TypeError or ValueError
before anything is sent. A transfer is never sent twice: no retries, no redirects followed.
The API key travels only in the POST body; no URL, exception, repr or log line contains it.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Just above a multiple of 3 s, TCP's first retransmission window (requests' own advice).
CONNECT_TIMEOUT_SECONDS = 3.05
ADD_PATH = "/subaccount/credit/add"
REMOVE_PATH = "/subaccount/credit/remove"
RATE_LIMITED_STATUS = 429

# SMS Partner numbers some errors differently across its pages (9 and 10 for a bad key,
# 8 and 11 for insufficient credit): both spellings map to the same text.
ERROR_TEXTS: dict[int, str] = {
    1: "The bot has no SMS Partner API key configured.",
    2: "No credit amount was sent.",
    3: "No sub-account token was sent.",
    4: "This SMS Partner account is not allowed to manage sub-account credit.",
    5: "The amount must be greater than 0.",
    6: "The balance to take the credit from must be greater than 0.",
    7: "Sub-account does not exist.",
    8: "Insufficient credit for this transfer.",
    9: "The SMS Partner API key is invalid.",
    10: "The SMS Partner API key is invalid.",
    11: "Insufficient credit for this transfer.",
    96: "SMS Partner refuses calls from this server's IP address (the account has an IP "
    "allow-list).",
    RATE_LIMITED_STATUS: "SMS Partner is limiting how often the bot may call it: nothing moved. "
    "Try again in a minute.",
}

# The XML answer is positional: these are the names of its <entry> elements, in order.
XML_SUCCESS_FIELDS = ("success", "code", "credit", "subaccountCredit", "currency")
XML_FAILURE_FIELDS = ("success", "code", "message")
# The vendor is trusted TLS, but a DTD is never part of its answer and is the door to entity
# expansion attacks, so its presence alone makes the answer unreadable.
XML_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
PLAIN_CODE = re.compile(r"[0-9]{1,9}")


def error_text(code: int, vendor_message: str) -> str:
    """The English text shown for an SMS Partner error code."""
    if code in ERROR_TEXTS:
        return ERROR_TEXTS[code]
    if vendor_message:
        return f"SMS Partner error {code}: {vendor_message}"
    return f"SMS Partner error {code}."


@dataclass(frozen=True)
class Transfer:
    """A move SMS Partner confirmed, with both balances as it reported them afterwards."""

    main_balance: Decimal
    subaccount_balance: Decimal
    currency: str


class SMSPartnerError(Exception):
    """Base of everything the client raises about a call."""


class APIError(SMSPartnerError):
    """SMS Partner refused the transfer: nothing moved."""

    def __init__(self, code: int, vendor_message: str) -> None:
        self.code = code
        self.vendor_message = vendor_message
        self.text = error_text(code, vendor_message)
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        """Our text, then SMS Partner's own words, so a renumbered code still reads right."""
        if self.code not in ERROR_TEXTS or not self.vendor_message:
            return self.text  # an unknown code's text already quotes the vendor
        return f'{self.text} (SMS Partner: "{self.vendor_message}")'


class RateLimitedError(APIError):
    """HTTP 429: SMS Partner refused to look at the request now; nothing moved."""

    def __init__(self, vendor_message: str = "") -> None:
        super().__init__(RATE_LIMITED_STATUS, vendor_message)


class NotSentError(SMSPartnerError):
    """Nothing reached SMS Partner: nothing moved, asking again is safe."""


class OutcomeUnknownError(SMSPartnerError):
    """The request was sent but no readable outcome came back: it may have moved credit."""


class BadAnswerError(SMSPartnerError):
    """The answer is not one SMS Partner gives: most likely nothing moved, unconfirmed."""


class SMSPartnerClient:
    """Calls SMS Partner's sub-account credit endpoints over an injected requests.Session."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
        response_format: Literal["json", "xml"] = "json",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.response_format = response_format
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        # A POST cut half-way may already have moved credit, so it is never sent again: the
        # adapter for our URLs retries nothing, whatever the injected session was given.
        never_retry = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0)
        self._session.mount(f"{self.base_url}/", HTTPAdapter(max_retries=never_retry))

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

    def add_credit(self, token: str, amount: Decimal) -> Transfer:
        """Move `amount` euros from the main account into sub-account `token`."""
        return self._transfer(ADD_PATH, token, amount)

    def remove_credit(self, token: str, amount: Decimal) -> Transfer:
        """Move `amount` euros from sub-account `token` back to the main account."""
        return self._transfer(REMOVE_PATH, token, amount)

    def _transfer(self, path: str, token: str, amount: Decimal) -> Transfer:
        payload = {
            "apiKey": self._api_key,
            "credit": _wire_amount(amount),
            "tokenSubaccount": token,
        }
        if self.response_format == "xml":
            payload["_format"] = "xml"
        started = time.monotonic()
        outcome = self._post(path, payload)
        elapsed_ms = (time.monotonic() - started) * 1000
        if isinstance(outcome, requests.Response):
            logger.debug("POST %s -> %s in %.0f ms", path, outcome.status_code, elapsed_ms)
        else:
            logger.debug("POST %s -> %s in %.0f ms", path, type(outcome).__name__, elapsed_ms)
        if isinstance(outcome, SMSPartnerError):
            # Raised here, outside any `except`, so the requests exception, which holds the
            # prepared request and so the key, is not even reachable as __context__.
            raise outcome
        return self._read(outcome)

    def _post(self, path: str, payload: dict[str, str]) -> requests.Response | SMSPartnerError:
        try:
            return self._session.post(
                f"{self.base_url}{path}",
                data=json.dumps(payload).encode("utf-8"),
                headers={"Content-Type": "application/json"},
                timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
                # A redirected POST would be a second send, maybe to somewhere else.
                allow_redirects=False,
                # Keeps a session's own CA bundle, but a session with verify=False still verifies.
                verify=self._session.verify or True,
            )
        except requests.RequestException as error:
            return _transport_failure(error)

    def _read(self, response: requests.Response) -> Transfer:
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
            raise BadAnswerError(f"HTTP {status}")
        fields = _parse(response.content, status)
        if fields.get("success") is not True:
            raise APIError(
                _code(fields.get("code"), status), self._vendor_message(fields.get("message"))
            )
        return _transfer(fields)

    def _vendor_message(self, value: object) -> str:
        message = str(value).strip() if isinstance(value, str | Decimal) else ""
        # Should SMS Partner ever echo the key back, it must not reach Slack or the logs.
        return message.replace(self._api_key, "[redacted]") if self._api_key else message


def _wire_amount(amount: object) -> str:
    """`amount` as SMS Partner's samples send it: a JSON string in plain notation ("10.50")."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a decimal.Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError("amount must be a finite number")
    return format(amount, "f")


def _transport_failure(error: requests.RequestException) -> SMSPartnerError:
    causes = list(_causes(error))
    kinds = " < ".join(dict.fromkeys(type(cause).__name__ for cause in causes))
    never_sent = isinstance(
        error,
        requests.ConnectTimeout
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidURL,
    ) or any(
        # urllib3's own test for "the server did not receive the request"; a certificate is
        # checked in the TLS handshake, before any byte of the request is sent.
        isinstance(cause, ConnectTimeoutError | ssl.SSLCertVerificationError)
        for cause in causes
    )
    if never_sent:
        return NotSentError(f"Could not reach SMS Partner ({kinds}): nothing was sent.")
    # Anything else may have happened after the request left: only "unknown" is honest.
    return OutcomeUnknownError(f"The request was sent but no answer came back ({kinds}).")


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
        raise BadAnswerError(f"{where}an XML body declaring a DOCTYPE or ENTITY")
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
    main = _balance(fields.get("credit"))
    sub = _balance(fields.get("subaccountCredit"))
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


def _balance(value: object) -> Decimal | None:
    """A balance as SMS Partner wrote it, number or string, digits kept ("0.800" stays)."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and PLAIN_DECIMAL.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None
