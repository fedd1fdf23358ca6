"""End to end, the read side (SPEC.md §2.2, §2.1, §2.4): the look-up before the card, the
balances on it, `/credit balance`, `/credit history`, and the unknown card's three buttons.

The real app in HTTP mode against the loopback fakes; approvers UAPP and UAPP2, requester UREQ.
Run once per language (CREDIT_LANGUAGE=en, then fr, with fakes of its own): answers are compared
with the catalogue's texts in that language.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot import audit
from bot.domain import Status
from bot.slack.blocks import (
    CANCEL_ACTION_ID,
    CHECK_BALANCE_ACTION_ID,
    CONFIRM_ACTION_ID,
    RESOLVE_DONE_ACTION_ID,
    RESOLVE_NOT_DONE_ACTION_ID,
)
from bot.store import Store
from bot.texts import Texts
from tests.e2e import (
    API_KEY,
    AppProcess,
    app_env,
    card_now,
    card_posted,
    ephemeral_to,
    lead,
    open_request,
    request_id_of,
    shown,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender

TOKEN_POOL = 40  # with the two named ones, more than a balance answer lists
PARIS = "shop-paris"
PARIS_EMAIL = "Paris.Shop@Example.com"
LYON = "shop-lyon"  # 0.800 EUR: the lowest balance of the module


@pytest.fixture(scope="module")
def smspartner(language: str) -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("900.000")) as fake:
        fake.add_subaccount(PARIS, Decimal("12.345"), email=PARIS_EMAIL)
        fake.add_subaccount(LYON, Decimal("0.800"), email="lyon@example.com")
        yield fake


@pytest.fixture(scope="module")
def _fresh_tokens(smspartner: FakeSMSPartner) -> Iterator[str]:
    """Sub-accounts made before the app first reads the list (it re-reads at most every 5 s)."""
    names = [f"rd-{secrets.token_hex(4)}" for _ in range(TOKEN_POOL)]
    for name in names:
        smspartner.add_subaccount(name, Decimal("100.000"))
    return iter(names)


@pytest.fixture
def token(_fresh_tokens: Iterator[str]) -> str:
    return next(_fresh_tokens)


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory, language: str) -> Path:
    return tmp_path_factory.mktemp(f"reads-{language}") / "credit_bot.db"


@pytest.fixture(autouse=True)
def _clean_fakes(smspartner: FakeSMSPartner) -> None:
    smspartner.reset()


def _answer(sender: SlackSender, slack: FakeSlack, text: str, *, user: str = "UREQ") -> str:
    """Send a command; return the one private answer that came through its response_url."""
    name = f"answer-{secrets.token_hex(4)}"
    response = sender.command(text, user_id=user, response_url=slack.response_url(name))
    assert response.status_code == 200 and response.text == ""  # acked at once, answer later
    slack.wait_for(lambda fake: bool(ephemeral_to(fake, name)))
    (answer,) = ephemeral_to(slack, name)
    return answer


def _click(sender: SlackSender, slack: FakeSlack, action: str, request_id: str, user: str) -> str:
    name = f"click-{secrets.token_hex(4)}"
    sender.click(action, request_id, user_id=user, response_url=slack.response_url(name))
    slack.wait_for(lambda fake: bool(ephemeral_to(fake, name)))
    return ephemeral_to(slack, name)[0]


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id")
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]


def _balance(texts: Texts, balance: str) -> str:
    """A balance as the app writes it, every digit (JSON-escaped in `shown`'s way)."""
    return shown(texts.format_balance(Decimal(balance), "EUR"))


def _euros(texts: Texts, amount: str) -> str:
    return shown(texts.format_amount(Decimal(amount), "EUR"))


def _requests_about(store: Store, token: str) -> list[Any]:
    return [r for r in store.recent(limit=500) if r.subaccount_token == token]


def test_unknown_token_with_a_close_match_is_refused_before_a_card(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, store: Store, texts: Texts
) -> None:
    """A typo: a private "no sub-account" with the close match; no card, nothing stored or sent."""
    posts = len(slack.calls_to("chat.postMessage"))
    answer = _answer(sender, slack, "add shop-pariss 5")
    assert shown(texts("lookup.not_found", subaccount="`shop-pariss`")) in answer
    assert lead(texts, "lookup.did_you_mean") in answer and f"`{PARIS}`" in answer
    assert len(slack.calls_to("chat.postMessage")) == posts
    assert _requests_about(store, "shop-pariss") == []
    assert smspartner.transfers == []


def test_unknown_token_without_a_close_match_is_refused(
    sender: SlackSender, slack: FakeSlack, store: Store, texts: Texts
) -> None:
    """Nothing like it in the list: the refusal offers no guess; a miss re-read the list first."""
    answer = _answer(sender, slack, "remove qqqqzzzzwwww 5")
    assert shown(texts("lookup.not_found", subaccount="`qqqqzzzzwwww`")) in answer
    assert lead(texts, "lookup.did_you_mean") not in answer
    assert _requests_about(store, "qqqqzzzzwwww") == []


def test_an_email_opens_a_request_for_its_token(
    sender: SlackSender, slack: FakeSlack, store: Store
) -> None:
    """By e-mail in any case: the card and the stored request carry the token and the e-mail."""
    posts = len(slack.calls_to("chat.postMessage"))
    sender.command("add paris.shop@EXAMPLE.com 2")
    slack.wait_for(lambda fake: len(fake.calls_to("chat.postMessage")) > posts)
    card = slack.calls_to("chat.postMessage")[-1].args
    shown = json.dumps(card)
    assert f"`{PARIS}`" in shown and PARIS_EMAIL in shown
    stored = store.get(request_id_of(card))
    assert stored is not None
    assert (stored.subaccount_token, stored.subaccount_email) == (PARIS, PARIS_EMAIL)


def test_an_add_above_the_main_balance_is_refused(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """add more than the main account holds: a refusal showing its balance; nothing stored."""
    answer = _answer(sender, slack, f"add {token} 950")
    refusal = texts(
        "lookup.insufficient.add",
        balance=texts.format_balance(smspartner.main_balance, "EUR"),
        amount=texts.format_amount(Decimal("950"), "EUR"),
    )
    assert shown(refusal) in answer
    assert _requests_about(store, token) == []


def test_a_remove_above_the_subaccount_balance_is_refused(
    sender: SlackSender, slack: FakeSlack, store: Store, texts: Texts
) -> None:
    """remove more than the sub-account holds: a refusal showing its 3-decimal balance."""
    answer = _answer(sender, slack, f"remove {LYON} 1")
    refusal = texts(
        "lookup.insufficient.remove",
        balance=texts.format_balance(Decimal("0.800"), "EUR"),
        amount=texts.format_amount(Decimal("1"), "EUR"),
    )
    assert shown(refusal) in answer
    assert _requests_about(store, LYON) == []


def test_balance_lists_every_subaccount_lowest_first(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, texts: Texts
) -> None:
    """`/credit balance`: the main balance, then e-mail, token and exact balance, lowest first,
    30 at most and then how many more."""
    answer = _answer(sender, slack, "solde")
    main = texts("balance.main", balance=texts.format_balance(smspartner.main_balance, "EUR"))
    assert shown(main) in answer
    lines = json.loads(answer)["blocks"][1]["text"]["text"].splitlines()
    lyon = texts.format_balance(Decimal("0.800"), "EUR")
    paris = texts.format_balance(Decimal("12.345"), "EUR")
    assert lines[1] == f"• lyon@example.com · `{LYON}` · {lyon}"
    assert lines[2] == f"• {PARIS_EMAIL} · `{PARIS}` · {paris}"
    listed = len(smspartner.subaccounts)
    assert len([line for line in lines if line.startswith("•")]) == 30
    assert lines[-1] == texts("balance.list.more", count=listed - 30)


def test_balance_of_one_subaccount_by_email(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, texts: Texts
) -> None:
    """`/credit solde <e-mail>`: the main balance and that sub-account's e-mail and balance."""
    answer = _answer(sender, slack, "solde PARIS.SHOP@example.com")
    main = texts("balance.main", balance=texts.format_balance(smspartner.main_balance, "EUR"))
    assert shown(main) in answer
    balance = texts.format_balance(Decimal("12.345"), "EUR")
    assert (
        shown(texts("balance.subaccount", token=f"`{PARIS}`", email=PARIS_EMAIL, balance=balance))
        in answer
    )


def test_balance_respects_who_may_ask(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path, language: str, texts: Texts
) -> None:
    """With CREDIT_REQUESTERS set, someone else asking for balances is refused in the ack."""
    env = app_env(
        slack=slack,
        smspartner=smspartner,
        database_url=f"sqlite:///{tmp_path / 'policy.db'}",
        CREDIT_REQUESTERS="UREQ",
        CREDIT_LANGUAGE=language,
    )
    process = AppProcess(env=env, workdir=tmp_path).start()
    try:
        body = process.sender(slack).command("balance", user_id="USTRANGER").json()
        assert body["response_type"] == "ephemeral"
        assert texts("refusal.not_a_requester") in body["text"]
        assert smspartner.requests == []
    finally:
        process.stop()


def test_history_shows_a_success_and_a_cancel(
    sender: SlackSender, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """`/credit history <token>`: newest first, when, who, what, who approved, the state."""
    done = open_request(sender, slack, f"add {token} 5")
    sender.click(CONFIRM_ACTION_ID, done, user_id="UAPP")
    card_now(slack, token, lead(texts, "card.succeeded.add"))
    cancelled = open_request(sender, slack, f"remove {token} 3")
    sender.click(CANCEL_ACTION_ID, cancelled, user_id="UREQ")
    card_now(slack, token, lead(texts, "card.cancelled"))
    answer = _answer(sender, slack, f"historique {token}")
    lines = json.loads(answer)["blocks"][1]["text"]["text"].splitlines()
    assert len(lines) == 2
    assert "<!date^" in lines[0] and "<@UREQ>" in lines[0]
    removed = texts(
        "history.remove", amount=texts.format_amount(Decimal("3"), "EUR"), token=f"`{token}`"
    )
    assert removed in lines[0]
    assert texts("history.cancelled_by", canceller="<@UREQ>") in lines[0]
    added = texts(
        "history.add", amount=texts.format_amount(Decimal("5"), "EUR"), token=f"`{token}`"
    )
    assert added in lines[1]
    assert texts("history.approved_by", approvers="<@UAPP>") in lines[1]
    assert f"*{texts('status.succeeded')}*" in lines[1]


def test_unknown_outcome_buttons(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """The unknown card's buttons: a stranger is refused, the requester checks the balances
    (now beside those seen), an approver settles it; the buttons go; nothing is sent again."""
    request_id = open_request(sender, slack, f"add {token} 8")
    smspartner.hang_endpoint("add")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    unknown = card_now(slack, token, lead(texts, "card.unknown"))
    assert _buttons(unknown) == [
        CHECK_BALANCE_ACTION_ID,
        RESOLVE_DONE_ACTION_ID,
        RESOLVE_NOT_DONE_ACTION_ID,
    ]
    smspartner.reset()  # the credit moved at SMS Partner; only its answer was lost

    refused = _click(sender, slack, CHECK_BALANCE_ACTION_ID, request_id, "USTRANGER")
    assert shown(texts("refusal.check_not_allowed")) in refused
    refused = _click(sender, slack, RESOLVE_DONE_ACTION_ID, request_id, "UREQ")
    assert shown(texts("refusal.settle_approver_only")) in refused

    # The directory reads the list at most every 5 s: the balance "now" is at most that old,
    # so the check is clicked again (paced) until a reading after the transfer shows.
    line = texts(
        "check.line.seen",
        name=texts("card.field.subaccount"),
        now="{now}",
        before="{before}",
        seen="{seen}",
    )
    now = shown(line.split("{now}")[0] + texts.format_balance(Decimal("108.000"), "EUR"))
    deadline = time.monotonic() + 15
    note = _click(sender, slack, CHECK_BALANCE_ACTION_ID, request_id, "UREQ")
    while now not in note and time.monotonic() < deadline:
        time.sleep(0.5)
        note = _click(sender, slack, CHECK_BALANCE_ACTION_ID, request_id, "UREQ")
    assert now in note
    before = shown(
        line.split("{seen}")[1].replace("{before}", texts.format_balance(Decimal("100.000"), "EUR"))
    )
    assert before in note

    sender.click(RESOLVE_DONE_ACTION_ID, request_id, user_id="UAPP2")
    settled = card_now(slack, token, lead(texts, "card.settled.done"))
    assert "<@UAPP2>" in json.dumps(settled) and _buttons(settled) == []
    stored = store.get(request_id)
    assert stored is not None
    assert (stored.status, stored.resolver_id) == (Status.SUCCEEDED, "UAPP2")
    trail = "\n".join(audit.trail(store, request_id))
    assert "succeeded\tUAPP2\tresolved by hand: it went through" in trail

    late = _click(sender, slack, RESOLVE_NOT_DONE_ACTION_ID, request_id, "UAPP")
    assert lead(texts, "refusal.settled_by_hand") in late
    assert smspartner.transfers == []  # nothing was sent again


def test_card_shows_the_email_and_both_balances(
    slack: FakeSlack, tmp_path: Path, language: str, texts: Texts
) -> None:
    """A fresh app: the card's e-mail and balances now and after are the fake's, exact; they
    are stored with the request."""
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("10225.119")) as fake:
        fake.add_subaccount("shop-nice", Decimal("0.800"), email="nice@example.com")
        env = app_env(
            slack=slack,
            smspartner=fake,
            database_url=f"sqlite:///{tmp_path / 'c.db'}",
            CREDIT_LANGUAGE=language,
        )
        process = AppProcess(env=env, workdir=tmp_path).start()
        try:
            sender = process.sender(slack)
            already = len(
                [c for c in slack.calls_to("chat.postMessage") if "shop-nice" in json.dumps(c.args)]
            )
            sender.command("add shop-nice 10,50")
            card = json.dumps(card_posted(slack, "shop-nice", already), ensure_ascii=False)
            assert "nice@example.com" in card
            for now, after in (("0.800", "11.300"), ("10225.119", "10214.619")):
                before_after = [texts.format_balance(Decimal(b), "EUR") for b in (now, after)]
                assert " → ".join(before_after) in card
            store = Store.from_url(f"sqlite:///{tmp_path / 'c.db'}")
            stored = store.recent(limit=1)[0]
            store.close()
            assert stored.main_balance_before == Decimal("10225.119")
            assert stored.subaccount_balance_before == Decimal("0.800")
            assert stored.balances_seen_at is not None
        finally:
            process.stop()


def test_directory_down_the_card_says_balances_unavailable(
    slack: FakeSlack, tmp_path: Path, language: str, texts: Texts
) -> None:
    """SMS Partner's reads fail: the card is posted anyway, saying the balances are unavailable."""
    with FakeSMSPartner(api_key=API_KEY) as fake:
        fake.add_subaccount("shop-down", Decimal("5.000"))
        fake.fail_endpoint("subaccount_list", 500, "Erreur interne", http_status=500)
        fake.fail_endpoint("me", 500, "Erreur interne", http_status=500)
        env = app_env(
            slack=slack,
            smspartner=fake,
            database_url=f"sqlite:///{tmp_path / 'd.db'}",
            CREDIT_LANGUAGE=language,
        )
        process = AppProcess(env=env, workdir=tmp_path).start()
        try:
            process.sender(slack).command("add shop-down 3")
            card = json.dumps(card_posted(slack, "shop-down"))
            assert shown(texts("card.balances_unavailable")) in card
            assert CONFIRM_ACTION_ID in card
        finally:
            process.stop()


def test_no_subaccount_api_key_reaches_slack_or_the_logs(
    app: AppProcess, slack: FakeSlack, smspartner: FakeSMSPartner, texts: Texts
) -> None:
    """Runs last: no sub-account's own API key is in any Slack message or log line."""
    sent = json.dumps([c.args for c in slack.calls] + [r.body for r in slack.responses])
    logs = app.logs()
    assert len(smspartner.subaccounts) > 20 and lead(texts, "balance.main") in sent
    for token in smspartner.subaccounts:
        key = smspartner.subaccount_api_key(token)
        assert key not in sent and key not in logs
    assert API_KEY not in sent and API_KEY not in logs
