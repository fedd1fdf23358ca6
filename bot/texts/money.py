"""Amounts and balances in a language's own digits, exactly: Decimal in, text out, no rounding.

The symbols (decimal separator, group separator, minus sign) and the grouping rules are CLDR's,
read through Babel, so French gets `10 225,119 EUR` with a narrow no-break space (U+202F) in the
number and a no-break space (U+00A0) before the currency: a balance never wraps in Slack. The
number of decimals always comes from the number itself, never from a pattern that could round it.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal

# English keeps the digits as SMS Partner writes them (`2869.200 EUR`), as the bot always has:
# they match the vendor's dashboard character for character. Other languages group by CLDR.
UNGROUPED_LANGUAGES = frozenset({"en"})
# Between the number and the currency: a no-break space, so `EUR` never starts a line, except in
# English, which keeps the plain space its cards have always had.
PLAIN_SPACE_LANGUAGES = frozenset({"en"})
AMOUNT_DECIMALS = 2


def format_number(number: Decimal, *, language: str, min_decimals: int = 0) -> str:
    """`number` with every digit it has (and at least `min_decimals`), in `language`'s symbols."""
    if not isinstance(number, Decimal):
        raise TypeError(f"money is a decimal.Decimal, not {type(number).__name__}")
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # only NaN and infinities have a letter here
        raise ValueError("money must be a finite number")
    decimals = max(min_decimals, -exponent)
    integer_part = "0" if language in UNGROUPED_LANGUAGES else "#,##0"
    pattern = f"{integer_part}.{'0' * decimals}" if decimals else integer_part
    # The pattern holds exactly as many decimals as the number, so nothing is rounded; an
    # amount with more than two is shown in full rather than rounded to cents.
    return format_decimal(number, format=pattern, locale=language, decimal_quantization=False)


def format_amount(amount: Decimal, currency: str, *, language: str) -> str:
    """A requested amount, always with cents: en `10.50 EUR`, fr `10,50 EUR`."""
    number = format_number(amount, language=language, min_decimals=AMOUNT_DECIMALS)
    return f"{number}{_unit_space(language)}{currency}"


def format_balance(balance: Decimal, currency: str, *, language: str) -> str:
    """A balance with the digits SMS Partner sent: en `10225.119 EUR`, fr `10 225,119 EUR`."""
    return f"{format_number(balance, language=language)}{_unit_space(language)}{currency}"


def _unit_space(language: str) -> str:
    return " " if language in PLAIN_SPACE_LANGUAGES else "\u00a0"
