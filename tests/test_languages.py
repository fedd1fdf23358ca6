"""Every card state and every answer, drawn in each language: every id exists in both
catalogues, and nothing English is left in what a French team reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Action, CreditRequest, Status
from bot.flow import reasons
from bot.flow.commands import UsageError, parse_command
from bot.flow.policy import CanApprove, Policy
from bot.slack import answers
from bot.slack.blocks import build_card, build_usage, say
from bot.slack.home import build_home
from bot.slack.listeners.actions import describe_handled
from bot.slack.reminders import reminder_text
from bot.smspartner.accounts import MainAccount, Subaccount
from bot.smspartner.errors import ERROR_TEXTS, APIError
from bot.texts import Texts, Wording, foreign_phrases
from tests.test_cli import ENV, _run

EN = Texts.for_language("en")
FR = Texts.for_language("fr")
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
PENDING = CreditRequest(
    id="cr_AAAAAAAAAAAAAAAAAAAAAA",
    action=Action.ADD,
    subaccount_token="sub-42",
    amount=Decimal("10225.50"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UREQ",
    channel_id="CFIN",
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
    reason="Campagne de mars",
    subaccount_email="paris@example.com",
    subaccount_balance_before=Decimal("61.800"),
    main_balance_before=Decimal("12869.200"),
    balances_seen_at=NOW,
)
APPROVED = dataclasses.replace(PENDING, approver_id="UAPP")
CAN_APPROVE = CanApprove(user_ids=("UAPP", "UBOB"), group_ids=("SFIN",))
VENDOR = "Crédit insuffisant"


def _cards() -> Iterator[tuple[str, CreditRequest]]:
    """Every state a card can show, with the variants each state has."""
    yield "pending", PENDING
    yield "pending, remove", dataclasses.replace(PENDING, action=Action.REMOVE)
    yield (
        "pending, balances unread",
        dataclasses.replace(PENDING, subaccount_balance_before=None, main_balance_before=None),
    )
    yield "pending, needs two", dataclasses.replace(PENDING, approvals_needed=2)
    yield (
        "pending, 1 of 2",
        dataclasses.replace(PENDING, approvals_needed=2, first_approver_id="UAPP"),
    )
    yield "sending", dataclasses.replace(APPROVED, status=Status.EXECUTING)
    succeeded = dataclasses.replace(
        APPROVED,
        status=Status.SUCCEEDED,
        subaccount_balance=Decimal("10287.300"),
        main_balance=Decimal("2643.700"),
    )
    yield "succeeded", succeeded
    yield "succeeded, remove", dataclasses.replace(succeeded, action=Action.REMOVE)
    yield (
        "succeeded, settled by hand",
        dataclasses.replace(APPROVED, status=Status.SUCCEEDED, resolver_id="UAPP2"),
    )
    failed = dataclasses.replace(APPROVED, status=Status.FAILED)
    for code in [*sorted(ERROR_TEXTS), 42]:
        error = APIError(code, VENDOR)
        yield (
            f"failed, SMS Partner {code}",
            dataclasses.replace(failed, error_code=code, error_message=error.user_message),
        )
    for reason_id, values in _stored_reasons():
        yield (
            f"failed, {reason_id}",
            dataclasses.replace(failed, error_message=reasons.english(reason_id, **values)),
        )
        yield (
            f"unknown, {reason_id}",
            dataclasses.replace(
                APPROVED, status=Status.UNKNOWN, error_message=reasons.english(reason_id, **values)
            ),
        )
    yield "failed, no reason", failed
    yield "failed, settled by hand", dataclasses.replace(failed, resolver_id="UAPP2")
    yield "unknown, no reason", dataclasses.replace(APPROVED, status=Status.UNKNOWN)
    yield "cancelled", dataclasses.replace(PENDING, status=Status.CANCELLED, canceller_id="UREQ")
    yield (
        "cancelled by the app",
        dataclasses.replace(
            PENDING,
            status=Status.CANCELLED,
            error_message=reasons.english(reasons.CARD_NEVER_POSTED),
        ),
    )
    yield "expired", dataclasses.replace(PENDING, status=Status.EXPIRED)


def _stored_reasons() -> Iterator[tuple[str, dict[str, str]]]:
    yield reasons.NOT_REACHED, {}
    yield reasons.BAD_ANSWER, {"detail": "HTTP 500"}
    yield reasons.BOT_FAILED, {}
    yield reasons.NOT_STARTED, {}
    yield reasons.REPLICA_STOPPED, {}
    yield reasons.NOT_RECORDED, {"seconds": "30"}
    yield reasons.NO_ANSWER, {"limit": "10 s"}
    yield reasons.CONNECTION_CUT, {}
    yield reasons.ANSWER_UNREADABLE, {}
    yield reasons.SUCCESS_UNREADABLE, {"fields": "credit"}
    yield reasons.DAILY_LIMIT, {"left": "40.00 EUR", "limit": "100.00 EUR"}


CARDS = dict(_cards())
MAIN = MainAccount(
    balance=Decimal("10225.119"), currency="EUR", username="u", first_name="A", last_name="B"
)
SUB = Subaccount(
    token="sub-42",
    email="paris@example.com",
    id="1",
    type="sub",
    created_at="",
    balance=Decimal("61.800"),
    currency="EUR",
)
HISTORY = [request for name, request in CARDS.items() if "SMS Partner" not in name]


def _answers(texts: Texts) -> Iterator[tuple[str, Any]]:
    """Every private answer and notice, drawn in `texts`' language."""
    yield "not found", answers.build_not_found(texts, "sub-4", ["sub-42", "sub-43"])
    yield "not found, nothing close", answers.build_not_found(texts, "zzz", [])
    for action in Action:
        yield (
            f"insufficient, {action.value}",
            answers.build_insufficient(texts, action, Decimal("3.200"), "EUR", Decimal("10.00")),
        )
    yield "cannot resolve", answers.build_cannot_resolve(texts, "paris@example.com")
    yield "balance of one", answers.build_balance_of(texts, MAIN, SUB)
    yield "balance of one, main unread", answers.build_balance_of(texts, None, SUB)
    yield "balances", answers.build_balances(texts, MAIN, [SUB] * 31)
    yield "balances, none", answers.build_balances(texts, MAIN, [])
    yield "balances, list unread", answers.build_balances(texts, MAIN, None)
    yield "unreadable", answers.build_unreadable(texts)
    yield "history", answers.build_history(texts, HISTORY, None)
    yield "history of one", answers.build_history(texts, HISTORY, "sub-42")
    yield "history, empty", answers.build_history(texts, [], None)
    yield "history of one, empty", answers.build_history(texts, [], "sub-42")
    yield "balances now", answers.build_balances_now(texts, APPROVED, Decimal("61.800"), None)
    yield (
        "balances now, none seen",
        answers.build_balances_now(
            texts, dataclasses.replace(APPROVED, balances_seen_at=None), None, Decimal("1")
        ),
    )
    yield "help", build_usage(texts)
    for status in Status:
        handled = dataclasses.replace(APPROVED, status=status)
        yield f"handled, {status.value}", describe_handled(texts, handled)
    yield (
        "handled, closed by the app",
        describe_handled(texts, dataclasses.replace(PENDING, status=Status.CANCELLED)),
    )
    for waiting in (PENDING, dataclasses.replace(PENDING, first_approver_id="UAPP")):
        yield "reminder", reminder_text(texts, waiting, CAN_APPROVE)
    yield (
        "home",
        build_home(
            texts=texts,
            waiting=[PENDING, dataclasses.replace(PENDING, first_approver_id="UAPP")],
            mine=list(CARDS.values())[:8],
            main_balance=Decimal("10225.119"),
            currency="EUR",
            notice=texts("home.database_away"),
        ),
    )
    yield (
        "home, empty",
        build_home(texts=texts, waiting=[], mine=[], main_balance=None, currency="EUR"),
    )
    for typed in USAGE_ERRORS:
        with pytest.raises(UsageError) as refused:
            parse_command(typed, max_amount=Decimal("1000"), require_reason=True)
        yield f"usage error, {typed!r}", build_usage(texts, refused.value.wording)
    for refusal in _refusals():
        yield f"refusal, {refusal.id}", build_usage(texts, refusal)
    for message_id in NOTICES:
        yield message_id, texts(message_id, **{n: "`x`" for n in texts.expected[message_id]})


