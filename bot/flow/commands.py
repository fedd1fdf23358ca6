"""Parse the text after `/credit` into a command, or a usage error (SPEC.md §2.1).

`/credit add|remove <sub-account> <amount> [reason]` is the only way money enters the app, so
this module is strict: it accepts exactly what the spec allows and explains every refusal in
one sentence. Messages never quote the user's text, so nothing typed here can form a mention
or link in Slack. The French sub-commands are accepted whatever the language setting.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from bot.domain import Action
from bot.texts import DEFAULT_LANGUAGE, Texts, Wording

TOKEN_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254
REASON_MAX_LENGTH = 200
# 15 integer digits is far above any per-request maximum; capping the length before any
# matching or conversion keeps a pasted megabyte cheap.
AMOUNT_MAX_DIGITS = 15
_AMOUNT_MAX_LENGTH = AMOUNT_MAX_DIGITS + 3  # digits, separator, cents
CENTS = Decimal("0.01")

# Explicit ASCII classes: `\d` and `str.isalnum` would let Arabic-Indic or fullwidth characters in.
_TOKEN = re.compile(r"[A-Za-z0-9._-]+")
# A plain local@domain check: the directory decides whether SMS Partner knows the address.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_AMOUNT = re.compile(r"(?P<units>[0-9]+)(?:[.,](?P<cents>[0-9]+))?")
_EXPONENT = re.compile(r"[0-9]*[.,]?[0-9]*[eE][+-]?[0-9]*")
_NOT_A_NUMBER = re.compile(r"s?nan|inf|infinity", re.IGNORECASE | re.ASCII)
# Anything a user could have meant as an amount, valid or not: used to spot swapped words.
_NUMBER_LIKE = re.compile(
    r"[+-]?(?:[0-9.,]*[0-9][0-9.,]*(?:e[+-]?[0-9]*)?|s?nan|inf(?:inity)?)", re.IGNORECASE | re.ASCII
)
# `1 000` or `1 000,50`: a thousands group split off by a space, which would otherwise read
# as the amount 1 with the reason "000".
_THOUSANDS_HEAD = re.compile(r"[0-9]{1,3}")
_THOUSANDS_TAIL = re.compile(r"[0-9]{3}(?:[.,][0-9]{1,2})?")
# Tab and line breaks are text; other control characters (NUL among them) are not.
_REASON_WHITESPACE = frozenset("\t\n\r")

_CREDIT_WORDS = {
    "add": Action.ADD,
    "ajouter": Action.ADD,
    "remove": Action.REMOVE,
    "retirer": Action.REMOVE,
}
_BALANCE_WORDS = frozenset({"balance", "solde"})
_HISTORY_WORDS = frozenset({"history", "historique"})
_HELP_WORDS = frozenset({"help", "aide"})


def is_email(subaccount: str) -> bool:
    """Whether a parsed sub-account was given by e-mail rather than by token."""
    return "@" in subaccount


@dataclass(frozen=True)
class CreditCommand:
    """`add|remove`: `subaccount` is a token or an e-mail address, exactly as typed."""

    action: Action
    subaccount: str
    amount: Decimal
    reason: str | None = None

    @property
    def by_email(self) -> bool:
        return is_email(self.subaccount)


@dataclass(frozen=True)
class BalanceCommand:
    """`balance [sub-account]`: None asks for the main account and every sub-account."""

    subaccount: str | None = None

    @property
    def by_email(self) -> bool:
        return self.subaccount is not None and is_email(self.subaccount)


@dataclass(frozen=True)
class HistoryCommand:
    """`history [sub-account]`: None asks for the latest requests of every sub-account."""

    subaccount: str | None = None

    @property
    def by_email(self) -> bool:
        return self.subaccount is not None and is_email(self.subaccount)


@dataclass(frozen=True)
class HelpCommand:
    pass


Command = CreditCommand | BalanceCommand | HistoryCommand | HelpCommand


class UsageError(ValueError):
    """The command cannot be understood; `wording` says why, without the usage text, and
    `message` is that in English (for logs and tests; the user reads it in their language)."""

    def __init__(self, wording: Wording) -> None:
        self.wording = wording
        self.message = Texts.for_language(DEFAULT_LANGUAGE).say(wording)
        super().__init__(self.message)


def parse_command(text: str, *, max_amount: Decimal, require_reason: bool = False) -> Command:
    """One of the sub-commands of SPEC.md §2.1; anything else raises UsageError."""
    # maxsplit bounds the work on long input; the fourth item is the reason as typed, with
    # its inner spaces and line breaks.
    words = text.split(maxsplit=3)
    verb = words[0].lower() if words and words[0].isascii() else None
    # "help" followed by anything still gets help: that is what the user asked for.
    if not words or verb in _HELP_WORDS:
        return HelpCommand()
    if verb in _BALANCE_WORDS or verb in _HISTORY_WORDS:
        return _parse_lookup(verb, words[1:])
    action = _CREDIT_WORDS.get(verb or "")
    if action is None:
        raise UsageError(Wording.of("usage.error.unknown_action"))
    return _parse_credit(
        action, words, verb=verb or "", max_amount=max_amount, require_reason=require_reason
    )


def _parse_lookup(verb: str, rest: list[str]) -> BalanceCommand | HistoryCommand:
    if len(rest) > 1:
        raise UsageError(Wording.of("usage.error.too_many_words", verb=verb))
    subaccount = parse_subaccount(rest[0]) if rest else None
    if verb in _BALANCE_WORDS:
        return BalanceCommand(subaccount)
    return HistoryCommand(subaccount)


def _parse_credit(
    action: Action, words: list[str], *, verb: str, max_amount: Decimal, require_reason: bool
) -> CreditCommand:
    if len(words) == 1:
        # `verb` is one of the known words, lower-cased: safe to show.
        raise UsageError(Wording.of("usage.error.say_which", verb=verb))
    if len(words) == 2:
        if _NUMBER_LIKE.fullmatch(words[1]):
            raise UsageError(Wording.of("usage.error.subaccount_before_amount"))
        raise UsageError(Wording.of("usage.error.amount_after_subaccount"))
    subaccount_word, amount_word = words[1], words[2]
    if _NUMBER_LIKE.fullmatch(subaccount_word) and not _NUMBER_LIKE.fullmatch(amount_word):
        raise UsageError(Wording.of("usage.error.amount_last"))
    reason = parse_reason(words[3] if len(words) == 4 else "", required=require_reason)
    if reason is not None and _THOUSANDS_HEAD.fullmatch(amount_word):
        first_word = reason.split(maxsplit=1)[0]
        if _THOUSANDS_TAIL.fullmatch(first_word):
            raise UsageError(Wording.of("usage.error.amount_with_spaces"))
    return CreditCommand(
        action=action,
        subaccount=parse_subaccount(subaccount_word),
        amount=parse_amount(amount_word, max_amount=max_amount),
        reason=reason,
    )


def parse_subaccount(text: str) -> str:
    """A sub-account's token or e-mail address, returned as typed."""
    if "@" in text:
        return parse_email(text)
    return parse_token(text)


