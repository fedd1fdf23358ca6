"""Unit tests for bot.commands: what `/credit` accepts, what it refuses, and why."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Action
from bot.flow.commands import (
    REASON_MAX_LENGTH,
    TOKEN_MAX_LENGTH,
    BalanceCommand,
    CreditCommand,
    HelpCommand,
    HistoryCommand,
    UsageError,
    parse_amount,
    parse_command,
    parse_subaccount,
    parse_token,
)
from bot.slack.blocks import usage
from bot.texts import Texts

MAX = Decimal("1000")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "10.00"),
        ("4", "4.00"),
        ("10.5", "10.50"),
        ("10,5", "10.50"),
        ("10.50", "10.50"),
        ("10,50", "10.50"),
        ("0.01", "0.01"),
        ("0,01", "0.01"),
        ("1", "1.00"),
        ("007", "7.00"),
        ("1000", "1000.00"),
        ("1000.00", "1000.00"),
        ("999.99", "999.99"),
    ],
)
def test_accepted_amounts_come_back_with_exactly_two_decimals(text: str, expected: str) -> None:
    """Each accepted amount is the exact value typed, `,` read as `.`, always with 2 decimals
    (so the log, the audit trail and the card all say `4.00`, never `4`)."""
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
    assert str(parse_amount("250", max_amount=Decimal("250"))) == "250.00"
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


@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n", "help", "HELP", "  Help  ", "help me", "aide", "AIDE", "Aide moi"]
)
def test_empty_text_and_help_ask_for_usage(text: str) -> None:
    """Nothing typed, or `help` / `aide` in any case, is a HelpCommand."""
    assert parse_command(text, max_amount=MAX) == HelpCommand()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add sub-42 10,50", CreditCommand(Action.ADD, "sub-42", Decimal("10.50"))),
        ("remove sub-42 10", CreditCommand(Action.REMOVE, "sub-42", Decimal("10.00"))),
        ("ADD tok 0.01", CreditCommand(Action.ADD, "tok", Decimal("0.01"))),
        ("  Remove\t tok \n 5.5  ", CreditCommand(Action.REMOVE, "tok", Decimal("5.50"))),
        ("add 12345 10", CreditCommand(Action.ADD, "12345", Decimal("10.00"))),
        ("ajouter tok 10", CreditCommand(Action.ADD, "tok", Decimal("10.00"))),
        ("RETIRER tok 10", CreditCommand(Action.REMOVE, "tok", Decimal("10.00"))),
        (
            "add Ana.Lima@Example.com 10",
            CreditCommand(Action.ADD, "Ana.Lima@Example.com", Decimal("10.00")),
        ),
        (
            "add tok 10 March campaign",
            CreditCommand(Action.ADD, "tok", Decimal("10.00"), "March campaign"),
        ),
        (
            "add tok 10   two  spaces\nand a line  \n",
            CreditCommand(Action.ADD, "tok", Decimal("10.00"), "two  spaces\nand a line"),
        ),
        ("add tok 10 now", CreditCommand(Action.ADD, "tok", Decimal("10.00"), "now")),
        (
            "add tok 10 2024 budget",
            CreditCommand(Action.ADD, "tok", Decimal("10.00"), "2024 budget"),
        ),
        ("add tok 1000 100 SMS", CreditCommand(Action.ADD, "tok", Decimal("1000.00"), "100 SMS")),
    ],
)
def test_well_formed_commands_parse(text: str, expected: CreditCommand) -> None:
    """Action (English or French, any case), sub-account, amount and an optional reason
    give the exact CreditCommand; the reason is trimmed and keeps its inner whitespace."""
    assert parse_command(text, max_amount=MAX) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("send tok 10", "Unknown action"),
        ("\uff41\uff44\uff44 tok 10", "Unknown action"),
        ("tok 10", "Unknown action"),
        ("add", "how much"),
        ("AJOUTER", "how much, after `ajouter`"),
        ("add tok", "amount is missing"),
        ("add 10", "sub-account is missing"),
        ("add tok 1 000", "without spaces"),
        ("add tok 1 000,50 rent", "without spaces"),
        ("add tok 12 345", "without spaces"),
        ("add tok march campaign", "number of euros"),
        ("add 10 mytoken", "amount comes after the sub-account"),
        ("remove 10,50 sub-42", "amount comes after the sub-account"),
        ("add a@b 10", "e-mail address must look like"),
        ("add a@@b.com 10", "e-mail address must look like"),
        ("add <mailto:a@b.com|a@b.com> 10", "e-mail address must look like"),
        ("add tok 10 " + "x" * (REASON_MAX_LENGTH + 1), "at most 200 characters"),
        ("add tok 10 a\x00b", "control characters"),
        ("add tok 10 a\x1bb", "control characters"),
        ("add tok 10 a\ud800b", "not valid text"),
        ("balance a b", "at most one sub-account"),
        ("historique a b", "at most one sub-account"),
        ("solde <!channel>", "may only contain"),
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


USAGE = usage(Texts.for_language("en"))


def test_usage_lists_every_sub_command_with_placeholders_escaped() -> None:
    """The usage names every sub-command, the French words and an example, and has no raw `<`."""
    assert "`/credit add &lt;sub-account&gt; &lt;amount&gt; [reason]`" in USAGE
    assert "`/credit remove &lt;sub-account&gt; &lt;amount&gt; [reason]`" in USAGE
    for command in ("balance [sub-account]", "history [sub-account]", "help"):
        assert f"`/credit {command}`" in USAGE
    for word in ("ajouter", "retirer", "solde", "historique", "aide"):
        assert f"`{word}`" in USAGE
    assert "Example: `/credit add" in USAGE
    assert "<" not in USAGE
    assert ">" not in USAGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("balance", BalanceCommand()),
        ("SOLDE", BalanceCommand()),
        ("balance sub-42", BalanceCommand("sub-42")),
        ("solde ana@example.com", BalanceCommand("ana@example.com")),
        ("history", HistoryCommand()),
        ("Historique", HistoryCommand()),
        ("history sub-42", HistoryCommand("sub-42")),
        ("historique Ana@Example.com", HistoryCommand("Ana@Example.com")),
    ],
)
def test_balance_and_history_take_an_optional_sub_account(text: str, expected: object) -> None:
    """`balance`/`solde` and `history`/`historique` parse with or without a sub-account."""
    assert parse_command(text, max_amount=MAX) == expected


def test_a_sub_account_says_whether_it_is_an_e_mail() -> None:
    """`by_email` tells a token from an e-mail address, which is kept exactly as typed."""
    by_token = parse_command("add sub-42 1", max_amount=MAX)
    by_email = parse_command("add Ana@Example.COM 1", max_amount=MAX)
    assert isinstance(by_token, CreditCommand) and isinstance(by_email, CreditCommand)
    assert not by_token.by_email
    assert by_email.by_email and by_email.subaccount == "Ana@Example.COM"
    assert BalanceCommand("a@b.fr").by_email and not BalanceCommand().by_email
    assert HistoryCommand("a@b.fr").by_email and not HistoryCommand("tok").by_email
    assert parse_subaccount("a.b+c@mail.example.fr") == "a.b+c@mail.example.fr"


def test_a_reason_is_required_only_when_the_setting_says_so() -> None:
    """With require_reason a command without a reason is refused; with one, it passes."""
    with pytest.raises(UsageError, match="reason after the amount is required"):
        parse_command("add tok 10", max_amount=MAX, require_reason=True)
    with pytest.raises(UsageError, match="reason after the amount is required"):
        parse_command("add tok 10   \n ", max_amount=MAX, require_reason=True)
    parsed = parse_command("add tok 10 rent", max_amount=MAX, require_reason=True)
    assert isinstance(parsed, CreditCommand) and parsed.reason == "rent"
    assert parse_command("add tok 10", max_amount=MAX) == CreditCommand(
        Action.ADD, "tok", Decimal("10.00"), None
    )


def test_a_reason_of_exactly_200_characters_is_kept_whole() -> None:
    """The limit is inclusive, counted after trimming, and markup is kept for the builder."""
    reason = "<!channel> *x* " + "y" * (REASON_MAX_LENGTH - 15)
    parsed = parse_command(f"add tok 1   {reason}   ", max_amount=MAX)
    assert isinstance(parsed, CreditCommand)
    assert parsed.reason == reason and len(reason) == REASON_MAX_LENGTH


@pytest.mark.parametrize(
    "text",
    [
        "add <!channel> 10",
        "add tok 10 " + "<!channel>" * 30,
        "add tok 10 a\x00<@U123>",
        "solde <@U123>",
        "add <!here>@x.com 10",
    ],
)
def test_refusals_never_quote_what_was_typed(text: str) -> None:
    """A refusal's sentence contains none of the user's words, so it can ping nobody."""
    with pytest.raises(UsageError) as caught:
        parse_command(text, max_amount=MAX)
    for word in text.split()[1:]:
        assert word not in caught.value.message
    assert "<" not in caught.value.message


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
        assert parsed.as_tuple().exponent == -2


def _check_outcome(text: str) -> None:
    try:
        result = parse_command(text, max_amount=MAX)
    except UsageError as error:
        assert error.message
        return
    if isinstance(result, CreditCommand):
        assert Decimal(0) < result.amount <= MAX
        assert result.amount.as_tuple().exponent == -2
        assert TOKEN_PATTERN.fullmatch(result.subaccount) or EMAIL_PATTERN.fullmatch(
            result.subaccount
        )
        assert result.reason is None or 1 <= len(result.reason) <= REASON_MAX_LENGTH


@given(st.text())
def test_any_text_gives_a_command_or_a_usage_error(text: str) -> None:
    """Arbitrary unicode, control characters and NUL only ever raise UsageError."""
    _check_outcome(text)


near_miss_word = st.one_of(
    st.sampled_from(
        ["add", "remove", "ADD", "ajouter", "solde", "history", "help", "10", "10,50", "0", "1e3"]
    ),
    st.sampled_from(["-1", "NaN", "000", "a@b.fr", "A@B", "@", "x@y.z"]),
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
    expected = CreditCommand(Action.ADD, token, Decimal("1.00"))
    assert parse_command(f"add {token} 1", max_amount=MAX) == expected