# One input per parser error: each message is drawn from a real refusal.
USAGE_ERRORS = [
    "send x 1",
    "balance a b",
    "add",
    "add 10",
    "add sub-1",
    "add 10 sub-1",
    "add sub-1 1 000 campaign",
    "add " + "a" * 129 + " 10",
    "add sub/1 10",
    "add " + "a" * 250 + "@example.com 10",
    "add a@b@c 10",
    "add sub-1 10",
    "add sub-1 10 " + "x" * 201,
    "add sub-1 10 a\x07b",
    "add sub-1 10 a\ud800b",
    "add sub-1 " + "1" * 20,
    "add sub-1 ١٠",
    "add sub-1 -5",
    "add sub-1 +5",
    "add sub-1 NaN",
    "add sub-1 1e3",
    "add sub-1 1,000.50",
    "add sub-1 .5",
    "add sub-1 1x",
    "add sub-1 10.555",
    "add sub-1 0",
    "add sub-1 1000.01",
]
NOTICES = [
    "click.malformed",
    "command.no_user_or_channel",
    "command.not_in_channel",
    "command.card_refused",
    "command.duplicate",
    "command.daily_limit",
    "notice.database_away.command",
    "notice.database_away.history",
    "notice.database_away.click",
    "notice.database_away.settle",
    "notice.card_unposted",
]