def parse_token(text: str) -> str:
    """A sub-account token: 1 to TOKEN_MAX_LENGTH ASCII letters, digits, `-`, `_` or `.`."""
    if not text:
        raise UsageError(Wording.of("usage.error.subaccount_missing"))
    if len(text) > TOKEN_MAX_LENGTH:
        raise UsageError(Wording.of("usage.error.token_too_long", max_length=TOKEN_MAX_LENGTH))
    if not _TOKEN.fullmatch(text):
        raise UsageError(Wording.of("usage.error.token_characters"))
    return text


def parse_email(text: str) -> str:
    """A sub-account's e-mail address, plainly `local@domain`; its case is kept as typed."""
    if len(text) > EMAIL_MAX_LENGTH:
        raise UsageError(Wording.of("usage.error.email_too_long", max_length=EMAIL_MAX_LENGTH))
    if not _EMAIL.fullmatch(text):
        raise UsageError(Wording.of("usage.error.email_form"))
    return text


def parse_reason(text: str, *, required: bool) -> str | None:
    """The reason, trimmed: 1 to REASON_MAX_LENGTH characters, or None when none was given."""
    reason = text.strip()
    if not reason:
        if required:
            raise UsageError(Wording.of("usage.error.reason_required"))
        return None
    if len(reason) > REASON_MAX_LENGTH:
        raise UsageError(
            Wording.of(
                "usage.error.reason_too_long", max_length=REASON_MAX_LENGTH, length=len(reason)
            )
        )
    for character in reason:
        category = unicodedata.category(character)
        if category == "Cc" and character not in _REASON_WHITESPACE:
            raise UsageError(Wording.of("usage.error.reason_control"))
        if category == "Cs":
            # A lone surrogate cannot be stored or sent as UTF-8.
            raise UsageError(Wording.of("usage.error.reason_invalid"))
    return reason


def parse_amount(text: str, *, max_amount: Decimal) -> Decimal:
    """Positive euros with at most 2 decimals, always with exactly 2 (`4` is Decimal("4.00")).

    One form from here on, so the log, the audit trail and the card all say `4.00`.
    """
    if not text:
        raise UsageError(Wording.of("usage.error.amount_missing"))
    if len(text) > _AMOUNT_MAX_LENGTH:
        raise UsageError(Wording.of("usage.error.amount_too_long", max_digits=AMOUNT_MAX_DIGITS))
    if not text.isascii():
        raise UsageError(Wording.of("usage.error.amount_not_ascii"))
    if text[0] == "-":
        raise UsageError(Wording.of("usage.error.amount_negative"))
    if text[0] == "+":
        raise UsageError(Wording.of("usage.error.amount_plus"))
    if _NOT_A_NUMBER.fullmatch(text):
        raise UsageError(Wording.of("usage.error.amount_nan"))
    if _EXPONENT.fullmatch(text) and any(c.isdigit() for c in text):
        raise UsageError(Wording.of("usage.error.amount_exponent"))
    if text.count(".") + text.count(",") > 1:
        raise UsageError(Wording.of("usage.error.amount_thousands"))
    if text[0] in ".," or text[-1] in ".,":
        # `.5` and `10.` are refused rather than guessed at: a slip in an amount moves money.
        raise UsageError(Wording.of("usage.error.amount_separator"))
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise UsageError(Wording.of("usage.error.amount_not_a_number"))
    units, cents = match["units"], match["cents"]
    if cents is not None and len(cents) > 2:
        raise UsageError(Wording.of("usage.error.amount_decimals"))
    amount = Decimal(units if cents is None else f"{units}.{cents}")
    if amount == 0:
        raise UsageError(Wording.of("usage.error.amount_zero"))
    if amount > max_amount:
        raise UsageError(Wording.of("usage.error.amount_above_maximum", maximum=max_amount))
    # Exact: at most 2 decimals and at most 15 digits, so quantize never rounds.
    return amount.quantize(CENTS)
