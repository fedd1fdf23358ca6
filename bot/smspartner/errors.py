"""What an SMS Partner call can raise, and what it means for the money.

    SMSPartnerError              base class: catching it catches everything below
    ├── APIError                 SMS Partner answered and refused (`success` not true):
    │   │                        nothing moved. `code`, `vendor_message`, `text`, `user_message`.
    │   └── RateLimitedError     HTTP 429: refused for now, nothing moved; try again later.
    ├── NotSentError             the request never reached SMS Partner (refused, DNS, connect
    │                            timeout, certificate rejected, TLS handshake failed): nothing
    │                            moved, safe to ask again.
    ├── OutcomeUnknownError      a credit POST left but no readable outcome came back (no answer
    │                            in time, connection cut, or a "success" whose balances cannot be
    │                            read): the transfer may have happened. Check before asking again.
    ├── NoAnswerError            a read call (GET) left but no answer came back in time, or the
    │                            connection was cut: a read moves nothing, so nothing is unknown.
    └── BadAnswerError           an answer we cannot read as SMS Partner's: HTTP 3xx or 5xx, a body
                                 neither JSON nor XML, a refusal without a code, a listing without
                                 its fields. Most likely nothing moved, but nobody said so.

Every text says what happened in plain words; none quotes a URL, a body or a key.
"""

from __future__ import annotations

import re

from bot.texts.wording import Wording

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
    20: "The SMS Partner account is deactivated.",
    30: "The SMS Partner account is blocked.",
    40: "SMS Partner refuses API access to this account.",
    90: "SMS Partner could not read the request (malformed JSON).",
    96: "SMS Partner refuses calls from this server's IP address (the account has an IP "
    "allow-list).",
    RATE_LIMITED_STATUS: "SMS Partner is limiting how often the bot may call it: nothing moved. "
    "Try again in a minute.",
}


def error_text(code: int, vendor_message: str) -> str:
    """The English text shown for an SMS Partner error code."""
    if code in ERROR_TEXTS:
        return ERROR_TEXTS[code]
    if vendor_message:
        return f"SMS Partner error {code}: {vendor_message}"
    return f"SMS Partner error {code}."


def explanation_of(code: int) -> Wording:
    """Our explanation of an SMS Partner error code, for the card's language (bot.texts):
    `smspartner.error.<code>` in the catalogues, the same facts as ERROR_TEXTS."""
    if code in ERROR_TEXTS:
        return Wording.of(f"smspartner.error.{code}")
    return Wording.of("smspartner.error.other", code=str(code))


_STORED_VENDOR = re.compile(r'.* \(SMS Partner: "(?P<vendor>.*)"\)', re.DOTALL)


def vendor_message_in(code: int, stored: str) -> str:
    """SMS Partner's own message, as it came, from a failure's stored `user_message`."""
    if code in ERROR_TEXTS:
        match = _STORED_VENDOR.fullmatch(stored)
        return match.group("vendor") if match else ""
    prefix = f"SMS Partner error {code}: "
    return stored.removeprefix(prefix) if stored.startswith(prefix) else ""


class SMSPartnerError(Exception):
    """Base of everything the client raises about a call."""


class APIError(SMSPartnerError):
    """SMS Partner refused the call: nothing moved."""

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
    """A credit POST was sent but no readable outcome came back: it may have moved credit."""


class NoAnswerError(SMSPartnerError):
    """A read call was sent but no answer came back: nothing moved (reads move nothing)."""


class BadAnswerError(SMSPartnerError):
    """The answer is not one SMS Partner gives: most likely nothing moved, unconfirmed."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