def _refusals() -> Iterator[Wording]:
    """Every refusal the policy and the flow give, as they give it."""
    policy = Policy(approvers=frozenset({"UAPP"}), requesters=frozenset({"UREQ"}))
    refused = [
        policy.refuse_request(user_id="UOTHER", channel_id="C1"),
        Policy(channels=frozenset({"C1"})).refuse_request(user_id="U1", channel_id="C2"),
        policy.refuse_approval(user_id="UOTHER", request=PENDING),
        policy.refuse_approval(user_id="UAPP", request=PENDING, first_approver_id="UAPP"),
        Policy(approvers=frozenset({"UREQ"})).refuse_approval(user_id="UREQ", request=PENDING),
        Policy().refuse_approval(user_id="U2", request=PENDING),
        policy.refuse_cancel(user_id="UOTHER", request=PENDING),
    ]
    yield from (wording for wording in refused if wording is not None)
    for message_id in (
        "refusal.cannot_check_requesters",
        "refusal.cannot_check_approvers",
        "refusal.restarting",
        "refusal.no_such_request",
        "refusal.check_not_allowed",
        "refusal.settle_requester_only",
        "refusal.settle_approver_only",
    ):
        yield Wording.of(message_id)
    yield Wording.of("refusal.settled_by_hand", status=Wording.of("status.succeeded"))
    yield Wording.of("refusal.nothing_to_settle", status=Wording.of("status.failed"))


def _text(message: Any) -> str:
    return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)


@pytest.mark.parametrize("name", list(CARDS))
def test_a_french_card_has_no_english_in_it(name: str) -> None:
    card = build_card(CARDS[name], texts=FR, can_approve=CAN_APPROVE)
    assert foreign_phrases(_text(card), language="fr") == []


@pytest.mark.parametrize("name", list(CARDS))
def test_an_english_card_is_caught_as_english(name: str) -> None:
    """The check above would see English: the same card in English is full of it."""
    card = build_card(CARDS[name], texts=EN, can_approve=CAN_APPROVE)
    assert foreign_phrases(_text(card), language="fr") != []


def test_no_french_answer_has_english_in_it() -> None:
    leaks = {
        name: found
        for name, message in _answers(FR)
        if (found := foreign_phrases(_text(message), language="fr"))
    }
    assert leaks == {}


