"""Amounts and balances in a language's own digits, exactly: Decimal in, text out, no rounding.

The symbols (decimal separator, group separator, minus sign) and the grouping rules are CLDR's,
read through Babel, so French gets `10 225,119 EUR` with a narrow no-break space (U+202F) in the
number and a no-break space (U+00A0) before the currency: a balance never wraps in Slack. The
number of decimals always comes from the number itself, never from a pattern that could round it.

Babel is asked once per language for its symbols; the digits are then placed with plain string
work, because Babel's `format_decimal` parses the locale and a pattern again on every call and a
card formats several amounts (issue 13). The result is the one `format_decimal` gave, character
for character (tests/test_money_format.py compares them), except that a number with more digits
than Babel's decimal context holds (28), on which format_decimal raised, is written in full.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import NamedTuple

from babel import Locale
from babel.numbers import get_decimal_symbol, get_group_symbol

# English keeps the digits as SMS Partner writes them (`2869.200 EUR`), as the bot always has:
# they match the vendor's dashboard character for character. Other languages group by CLDR.
UNGROUPED_LANGUAGES = frozenset({"en"})
# Between the number and the currency: a no-break space, so `EUR` never starts a line, except in
# English, which keeps the plain space its cards have always had.
PLAIN_SPACE_LANGUAGES = frozenset({"en"})
AMOUNT_DECIMALS = 2


class _Symbols(NamedTuple):
    decimal: str
    group: str
    minus: str
    # Digits in the group next to the decimal separator, then in each group before it; 0: the
    # integer part is never grouped.
    first_group: int
    other_groups: int


def format_number(number: Decimal, *, language: str, min_decimals: int = 0) -> str:
    """`number` with every digit it has (and at least `min_decimals`), in `language`'s symbols."""
    if not isinstance(number, Decimal):
        raise TypeError(f"money is a decimal.Decimal, not {type(number).__name__}")
    if not number.is_finite():
        raise ValueError("money must be a finite number")
    symbols = _symbols(language)
    # Without a precision, the `f` format writes every digit and rounds nothing, whatever the
    # decimal context; copy_abs (unlike abs) is exact too. -0 keeps its sign, as with Babel.
    integer, _, fraction = f"{number.copy_abs():f}".partition(".")
    if len(fraction) < min_decimals:
        fraction += "0" * (min_decimals - len(fraction))
    if symbols.first_group:
        integer = _grouped(integer, symbols)
    text = f"{integer}{symbols.decimal}{fraction}" if fraction else integer
    return f"{symbols.minus}{text}" if number.is_signed() else text


def format_amount(amount: Decimal, currency: str, *, language: str) -> str:
    """A requested amount, always with cents: en `10.50 EUR`, fr `10,50 EUR`."""
    number = format_number(amount, language=language, min_decimals=AMOUNT_DECIMALS)
    return f"{number}{_unit_space(language)}{currency}"


def format_balance(balance: Decimal, currency: str, *, language: str) -> str:
    """A balance with the digits SMS Partner sent: en `10225.119 EUR`, fr `10 225,119 EUR`."""
    return f"{format_number(balance, language=language)}{_unit_space(language)}{currency}"


@functools.cache
def _symbols(language: str) -> _Symbols:
    pattern = Locale.parse(language).decimal_formats[None]
    grouped = language not in UNGROUPED_LANGUAGES
    first_group, other_groups = pattern.grouping if grouped else (0, 0)
    return _Symbols(
        decimal=get_decimal_symbol(language),
        group=get_group_symbol(language),
        # What Babel writes before a negative number (`-` in English and French), which is not
        # always CLDR's minusSign: Swedish's is U+2212, yet format_decimal wrote `-`.
        minus=pattern.prefix[1],
        first_group=first_group,
        other_groups=other_groups,
    )


def _grouped(integer: str, symbols: _Symbols) -> str:
    if len(integer) <= symbols.first_group:
        return integer
    groups = [integer[-symbols.first_group :]]
    rest = integer[: -symbols.first_group]
    while len(rest) > symbols.other_groups:
        groups.append(rest[-symbols.other_groups :])
        rest = rest[: -symbols.other_groups]
    groups.append(rest)
    return symbols.group.join(reversed(groups))


def _unit_space(language: str) -> str:
    return " " if language in PLAIN_SPACE_LANGUAGES else "\u00a0"
