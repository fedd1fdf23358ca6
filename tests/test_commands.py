"""Unit tests for bot.commands: what `/credit` accepts, what it refuses, and why."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Action
from bot.flow.commands import (
    TOKEN_MAX_LENGTH,
    USAGE,
    CreditCommand,
    HelpCommand,
    UsageError,
    parse_amount,
    parse_command,
    parse_token,
)

MAX = Decimal("1000")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "10"),
        ("10.5", "10.5"),
        ("10,5", "10.5"),
        ("10.50", "10.50"),
        ("10,50", "10.50"),
        ("0.01", "0.01"),
        ("0,01", "0.01"),
        ("1", "1"),
        ("007", "7"),
        ("1000", "1000"),
        ("1000.00", "1000.00"),
        ("999.99", "999.99"),
    ],
)
def test_accepted_amounts_keep_the_typed_precision(text: str, expected: str) -> None:
    """Each accepted amount is the exact Decimal typed, with its decimals, `,` read as `.`."""
    amount = parse_amount(text, max_amount=MAX)
    assert str(amount) == expected
    assert amount.as_tuple() == Decimal(expected).as_tuple()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "missing"),
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("0,0", "greater than 0"),
        ("-5", "minus"),
        ("-0.01", "minus"),
        ("+5", "`+`"),
        ("1e3", "exponent"),
        ("1E3", "exponent"),
        ("1.5e2", "exponent"),
        ("1e-2", "exponent"),
        ("NaN", "NaN"),
        ("nan", "NaN"),
        ("sNaN", "NaN"),
        ("inf", "infinity"),
        ("Infinity", "infinity"),
        ("-inf", "minus"),
        ("10.555", "at most 2 decimals"),
        ("0.001", "at most 2 decimals"),
        ("\u0661\u0660", "digits 0-9"),
        ("\uff11\uff10", "digits 0-9"),
        ("10€", "digits 0-9"),
        ("1,000.00", "thousands"),
        ("1.000,00", "thousands"),
        ("1,000,000", "thousands"),
        ("10.", "both sides"),
        (".5", "both sides"),
        (",5", "both sides"),
        (".", "both sides"),
        ("1" * 19, "too long"),
        ("9" * 10_000, "too long"),
        ("abc", "number of euros"),
        ("10_000", "number of euros"),
        ("0x10", "number of euros"),
        ("1000.01", "The maximum for one request is 1000 EUR."),
        ("5000", "The maximum for one request is 1000 EUR."),
        ("9" * 15, "The maximum for one request is 1000 EUR."),
    ],
)
def test_refused_amounts_say_which_rule(text: str, fragment: str) -> None:
    """Each refused amount raises UsageError with a message naming the rule it breaks."""
    with pytest.raises(UsageError) as caught:
        parse_amount(text, max_amount=MAX)
    assert fragment in caught.value.message


def test_max_amount_is_inclusive_to_the_cent() -> None:
    """The maximum itself is accepted; one cent more is refused with the maximum named."""
    assert parse_amount("250", max_amount=Decimal("250")) == Decimal("250")
    assert parse_amount("250,00", max_amount=Decimal("250.00")) == Decimal("250")
    with pytest.raises(UsageError, match=r"The maximum for one request is 250 EUR\."):
        parse_amount("250.01", max_amount=Decimal("250"))


@pytest.mark.parametrize(
    "token", ["a", "abc123", "sub-42", "A_b.C-9", "0123", "...", "x" * TOKEN_MAX_LENGTH]
)
def test_accepted_tokens_are_returned_unchanged(token: str) -> None:
    """ASCII letters, digits, `-`, `_`, `.`, 1 to 128 characters are accepted as typed."""
    assert parse_token(token) == token


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "missing"),
        ("x" * (TOKEN_MAX_LENGTH + 1), "at most 128 characters"),
        ("<!channel>", "may only contain"),
        ("<@U123>", "may only contain"),
        ("*bold*", "may only contain"),
        ("a b", "may only contain"),
        ("café", "may only contain"),
        ("токен", "may only contain"),
        ("\uff46\uff55\uff4c\uff4c", "may only contain"),
        ("a\x00b", "may only contain"),
        ("a&amp;b", "may only contain"),
        ("line\n", "may only contain"),
    ],
)
def test_refused_tokens_describe_the_rule_without_echoing(token: str, fragment: str) -> None:
    """Refused tokens get a message naming the rule, never containing the token itself."""
    with pytest.raises(UsageError) as caught:
        parse_token(token)
    assert fragment in caught.value.message
    if token:
        assert token not in caught.value.message


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "help", "HELP", "  Help  ", "help me"])
def test_empty_text_and_help_ask_for_usage(text: str) -> None:
    """Nothing typed, or `help` in any case, is a HelpCommand."""
    assert parse_command(text, max_amount=MAX) == HelpCommand()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add sub-42 10,50", CreditCommand(Action.ADD, "sub-42", Decimal("10.50"))),
        ("remove sub-42 10", CreditCommand(Action.REMOVE, "sub-42", Decimal("10"))),
        ("ADD tok 0.01", CreditCommand(Action.ADD, "tok", Decimal("0.01"))),
        ("  Remove\t tok \n 5.5  ", CreditCommand(Action.REMOVE, "tok", Decimal("5.5"))),
        ("add 12345 10", CreditCommand(Action.ADD, "12345", Decimal("10"))),
    ],
)
def test_well_formed_commands_parse(text: str, expected: CreditCommand) -> None:
    """Three words in any whitespace, action in any case, give the exact CreditCommand."""
    assert parse_command(text, max_amount=MAX) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("send tok 10", "Unknown action"),
        ("\uff41\uff44\uff44 tok 10", "Unknown action"),
        ("tok 10", "Unknown action"),
        ("add", "how much"),
        ("add tok", "amount is missing"),
        ("add 10", "token is missing"),
        ("add tok 10 now", "Too many words"),
        ("add tok 1 000", "without spaces"),
        ("add 10 mytoken", "amount comes last"),
        ("remove 10,50 sub-42", "amount comes last"),
        ("add <!channel> 10", "may only contain"),
        ("add tok 1e3", "exponent"),
        ("add tok NaN", "NaN"),
        ("add tok 1001", "maximum"),
    ],
)
def test_malformed_commands_say_what_is_wrong(text: str, fragment: str) -> None:
    """Unknown action, missing or extra words and swapped words each get their own message."""
    with pytest.raises(UsageError) as caught:
        parse_command(text, max_amount=MAX)
    assert fragment in caught.value.message


def test_usage_shows_both_forms_with_placeholders_escaped() -> None:
    """USAGE names both commands and an example, and has no raw `<` Slack would parse."""
    assert "`/credit add &lt;token&gt; &lt;amount&gt;`" in USAGE
    assert "`/credit remove &lt;token&gt; &lt;amount&gt;`" in USAGE
    assert "Example: `/credit add" in USAGE
    assert "<" not in USAGE
    assert ">" not in USAGE


cents = st.decimals(min_value=Decimal("0.01"), max_value=MAX, places=2)
whole = st.integers(min_value=1, max_value=int(MAX)).map(Decimal)
tenths = st.integers(min_value=1, max_value=int(MAX) * 10).map(lambda n: Decimal(n).scaleb(-1))


@given(st.one_of(cents, whole, tenths))
def test_every_allowed_amount_round_trips(amount: Decimal) -> None:
    """Any amount in (0, max] with up to 2 places parses back exactly, with `.` or `,`."""
    text = format(amount, "f")
    for form in (text, text.replace(".", ",")):
        parsed = parse_amount(form, max_amount=MAX)
        assert parsed == amount
        assert parsed.as_tuple() == amount.as_tuple()


def _check_outcome(text: str) -> None:
    try:
        result = parse_command(text, max_amount=MAX)
    except UsageError as error:
        assert error.message
        return
    if isinstance(result, CreditCommand):
        assert Decimal(0) < result.amount <= MAX
        exponent = result.amount.as_tuple().exponent
        assert isinstance(exponent, int)
        assert exponent >= -2
        assert TOKEN_PATTERN.fullmatch(result.subaccount_token)


@given(st.text())
def test_any_text_gives_a_command_or_a_usage_error(text: str) -> None:
    """Arbitrary unicode, control characters and NUL only ever raise UsageError."""
    _check_outcome(text)


near_miss_word = st.one_of(
    st.sampled_from(["add", "remove", "ADD", "help", "10", "10,50", "0", "-1", "1e3", "NaN"]),
    st.text(alphabet="0123456789.,+-eE", max_size=20),
    st.text(alphabet="abcXYZ019._-<>@!*& ", max_size=TOKEN_MAX_LENGTH + 2),
    st.text(max_size=5),
)


@given(
    st.lists(near_miss_word, max_size=5),
    st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\x00"]),
)
def test_near_miss_commands_give_a_command_or_a_usage_error(words: list[str], sep: str) -> None:
    """Almost-valid commands never raise anything but UsageError, nor yield a bad request."""
    _check_outcome(sep.join(words))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.", min_size=1, max_size=128))
def test_every_allowed_token_round_trips(token: str) -> None:
    """Any token the rule allows comes back unchanged, alone and inside a command."""
    assert parse_token(token) == token
    expected = CreditCommand(Action.ADD, token, Decimal("1"))
    assert parse_command(f"add {token} 1", max_amount=MAX) == expected
