"""bot/texts/money.py writes exactly what Babel's format_decimal wrote, without calling it."""

from __future__ import annotations

import decimal
import random
from decimal import Decimal

import pytest
from babel.numbers import format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.texts.money import UNGROUPED_LANGUAGES, format_amount, format_balance, format_number

LANGUAGES = ("en", "fr")
NNBSP = "\u202f"


def babel_format(number: Decimal, language: str, min_decimals: int) -> str | None:
    """The formatter as it was before issue 13, or None where Babel's arithmetic gave up."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    decimals = max(min_decimals, -exponent)
    integer_part = "0" if language in UNGROUPED_LANGUAGES else "#,##0"
    pattern = f"{integer_part}.{'0' * decimals}" if decimals else integer_part
    try:
        return format_decimal(number, format=pattern, locale=language, decimal_quantization=False)
    except decimal.InvalidOperation:
        return None


# Coefficients of every size Babel still handles, zeros among them, with exponents far on
# both sides: Decimal('1E+3') and Decimal('0.000001') as much as Decimal('10225.119').
finite_decimals = st.builds(
    lambda negative, digits, exponent: Decimal((negative, digits, exponent)),
    st.booleans(),
    st.lists(st.integers(0, 9), min_size=1, max_size=27).map(tuple),
    st.integers(-30, 27),
)
EDGE_CASES = [
    "0", "-0", "0.00", "-0.00", "0E-7", "-0E+5", "0E+2", "1E+3", "-1E+3", "1E+25",
    "0.000001", "-0.000001", "1E-30", "999", "1000", "-1000", "999999", "1000000",
    "10225.119", "2869.200", "0.800", "61.8", "-12.500", "10.5", "10.005", "0.01",
    "1234567.891", "-1234567.891", "12345678901234567890123456.7", "00012.30",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(number=finite_decimals, language=st.sampled_from(LANGUAGES), min_decimals=st.integers(0, 3))
def test_every_decimal_babel_formats_is_formatted_the_same(number, language, min_decimals):
    expected = babel_format(number, language, min_decimals)
    if expected is not None:
        assert format_number(number, language=language, min_decimals=min_decimals) == expected


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("min_decimals", [0, 2])
@pytest.mark.parametrize("number", EDGE_CASES)
def test_edge_cases_are_formatted_as_babel_did(number, language, min_decimals):
    expected = babel_format(Decimal(number), language, min_decimals)
    assert expected is not None
    assert format_number(Decimal(number), language=language, min_decimals=min_decimals) == expected


def test_a_seeded_spread_of_amounts_and_balances_matches_babel():
    """A fixed draw, so a failure here reproduces without hypothesis's database."""
    draw = random.Random(13)
    for _ in range(3000):
        digits = str(draw.randrange(10 ** draw.randint(1, 18)))
        number = Decimal(f"{draw.choice('-+')}{digits}E{draw.randint(-12, 6)}")
        language = draw.choice(LANGUAGES)
        min_decimals = draw.randint(0, 3)
        expected = babel_format(number, language, min_decimals)
        assert expected is not None  # 18 digits, 6 zeros and 3 decimals stay within Babel's 28
        assert format_number(number, language=language, min_decimals=min_decimals) == expected


def test_negative_zero_keeps_its_sign_as_babel_did():
    assert format_number(Decimal("-0"), language="en") == "-0"
    assert format_number(Decimal("-0.00"), language="fr") == "-0,00"


def test_numbers_beyond_babels_precision_keep_every_digit():
    """Babel raised decimal.InvalidOperation past 28 digits; every digit is shown instead."""
    assert format_number(Decimal("1E+30"), language="en") == "1" + "0" * 30
    assert format_number(Decimal("1E+27"), language="en", min_decimals=2) == "1" + "0" * 27 + ".00"
    assert format_number(Decimal("1.0000000000000000000000000001"), language="fr") == (
        "1,0000000000000000000000000001"
    )
    assert format_number(Decimal("-1234567890123456789012345678901"), language="fr") == (
        NNBSP.join(["-1", "234", "567", "890", "123", "456", "789", "012", "345", "678", "901"])
    )


def test_the_decimal_context_changes_nothing():
    """The digits come from the number alone: a context of 3 digits rounds nothing."""
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN)):
        assert format_balance(Decimal("-10225.119"), "EUR", language="fr") == (
            f"-10{NNBSP}225,119\u00a0EUR"
        )
        assert format_amount(Decimal("123456.5"), "EUR", language="en") == "123456.50 EUR"


@pytest.mark.parametrize("bad", [10.5, 10, "10.50", None])
def test_money_that_is_not_a_decimal_is_refused(bad):
    with pytest.raises(TypeError, match=r"decimal\.Decimal"):
        format_number(bad, language="en")


@pytest.mark.parametrize("bad", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
def test_money_that_is_not_finite_is_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        format_number(Decimal(bad), language="fr")