def test_every_english_answer_is_caught_as_english() -> None:
    missed = [
        name for name, message in _answers(EN) if not foreign_phrases(_text(message), language="fr")
    ]
    assert missed == []


def test_a_french_failure_shows_sms_partners_own_message_as_it_came() -> None:
    card = _text(build_card(CARDS["failed, SMS Partner 8"], texts=FR))
    assert "Crédit insuffisant pour ce transfert." in card
    assert f"(SMS Partner\u00a0: «\u00a0{VENDOR}\u00a0»)" in card


def test_french_amounts_and_balances_are_exact_in_french_digits() -> None:
    card = _text(build_card(CARDS["succeeded"], texts=FR))
    assert "10\u202f225,50\u00a0EUR" in card
    assert "10\u202f287,300\u00a0EUR (avant\u00a0: 61,800\u00a0EUR)" in card


def test_a_stored_reason_reads_back_to_its_id_and_values() -> None:
    for reason_id, values in _stored_reasons():
        wording = reasons.wording_of(reasons.english(reason_id, **values))
        assert wording is not None and wording.id == reason_id
        assert EN.say(wording) == reasons.english(reason_id, **values)


def test_an_unknown_stored_text_is_no_reason() -> None:
    assert reasons.wording_of("something else entirely") is None


def test_the_daily_limit_reason_shows_its_amounts_in_the_cards_language() -> None:
    card = _text(build_card(CARDS["failed, reason.daily_limit"], texts=FR))
    assert "il reste 40,00\u00a0EUR sur la limite quotidienne de 100,00\u00a0EUR" in card


def test_a_french_flow_value_is_escaped_for_slack() -> None:
    refusal = Wording.of("usage.error.too_many_words", verb="<!channel>")
    assert "<!channel>" not in say(FR, refusal)


# -- every id exists ---------------------------------------------------------------------

_LITERAL_ID = re.compile(
    r"""(?:texts|Wording\.of|english)\(\s*(?:reasons\.\w+|"([a-z0-9_]+(?:\.[a-z0-9_]+)+)")"""
)
_REASON_CONSTANT = re.compile(r'^[A-Z_]+ = "(reason\.[a-z_]+)"$', re.MULTILINE)


def test_every_id_the_code_names_is_in_both_catalogues() -> None:
    """Literal ids in bot/, the reasons, and the ids built from a status or an error code."""
    source = "\n".join(p.read_text() for p in Path("bot").rglob("*.py"))
    named = {m for m in _LITERAL_ID.findall(source) if m}
    named |= set(_REASON_CONSTANT.findall(source))
    named |= {f"status.{s.value}" for s in Status}
    named |= {f"handled.{s.value}" for s in Status}
    named |= {f"smspartner.error.{code}" for code in ERROR_TEXTS}
    assert len(named) > 150
    for texts in (EN, FR):
        assert sorted(named - texts.messages.keys()) == []


def test_credit_bot_check_speaks_the_language(tmp_path: Path) -> None:
    """`credit-bot check --offline` with CREDIT_LANGUAGE=fr: each line from the catalogue."""
    database_url = f"sqlite:///{tmp_path / 'c.db'}"
    result = _run(
        ["check", "--offline"], tmp_path, **ENV, DATABASE_URL=database_url, CREDIT_LANGUAGE="fr"
    )
    assert result.returncode == 0, result.stderr
    settings, database = result.stdout.strip().splitlines()
    assert settings.startswith("settings\u00a0: ok (mode Socket Mode, API Slack ")
    assert database.startswith("database\u00a0: ok (schéma en version ")
    assert foreign_phrases(result.stdout, language="fr") == []


def test_the_sweepers_stored_reason_reads_back_to_its_id() -> None:
    """bot/flow/sweeper.py writes its reason in English itself: it must stay the catalogue's."""
    source = Path("bot/flow/sweeper.py").read_text()
    written = re.findall(r'reason="([^"]+)"', source)
    assert written
    for text in written:
        assert reasons.wording_of(text) is not None, text
