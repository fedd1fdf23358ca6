"""Parse the text after `/credit` into a credit request, a help request, or a usage error.

`/credit add|remove <token> <amount>` is the only way money enters the app, so this module is
strict: it accepts exactly what SPEC.md §2 allows and explains every refusal in one sentence.
Messages never quote the user's text, so nothing typed here can form a mention or link in Slack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from bot.domain import Action

TOKEN_MAX_LENGTH = 128
# 15 integer digits is far above any per-request maximum; capping the length before any
# matching or conversion keeps a pasted megabyte cheap.
AMOUNT_MAX_DIGITS = 15
_AMOUNT_MAX_LENGTH = AMOUNT_MAX_DIGITS + 3  # digits, separator, cents

# Explicit ASCII classes: `\d` and `str.isalnum` would let Arabic-Indic or fullwidth characters in.
_TOKEN = re.compile(r"[A-Za-z0-9._-]+")
_AMOUNT = re.compile(r"(?P<units>[0-9]+)(?:[.,](?P<cents>[0-9]+))?")
_EXPONENT = re.compile(r"[0-9]*[.,]?[0-9]*[eE][+-]?[0-9]*")
_NOT_A_NUMBER = re.compile(r"s?nan|inf|infinity", re.IGNORECASE | re.ASCII)
# Anything a user could have meant as an amount, valid or not: used to spot swapped words.
_NUMBER_LIKE = re.compile(
    r"[+-]?(?:[0-9.,]*[0-9][0-9.,]*(?:e[+-]?[0-9]*)?|s?nan|inf(?:inity)?)", re.IGNORECASE | re.ASCII
)

USAGE = (
    "*Usage*\n"
    "• `/credit add &lt;token&gt; &lt;amount&gt;`: move &lt;amount&gt; EUR from the main account "
    "to the sub-account\n"
    "• `/credit remove &lt;token&gt; &lt;amount&gt;`: move &lt;amount&gt; EUR from the sub-account "
    "back to the main account\n"
    "• `/credit help`: show this help\n"
    f"`&lt;token&gt;` is the sub-account's token: letters, digits, `-`, `_` and `.`, "
    f"1 to {TOKEN_MAX_LENGTH} characters.\n"
    "`&lt;amount&gt;` is in euros, greater than 0, with at most 2 decimals after a `.` or `,` "
    "(`10`, `10.5`, `10,50`, `0.01`); no sign, spaces or thousands separators.\n"
    "Example: `/credit add sub-42 10,50`"
)


@dataclass(frozen=True)
class CreditCommand:
    action: Action
    subaccount_token: str
    amount: Decimal


@dataclass(frozen=True)
class HelpCommand:
    pass


class UsageError(ValueError):
    """The command cannot be understood; `message` says why, without the usage text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_command(text: str, *, max_amount: Decimal) -> CreditCommand | HelpCommand:
    """`add|remove <token> <amount>`, `help` or nothing; anything else raises UsageError."""
    # maxsplit bounds the work on long input and still tells three words from more.
    words = text.split(maxsplit=3)
    # "help" followed by anything still gets help: that is what the user asked for.
    if not words or words[0].lower() == "help":
        return HelpCommand()
    action = _parse_action(words[0])
    if len(words) == 1:
        raise UsageError(f"Say which sub-account and how much, after `{action}`.")
    if len(words) == 2:
        if _NUMBER_LIKE.fullmatch(words[1]):
            raise UsageError("The sub-account token is missing: it comes before the amount.")
        raise UsageError("The amount is missing: it comes after the sub-account token.")
    if len(words) == 4:
        if _NUMBER_LIKE.fullmatch(words[2]) and words[3][:1].isdigit():
            raise UsageError(
                "Too many words: write the amount without spaces (`1000`, not `1 000`)."
            )
        raise UsageError("Too many words: give only an action, a sub-account token and an amount.")
    token_word, amount_word = words[1], words[2]
    if _NUMBER_LIKE.fullmatch(token_word) and not _NUMBER_LIKE.fullmatch(amount_word):
        raise UsageError("The amount comes last: first the sub-account token, then the amount.")
    return CreditCommand(
        action=action,
        subaccount_token=parse_token(token_word),
        amount=parse_amount(amount_word, max_amount=max_amount),
    )


def _parse_action(word: str) -> Action:
    # isascii first: lower() maps some non-ASCII letters onto ASCII ones.
    if word.isascii():
        try:
            return Action(word.lower())
        except ValueError:
            pass
    raise UsageError("Unknown action: start with `add` or `remove` (or `help`).")


def parse_token(text: str) -> str:
    """A sub-account token: 1 to TOKEN_MAX_LENGTH ASCII letters, digits, `-`, `_` or `.`."""
    if not text:
        raise UsageError("The sub-account token is missing.")
    if len(text) > TOKEN_MAX_LENGTH:
        raise UsageError(
            f"The sub-account token is too long: at most {TOKEN_MAX_LENGTH} characters."
        )
    if not _TOKEN.fullmatch(text):
        raise UsageError(
            "The sub-account token may only contain letters, digits, `-`, `_` and `.`."
        )
    return text


def parse_amount(text: str, *, max_amount: Decimal) -> Decimal:
    """Positive euros with at most 2 decimals, exactly as typed (`10,50` is Decimal("10.50"))."""
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
    return amount
