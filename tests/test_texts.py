"""The message catalogues (bot/texts): complete in both languages, strict, and money exact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
import threading
from decimal import Decimal

import pytest

from bot.domain import Action, CreditRequest, Status
from bot.flow import commands
from bot.flow.policy import Policy
from bot.slack import blocks
from bot.smspartner.client import ERROR_TEXTS
from bot.texts import (
    CatalogueError,
    Texts,
    UnknownLanguageError,
    UnknownMessageError,
    catalogue,
    foreign_phrases,
    languages,
)
from bot.texts.catalogue import load_catalogues, placeholders

EN = Texts.for_language("en")
FR = Texts.for_language("fr")
NBSP = "\u00a0"
NNBSP = "\u202f"

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
REQUEST = CreditRequest(
    id="cr_0123456789abcdef",
    action=Action.ADD,
    subaccount_token="sub-42",
    amount=Decimal("10.50"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UASKER",
    channel_id="C1",
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
)

HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def po(**messages: str) -> str:
    """A minimal .po text; keyword `a__b` is the id `a.b`."""
    entries = "".join(
        f'msgid "{key.replace("__", ".")}"\nmsgstr "{text}"\n\n' for key, text in messages.items()
    )
    return HEADER + entries


def sample(texts: Texts, message_id: str) -> str:
    """`message_id` rendered with a recognisable value for each placeholder."""
    return texts(message_id, **{name: f"[{name}]" for name in texts.expected[message_id]})


# -- the catalogues shipped ---------------------------------------------------------------


def test_english_and_french_are_the_languages():
    assert languages() == {"en", "fr"}


def test_both_catalogues_have_every_id_with_the_same_placeholders():
    assert EN.messages.keys() == FR.messages.keys()
    for message_id, english in EN.messages.items():
        assert placeholders(FR.messages[message_id]) == placeholders(english), message_id


def test_the_catalogues_are_not_trivially_small():
    """Every text of today's app plus the SPEC's coming ones: well over a hundred messages."""
    assert len(EN.messages) >= 150


def test_every_french_message_differs_from_the_english_unless_it_is_only_values():
    """A copied English text in fr.po is an untranslated message."""
    same = [
        message_id
        for message_id, english in EN.messages.items()
        if FR.messages[message_id] == english and re.search(r"[A-Za-z]{3}", _literal(english))
    ]
    assert same == []


def test_french_punctuation_has_a_no_break_space_before_it():
    """`Montant :` never wraps its colon onto the next line; ; ? ! take a narrow one."""
    for message_id, text in FR.messages.items():
        literal = _literal(text)
        assert not re.search(r" [:;?!](\s|$)", literal), message_id
        assert not re.search(r"[^\s\u00a0\u202f][;?!](\s|$)", literal), message_id


def test_french_usage_names_the_french_sub_commands():
    usage = blocks.usage(FR)
    for word in ("ajouter", "retirer", "solde", "historique", "aide"):
        assert f"/credit {word}" in usage


def test_slack_date_pattern_keeps_slacks_braces():
    assert EN("date.pattern") == "{date_short_pretty} at {time}"
    assert FR("date.pattern") == "{date_short_pretty} à {time}"


# -- English kept exactly as today's code writes it -------------------------------------------


def test_english_error_texts_are_the_clients_table():
    for code, text in ERROR_TEXTS.items():
        assert EN(f"smspartner.error.{code}") == text


def test_english_refusals_are_the_policys():
    policy = Policy(approvers=frozenset({"UAPPROVER"}), requesters=frozenset({"UASKER"}))
    in_channel = Policy(channels=frozenset({"C1"}))
    alone = Policy()
    refusals = {
        "refusal.not_a_requester": policy.refuse_request(user_id="UOTHER", channel_id="C1"),
        "refusal.channel": in_channel.refuse_request(user_id="U1", channel_id="C2"),
        "refusal.not_an_approver": policy.refuse_approval(user_id="UOTHER", request=REQUEST),
        "refusal.own_request": Policy(approvers=frozenset({"UASKER"})).refuse_approval(
            user_id="UASKER", request=REQUEST
        ),
        "refusal.only_requester_confirms": alone.refuse_approval(user_id="U2", request=REQUEST),
        "refusal.cancel_not_allowed": policy.refuse_cancel(user_id="UOTHER", request=REQUEST),
    }
    for message_id, refusal in refusals.items():
        assert refusal is not None and refusal.id == message_id
        assert EN.say(refusal) == EN(message_id)


def test_english_card_texts_are_the_builders():
    card = blocks.build_confirmation(REQUEST, texts=EN)
    request = EN("request.add", amount="10.50 EUR", token="`sub-42`")
    assert card["blocks"][0]["text"]["text"] == EN(
        "card.confirm.asks", requester="<@UASKER>", request=request
    )
    assert card["text"] == EN("card.confirm.fallback", request=request)
    expired = blocks.build_outcome(dataclasses.replace(REQUEST, status=Status.EXPIRED), texts=EN)
    assert expired["text"] == EN(
        "card.expired",
        request=request,
        expires=blocks.slack_date(EN, REQUEST.expires_at),
        command="/credit",
    )


def test_every_request_state_has_a_name():
    for status in Status:
        assert EN(f"status.{status.value}") == status.value
        assert FR(f"status.{status.value}") != status.value


@pytest.mark.parametrize(
    ("typed", "message_id"),
    [
        ("add x -1", "usage.error.amount_negative"),
        ("add x 1e3", "usage.error.amount_exponent"),
        ("add x 1,000.50", "usage.error.amount_thousands"),
        ("add x 0.001", "usage.error.amount_decimals"),
        ("send x 1", "usage.error.unknown_action"),
        ("add x 1 000", "usage.error.amount_with_spaces"),
    ],
)
def test_english_usage_errors_are_the_parsers(typed, message_id):
    with pytest.raises(commands.UsageError) as raised:
        commands.parse_command(typed, max_amount=Decimal(1000))
    assert raised.value.message == EN(message_id)


def test_english_maximum_message_matches_the_parser_with_format_balance():
    with pytest.raises(commands.UsageError) as raised:
        commands.parse_command("add x 5000", max_amount=Decimal(1000))
    maximum = EN.format_balance(Decimal(1000), "EUR")
    assert raised.value.message == EN("usage.error.amount_above_maximum", maximum=maximum)


# -- the API --------------------------------------------------------------------------------


def test_a_message_gets_its_values():
    assert EN("card.footer", request_id="cr_1") == "Request `cr_1`"
    assert FR("card.footer", request_id="cr_1") == "Demande `cr_1`"


def test_an_unknown_id_raises_and_never_falls_back():
    with pytest.raises(UnknownMessageError, match=r"card\.nope"):
        FR("card.nope")


def test_an_unknown_language_raises():
    with pytest.raises(UnknownLanguageError, match="de"):
        Texts.for_language("de")


def test_a_value_is_put_in_once_never_read_as_a_template():
    assert EN("card.footer", request_id="{request_id}") == "Request `{request_id}`"


def test_a_language_cldr_does_not_know_stops_the_load():
    with pytest.raises(CatalogueError, match="not a language"):
        load_catalogues({"en": po(a__b="Hi"), "xx_nowhere": po(a__b="Hi")})


def test_a_missing_or_unexpected_value_raises():
    with pytest.raises(TypeError, match="missing request_id"):
        EN("card.footer")
    with pytest.raises(TypeError, match="unexpected colour"):
        EN("card.footer", request_id="cr_1", colour="red")


def test_values_go_in_as_given_callers_escape():
    """The catalogue is markup; escaping user text is the caller's job, never done twice."""
    assert EN("card.footer", request_id="<!channel> &amp;") == "Request `<!channel> &amp;`"


