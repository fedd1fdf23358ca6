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

# The one place the usage is written, so it can move into the message catalogues whole.
USAGE = (
    "*Usage*\n"
    "• `/credit add &lt;sub-account&gt; &lt;amount&gt; [reason]`: move &lt;amount&gt; EUR "
    "from the main account to the sub-account\n"
    "• `/credit remove &lt;sub-account&gt; &lt;amount&gt; [reason]`: move &lt;amount&gt; EUR "
    "from the sub-account back to the main account\n"
    "• `/credit balance [sub-account]`: the main account's balance, and the sub-accounts'\n"
    "• `/credit history [sub-account]`: the latest requests\n"
    "• `/credit help`: show this help\n"
    "French words work too: `ajouter`, `retirer`, `solde`, `historique`, `aide`.\n"
    "`&lt;sub-account&gt;` is the sub-account's token (letters, digits, `-`, `_` and `.`, "
    f"1 to {TOKEN_MAX_LENGTH} characters) or its e-mail address.\n"
    "`&lt;amount&gt;` is in euros, greater than 0, with at most 2 decimals after a `.` or `,` "
    "(`10`, `10.5`, `10,50`, `0.01`); no sign, spaces or thousands separators.\n"
    f"`[reason]` is everything after the amount, up to {REASON_MAX_LENGTH} characters.\n"
    "Example: `/credit add sub-42 10,50 March campaign`"
)


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
    """The command cannot be understood; `message` says why, without the usage text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
        raise UsageError(
            "Unknown action: start with `add`, `remove`, `balance`, `history` or `help`."
        )
    return _parse_credit(
        action, words, verb=verb or "", max_amount=max_amount, require_reason=require_reason
    )


def _parse_lookup(verb: str, rest: list[str]) -> BalanceCommand | HistoryCommand:
    if len(rest) > 1:
        raise UsageError(f"Too many words: `{verb}` takes at most one sub-account.")
    subaccount = parse_subaccount(rest[0]) if rest else None
    if verb in _BALANCE_WORDS:
        return BalanceCommand(subaccount)
    return HistoryCommand(subaccount)


def _parse_credit(
    action: Action, words: list[str], *, verb: str, max_amount: Decimal, require_reason: bool
) -> CreditCommand:
    if len(words) == 1:
        # `verb` is one of the known words, lower-cased: safe to show.
        raise UsageError(f"Say which sub-account and how much, after `{verb}`.")
    if len(words) == 2:
        if _NUMBER_LIKE.fullmatch(words[1]):
            raise UsageError("The sub-account is missing: it comes before the amount.")
        raise UsageError("The amount is missing: it comes after the sub-account.")
    subaccount_word, amount_word = words[1], words[2]
    if _NUMBER_LIKE.fullmatch(subaccount_word) and not _NUMBER_LIKE.fullmatch(amount_word):
        raise UsageError(
            "The amount comes after the sub-account: first the sub-account, then the amount."
        )
    reason = parse_reason(words[3] if len(words) == 4 else "", required=require_reason)
    if reason is not None and _THOUSANDS_HEAD.fullmatch(amount_word):
        first_word = reason.split(maxsplit=1)[0]
        if _THOUSANDS_TAIL.fullmatch(first_word):
            raise UsageError(
                "Write the amount without spaces (`1000`, not `1 000`); "
                "a reason that starts with a number needs a word before it."
            )
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
        raise UsageError("The sub-account is missing.")
    if len(text) > TOKEN_MAX_LENGTH:
        raise UsageError(
            f"The sub-account token is too long: at most {TOKEN_MAX_LENGTH} characters."
        )
    if not _TOKEN.fullmatch(text):
        raise UsageError(
            "The sub-account token may only contain letters, digits, `-`, `_` and `.`."
        )
    return text


def parse_email(text: str) -> str:
    """A sub-account's e-mail address, plainly `local@domain`; its case is kept as typed."""
    if len(text) > EMAIL_MAX_LENGTH:
        raise UsageError(
            f"The sub-account's e-mail address is too long: at most {EMAIL_MAX_LENGTH} characters."
        )
    if not _EMAIL.fullmatch(text):
        raise UsageError(
            "The sub-account's e-mail address must look like `name@example.com` "
            "(ASCII letters, digits, `.`, `_`, `%`, `+` and `-`)."
        )
    return text


def parse_reason(text: str, *, required: bool) -> str | None:
    """The reason, trimmed: 1 to REASON_MAX_LENGTH characters, or None when none was given."""
    reason = text.strip()
    if not reason:
        if required:
            raise UsageError("Say why the money moves: a reason after the amount is required here.")
        return None
    if len(reason) > REASON_MAX_LENGTH:
        raise UsageError(
            f"The reason is too long: at most {REASON_MAX_LENGTH} characters, "
            f"this one has {len(reason)}."
        )
    for character in reason:
        category = unicodedata.category(character)
        if category == "Cc" and character not in _REASON_WHITESPACE:
            raise UsageError("The reason may not contain control characters.")
        if category == "Cs":
            # A lone surrogate cannot be stored or sent as UTF-8.
            raise UsageError("The reason contains characters that are not valid text.")
    return reason


def parse_amount(text: str, *, max_amount: Decimal) -> Decimal:
    """Positive euros with at most 2 decimals, always with exactly 2 (`4` is Decimal("4.00")).

    One form from here on, so the log, the audit trail and the card all say `4.00`.
    """
    if not text:
        raise UsageError("The amount is missing.")
    if len(text) > _AMOUNT_MAX_LENGTH:
        raise UsageError(
            f"The amount is too long: at most {AMOUNT_MAX_DIGITS} digits before the decimals."
        )
    if not text.isascii():
        raise UsageError("The amount may only contain the digits 0-9 and one `.` or `,`.")
    if text[0] == "-":
        raise UsageError("The amount must be greater than 0: no minus sign.")
    if text[0] == "+":
        raise UsageError("Write the amount without a `+` sign.")
    if _NOT_A_NUMBER.fullmatch(text):
        raise UsageError("NaN and infinity are not amounts: give a number of euros.")
    if _EXPONENT.fullmatch(text) and any(c.isdigit() for c in text):
        raise UsageError("Write the amount without an exponent: `1000`, not `1e3`.")
    if text.count(".") + text.count(",") > 1:
        raise UsageError(
            "Write the amount without thousands separators: `1000.50`, not `1,000.50`."
        )
    if text[0] in ".," or text[-1] in ".,":
        # `.5` and `10.` are refused rather than guessed at: a slip in an amount moves money.
        raise UsageError(
            "Put digits on both sides of the decimal separator, e.g. `0.50` or `10.00`."
        )
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise UsageError("The amount must be a number of euros, like `10`, `10.5` or `10,50`.")
    units, cents = match["units"], match["cents"]
    if cents is not None and len(cents) > 2:
        raise UsageError("The amount can have at most 2 decimals (cents).")
    amount = Decimal(units if cents is None else f"{units}.{cents}")
    if amount == 0:
        raise UsageError("The amount must be greater than 0.")
    if amount > max_amount:
        raise UsageError(f"The maximum for one request is {max_amount:f} EUR.")
    # Exact: at most 2 decimals and at most 15 digits, so quantize never rounds.
    return amount.quantize(CENTS)