def test_the_texts_are_loaded_once_for_all_threads(monkeypatch):
    loads = []
    real_load = catalogue.load_catalogues

    def counting_load(sources):
        loads.append(1)
        return real_load(sources)

    monkeypatch.setattr(catalogue, "_loaded", {})
    monkeypatch.setattr(catalogue, "load_catalogues", counting_load)
    start = threading.Barrier(8)
    seen: list[Texts] = []

    def first_call() -> None:
        start.wait()
        seen.append(Texts.for_language("fr"))

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len({id(texts) for texts in seen}) == 1


def test_lists_are_joined_by_the_languages_words():
    assert EN.format_list(["<@A>", "<@B>", "<@C>"], joined_by="or") == "<@A>, <@B>, or <@C>"
    assert FR.format_list(["<@A>", "<@B>", "<@C>"], joined_by="or") == "<@A>, <@B> ou <@C>"
    assert FR.format_list(["<@A>", "<@B>"], joined_by="and") == "<@A> et <@B>"


# -- load-time checks ------------------------------------------------------------------------


def test_catalogues_that_agree_load():
    loaded = load_catalogues({"en": po(a__b="Hi {name}"), "fr": po(a__b="Salut {name}")})
    assert loaded["fr"]("a.b", name="Ana") == "Salut Ana"


@pytest.mark.parametrize(
    ("french", "complaint"),
    [
        (po(), "missing \\['a.b'\\]"),
        (po(a__b="Salut {name}", a__c="En plus"), "only in fr.po \\['a.c'\\]"),
        (po(a__b="Salut {nom}"), "placeholders \\['nom'\\]"),
        (po(a__b="Salut"), "placeholders \\[\\]"),
        (po(a__b="Salut {name.__class__}"), "not a plain"),
        (po(a__b="Salut {name!r}"), "not a plain"),
        (po(a__b="Salut {name:>10}"), "not a plain"),
        (po(a__b=""), "no text"),
        (po(a__b="Salut {name}") + 'msgid "a.b"\nmsgstr "Encore {name}"\n', "twice"),
        (HEADER + '#, fuzzy\nmsgid "a.b"\nmsgstr "Salut {name}"\n', "fuzzy"),
        (HEADER + 'msgid "Hello {name}"\nmsgstr "Salut {name}"\n', "dotted lower-case"),
        (
            HEADER + 'msgid "a.b"\nmsgid_plural "a.b"\nmsgstr[0] "x {name}"\nmsgstr[1] "y"\n',
            "plural",
        ),
    ],
)
def test_a_catalogue_that_disagrees_stops_the_load(french, complaint):
    with pytest.raises(CatalogueError, match=complaint):
        load_catalogues({"en": po(a__b="Hi {name}"), "fr": french})


def test_there_must_be_an_english_reference():
    with pytest.raises(CatalogueError, match=r"en\.po"):
        load_catalogues({"fr": po(a__b="Salut")})


# -- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "english", "french"),
    [
        ("10.5", "10.50 EUR", f"10,50{NBSP}EUR"),
        ("10", "10.00 EUR", f"10,00{NBSP}EUR"),
        ("0.01", "0.01 EUR", f"0,01{NBSP}EUR"),
        ("999.99", "999.99 EUR", f"999,99{NBSP}EUR"),
        ("1000", "1000.00 EUR", f"1{NNBSP}000,00{NBSP}EUR"),
        ("1234567.89", "1234567.89 EUR", f"1{NNBSP}234{NNBSP}567,89{NBSP}EUR"),
        # An amount is never rounded: more than cents are shown, not hidden.
        ("10.005", "10.005 EUR", f"10,005{NBSP}EUR"),
    ],
)
def test_amounts_have_cents_in_each_languages_digits(amount, english, french):
    assert EN.format_amount(Decimal(amount), "EUR") == english
    assert FR.format_amount(Decimal(amount), "EUR") == french


@pytest.mark.parametrize(
    ("balance", "english", "french"),
    [
        ("10225.119", "10225.119 EUR", f"10{NNBSP}225,119{NBSP}EUR"),
        ("0.800", "0.800 EUR", f"0,800{NBSP}EUR"),
        ("2869.200", "2869.200 EUR", f"2{NNBSP}869,200{NBSP}EUR"),
        ("61.8", "61.8 EUR", f"61,8{NBSP}EUR"),
        ("0", "0 EUR", f"0{NBSP}EUR"),
        ("1000", "1000 EUR", f"1{NNBSP}000{NBSP}EUR"),
        ("123456789.123", "123456789.123 EUR", f"123{NNBSP}456{NNBSP}789,123{NBSP}EUR"),
        ("0.001", "0.001 EUR", f"0,001{NBSP}EUR"),
        ("-12.500", "-12.500 EUR", f"-12,500{NBSP}EUR"),
        ("1E+3", "1000 EUR", f"1{NNBSP}000{NBSP}EUR"),
    ],
)
def test_balances_keep_every_digit_sms_partner_sent(balance, english, french):
    assert EN.format_balance(Decimal(balance), "EUR") == english
    assert FR.format_balance(Decimal(balance), "EUR") == french


def test_an_unknown_balance_is_said_in_the_language():
    assert EN.format_balance(None, "EUR") == "unknown"
    assert FR.format_balance(None, "EUR") == "inconnu"


@pytest.mark.parametrize("bad", [10.5, 10, "10.50"])
def test_money_that_is_not_a_decimal_is_refused(bad):
    with pytest.raises(TypeError, match=r"decimal\.Decimal"):
        FR.format_amount(bad, "EUR")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_money_that_is_not_finite_is_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        EN.format_balance(Decimal(bad), "EUR")


# -- English left in French ------------------------------------------------------------------


def test_no_french_message_contains_an_english_phrase():
    leaks = {
        message_id: found
        for message_id in FR.messages
        if (found := foreign_phrases(sample(FR, message_id), language="fr"))
    }
    assert leaks == {}


def test_an_english_sentence_in_a_french_card_is_found():
    card = FR("card.failed", request="[demande]", reason=EN("smspartner.error.8"))
    assert foreign_phrases(card, language="fr") == ["Insufficient credit for this transfer"]


def test_english_messages_rendered_in_a_french_card_are_found():
    """Nearly every English message carries a phrase or is a label; the rest wrap one that is."""
    caught = [m for m in EN.messages if foreign_phrases(sample(EN, m), language="fr")]
    assert len(caught) >= len(EN.messages) * 85 // 100


def test_an_english_label_is_found_as_a_whole_word_only():
    assert foreign_phrases("*Requested by*\n<@U1>", language="fr") == ["Requested by"]
    assert foreign_phrases("Statut : pending", language="fr") == ["pending"]
    assert foreign_phrases("Confirmer", language="fr") == []


@pytest.mark.parametrize("status", list(Status))
def test_every_english_card_of_today_is_caught_as_english(status):
    request = dataclasses.replace(
        REQUEST,
        status=status,
        approver_id="UAPPROVER",
        main_balance=Decimal("2869.200"),
        subaccount_balance=Decimal("61.8"),
    )
    card = blocks.build_card(request, texts=EN)
    assert foreign_phrases(card["text"], language="fr") != []


def _literal(text: str) -> str:
    """The prose of a message: placeholders, emoji codes, entities and code spans left out."""
    fixed = "".join(literal for literal, *_ in string.Formatter().parse(text))
    return re.sub(r":[a-z_]+:|&[a-z]+;|`[^`]*`", "", fixed)
