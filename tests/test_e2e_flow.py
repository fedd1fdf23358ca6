"""End to end: the real app in HTTP mode, signed Slack requests, loopback Slack and SMS Partner.

One app process serves the whole module (approvers UAPP and UAPP2; requester UREQ), once per
language (CREDIT_LANGUAGE=en, then fr, with fakes of its own): what it writes is compared with
the catalogue's texts, never with English literals. Each test uses its own sub-account so tests
do not see each other's requests.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Status
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID, usage
from bot.slack.listeners.actions import SENDING_SHOWN_AFTER
from bot.store import Store
from bot.texts import Texts, foreign_phrases
from tests.e2e import (
    API_KEY,
    BOT_TOKEN,
    SIGNING_SECRET,
    AppProcess,
    card_now,
    card_posted,
    ephemeral_to,
    lead,
    open_request,
    request_id_of,
    shown,
    tail,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender

# Every input SPEC.md §2 refuses, with a fragment of the reason shown.
BAD_INPUTS = [
    "add",
    "add sub-1",
    "add 10",
    "transfer sub-1 10",
    "add sub-1 0",
    "add sub-1 -5",
    "add sub-1 1e3",
    "add sub-1 NaN",
    "add sub-1 inf",
    "add sub-1 10.555",
    "add sub-1 1000.01",
    "add sub-1 10 " + "x" * 201,
    "add <!channel> 10",
    "add sub/1 10",
    "add " + "a" * 129 + " 10",
    "remove sub-1 1,000.00",
    "add sub-1 ١٠",
]

# More than the tests of this module use, each its own.
TOKEN_POOL = 80


@pytest.fixture(scope="module")
def smspartner(language: str) -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("5000.000")) as fake:
        yield fake


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory, language: str) -> Path:
    return tmp_path_factory.mktemp(f"e2e-{language}") / "credit_bot.db"


@pytest.fixture(autouse=True)
def _clean_fakes(smspartner: FakeSMSPartner) -> None:
    smspartner.reset()


@pytest.fixture(scope="module")
def _fresh_tokens(smspartner: FakeSMSPartner) -> Iterator[str]:
    """Sub-accounts made before the app first reads SMS Partner's list: the directory reads
    it again at most every few seconds, so one made between two tests could be refused."""
    names = [f"sub-{secrets.token_hex(4)}" for _ in range(TOKEN_POOL)]
    for name in names:
        smspartner.add_subaccount(name, Decimal("100.000"))
    return iter(names)


@pytest.fixture
def token(_fresh_tokens: Iterator[str]) -> str:
    """A fresh sub-account with 100 EUR on it, used by this test only."""
    return next(_fresh_tokens)


def _euros(texts: Texts, amount: str) -> str:
    """An amount as the card writes it (JSON-escaped): `10.50 EUR`, `10,50 EUR`."""
    return shown(texts.format_amount(Decimal(amount), "EUR"))


def _balance(texts: Texts, balance: Decimal) -> str:
    return shown(texts.format_balance(balance, "EUR"))


def _succeeded(texts: Texts, verb: str, amount: str, token: str) -> str:
    """The headline of the success card (JSON-escaped)."""
    return shown(
        texts(
            f"card.succeeded.{verb}",
            amount=texts.format_amount(Decimal(amount), "EUR"),
            token=f"`{token}`",
        )
    )


def _buttons_left(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id")
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]


def test_add_moves_credit_after_approval(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """add: a card with both buttons, one approved click, one API call, balances shown."""
    main_after = _balance(
        texts, (smspartner.main_balance - Decimal("10.50")).quantize(Decimal("0.001"))
    )
    response = sender.command(f"add {token} 10,50")
    assert response.status_code == 200
    card = card_posted(slack, token)
    assert card["channel"] == "CFIN"
    text = json.dumps(card)
    for fact in ("<@UREQ>", _euros(texts, "10.50"), token, CONFIRM_ACTION_ID, CANCEL_ACTION_ID):
        assert fact in text
    request_id = request_id_of(card)

    click = sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    assert click.status_code == 200
    done = card_now(slack, token, _succeeded(texts, "add", "10.50", token))
    card_text = json.dumps(done)
    for fact in (
        _euros(texts, "10.50"),
        "<@UREQ>",
        "<@UAPP>",
        _balance(texts, Decimal("110.500")),
        main_after,
    ):
        assert fact in card_text
    assert _buttons_left(done) == []

    calls = smspartner.wait_for_transfers(1)
    assert len(calls) == 1
    assert calls[0].path == "/v1/subaccount/credit/add"
    assert calls[0].json == {"apiKey": API_KEY, "credit": "10.50", "tokenSubaccount": token}
    stored = store.get(request_id)
    assert stored is not None and stored.status is Status.SUCCEEDED
    assert stored.subaccount_balance == Decimal("110.500")


def test_remove_moves_credit_back(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str, texts: Texts
) -> None:
    """remove: the sub-account goes down, the main account up, by exactly the amount."""
    request_id = open_request(sender, slack, f"remove {token} 25")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP2")
    card_text = json.dumps(card_now(slack, token, _succeeded(texts, "remove", "25", token)))
    assert _balance(texts, Decimal("75.000")) in card_text
    assert _euros(texts, "25") in card_text
    assert smspartner.wait_for_transfers(1)[0].path == "/v1/subaccount/credit/remove"


def test_a_quick_transfer_goes_from_the_buttons_straight_to_the_outcome(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str, texts: Texts
) -> None:
    """SMS Partner answers at once: the card is replaced once, by the outcome; "Sending…"
    (shown only for a transfer still under way after a moment) never appears."""
    request_id = open_request(sender, slack, f"add {token} 4")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card_now(slack, token, _succeeded(texts, "add", "4", token))
    time.sleep(2 * SENDING_SHOWN_AFTER)  # past the moment a "Sending…" would have come
    updates = [c for c in slack.calls_to("chat.update") if token in json.dumps(c.args)]
    assert len(updates) == 1
    assert lead(texts, "card.sending") not in json.dumps(updates[0].args)


@pytest.mark.parametrize(
    ("code", "message_id"),
    [
        (1, "smspartner.error.1"),
        (2, "smspartner.error.2"),
        (3, "smspartner.error.3"),
        (4, "smspartner.error.4"),
        (5, "smspartner.error.5"),
        (6, "smspartner.error.6"),
        (7, "smspartner.error.7"),
        (8, "smspartner.error.8"),
        (9, "smspartner.error.9"),
        (10, "smspartner.error.10"),
        (11, "smspartner.error.11"),
        (96, "smspartner.error.96"),
        (42, "smspartner.error.other"),
    ],
)
def test_every_error_code_is_mapped(
    code: int,
    message_id: str,
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """Each vendor error code ends the request failed, our text for it and SMS Partner's own
    message (as it came) shown."""
    request_id = open_request(sender, slack, f"add {token} 5")
    smspartner.force_error(code, f"Message du fournisseur {code}", http_status=400)
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card = card_now(slack, token, lead(texts, "card.failed"))
    card_text = json.dumps(card, ensure_ascii=False)
    explained = texts(message_id, **({"code": str(code)} if code == 42 else {}))
    assert explained in card_text
    assert f"Message du fournisseur {code}" in card_text
    stored = store.get(request_id)
    assert stored is not None
    assert (stored.status, stored.error_code) == (Status.FAILED, code)


def test_cancel_by_requester(
    sender: SlackSender, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """The requester cancels: the card says who, no buttons, nothing sent."""
    request_id = open_request(sender, slack, f"add {token} 3")
    sender.click(CANCEL_ACTION_ID, request_id, user_id="UREQ")
    cancelled = card_now(slack, token, lead(texts, "card.cancelled"))
    assert "<@UREQ>" in json.dumps(cancelled)
    assert _buttons_left(cancelled) == []


def test_cancel_by_approver_then_confirm_is_already_handled(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str, texts: Texts
) -> None:
    """An approver cancels; a later Confirm is told who cancelled it, and calls nothing."""
    request_id = open_request(sender, slack, f"add {token} 3")
    sender.click(CANCEL_ACTION_ID, request_id, user_id="UAPP")
    card_now(slack, token, lead(texts, "card.cancelled"))
    late_url = slack.response_url("late-confirm")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP2", response_url=late_url)
    slack.wait_for(lambda f: bool(ephemeral_to(f, "late-confirm")))
    told = shown(texts("handled.cancelled", who="<@UAPP>"))
    assert told in ephemeral_to(slack, "late-confirm")[0]
    assert smspartner.transfers == []


@pytest.mark.parametrize(
    ("user", "action", "reason"),
    [
        ("UREQ", CONFIRM_ACTION_ID, "refusal.not_an_approver"),
        ("USTRANGER", CONFIRM_ACTION_ID, "refusal.not_an_approver"),
        ("USTRANGER", CANCEL_ACTION_ID, "refusal.cancel_not_allowed"),
    ],
)
def test_refused_clicks_change_nothing(
    user: str,
    action: str,
    reason: str,
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """The requester (no approver) and a stranger are refused privately; nothing changes."""
    request_id = open_request(sender, slack, f"add {token} 4")
    url = slack.response_url(f"refused-{token}")
    assert sender.click(action, request_id, user_id=user, response_url=url).status_code == 200
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"refused-{token}")))
    assert shown(texts(reason)) in ephemeral_to(slack, f"refused-{token}")[0]
    stored = store.get(request_id)
    assert stored is not None and stored.status is Status.PENDING
    assert smspartner.transfers == []
    assert not any(token in json.dumps(c.args) for c in slack.calls_to("chat.update"))


def test_approver_cannot_approve_own_request(
    sender: SlackSender, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """With approvers configured, an approver's own request needs another approver."""
    request_id = open_request(sender, slack, f"add {token} 4", user="UAPP")
    url = slack.response_url(f"self-{token}")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP", response_url=url)
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"self-{token}")))
    assert shown(texts("refusal.own_request")) in ephemeral_to(slack, f"self-{token}")[0]


def test_twenty_concurrent_confirms_send_once(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """20 Confirm clicks at once: one SMS Partner call; the 19 others told it is handled."""
    request_id = open_request(sender, slack, f"add {token} 7")
    smspartner.delay_seconds = 0.3  # keep the winner busy while the others arrive
    urls = [slack.response_url(f"race-{token}-{n}") for n in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(
                lambda n: (
                    sender.click(
                        CONFIRM_ACTION_ID,
                        request_id,
                        user_id="UAPP" if n % 2 else "UAPP2",
                        response_url=urls[n],
                    ).status_code
                ),
                range(20),
            )
        )
    assert statuses == [200] * 20
    card_now(slack, token, _succeeded(texts, "add", "7", token))
    slack.wait_for(lambda f: len(ephemeral_to(f, f"race-{token}")) == 19)
    handled = [
        shown(texts(f"handled.{state}", who=who))
        for state in ("executing", "succeeded")
        for who in ("<@UAPP>", "<@UAPP2>")
    ]
    for text in ephemeral_to(slack, f"race-{token}"):
        assert any(told in text for told in handled)
    assert len(smspartner.transfers) == 1
    stored = store.get(request_id)
    assert stored is not None and stored.status is Status.SUCCEEDED


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_is_refused_and_changes_nothing(
    text: str, sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, texts: Texts
) -> None:
    """Every malformed command: an ephemeral reason with usage; no card, no call."""
    posts_before = len(slack.calls_to("chat.postMessage"))
    response = sender.command(text)
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(":warning:")
    assert body["text"].endswith(usage(texts))
    assert "<!channel>" not in response.text
    assert len(slack.calls_to("chat.postMessage")) == posts_before
    assert smspartner.transfers == []


@pytest.mark.parametrize("text", ["", "help", "HELP", "aide"])
def test_help_is_private_usage(text: str, sender: SlackSender, texts: Texts) -> None:
    """`/credit`, `/credit help` and `/credit aide` answer the usage privately."""
    body = sender.command(text).json()
    assert body["response_type"] == "ephemeral" and body["text"] == usage(texts)


def test_bad_signature_and_old_timestamp_are_refused(
    sender: SlackSender, slack: FakeSlack, token: str
) -> None:
    """A wrong signature, or a correct one 6 minutes old, gets 401 and does nothing."""
    posts_before = len(slack.calls_to("chat.postMessage"))
    assert sender.command(f"add {token} 5", signature="v0=" + "0" * 64).status_code == 401
    old = int(time.time()) - 6 * 60
    assert sender.command(f"add {token} 5", timestamp=old).status_code == 401
    assert len(slack.calls_to("chat.postMessage")) == posts_before


def test_click_is_acknowledged_before_the_api_answers(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str, texts: Texts
) -> None:
    """With SMS Partner stuck, the click is still acknowledged; the card follows the answer."""
    request_id = open_request(sender, slack, f"add {token} 6")
    smspartner.hang = True
    click = sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    assert click.status_code == 200
    smspartner.wait_for_transfers(1)
    card_now(slack, token, lead(texts, "card.sending"))  # in progress, no buttons
    smspartner.release()


def test_timeout_ends_unknown_and_is_not_resent(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    store: Store,
    texts: Texts,
) -> None:
    """No answer within the timeout: the card says unknown, the API saw exactly one request."""
    request_id = open_request(sender, slack, f"add {token} 8")
    smspartner.hang = True
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card_text = json.dumps(card_now(slack, token, lead(texts, "card.unknown")))
    assert tail(texts, "card.unknown") in card_text
    assert shown(texts("reason.no_answer", limit="2 s")) in card_text
    smspartner.release()
    assert len(smspartner.transfers) == 1
    stored = store.get(request_id)
    assert stored is not None and stored.status is Status.UNKNOWN
    # Clicking again does not re-send: it is already handled.
    url = slack.response_url(f"again-{token}")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP2", response_url=url)
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"again-{token}")))
    told = shown(texts("handled.unknown", who="<@UAPP>"))
    assert told in ephemeral_to(slack, f"again-{token}")[0]
    assert len(smspartner.transfers) == 1


@pytest.mark.parametrize("switch", ["http_500", "garbage_body"])
def test_bad_answers_fail_and_app_keeps_serving(
    switch: str,
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """HTTP 500 or a garbage body: a failure card; the next request goes through."""
    request_id = open_request(sender, slack, f"add {token} 9")
    setattr(smspartner, switch, True)
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card_text = json.dumps(card_now(slack, token, lead(texts, "card.failed")))
    assert tail(texts, "reason.bad_answer") in card_text
    smspartner.reset()
    again = open_request(sender, slack, f"remove {token} 1")
    sender.click(CONFIRM_ACTION_ID, again, user_id="UAPP")
    card_now(slack, token, _succeeded(texts, "remove", "1", token))


def test_card_that_cannot_be_posted_is_explained(
    sender: SlackSender, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """Bot not in the channel: the requester is told to invite it; nothing stays pending."""
    slack.fail_next("chat.postMessage", "not_in_channel")
    url = slack.response_url(f"notin-{token}")
    assert sender.command(f"add {token} 5", response_url=url).status_code == 200
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"notin-{token}")))
    assert shown(texts("command.not_in_channel")) in ephemeral_to(slack, f"notin-{token}")[0]


def test_click_from_another_channel_is_refused(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str, texts: Texts
) -> None:
    """A request id clicked from another channel is not found there; nothing is sent."""
    request_id = open_request(sender, slack, f"add {token} 5")
    url = slack.response_url(f"elsewhere-{token}")
    sender.click(
        CONFIRM_ACTION_ID, request_id, user_id="UAPP", channel_id="COTHER", response_url=url
    )
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"elsewhere-{token}")))
    told = shown(texts("refusal.no_such_request"))
    assert told in ephemeral_to(slack, f"elsewhere-{token}")[0]
    assert smspartner.transfers == []


def test_a_french_team_reads_no_english(language: str, slack: FakeSlack) -> None:
    """Runs after the flows above: in French, nothing the app sent to Slack (cards in every
    state, answers, refusals, usage) holds an English phrase or label of the catalogues."""
    if language != "fr":
        pytest.skip("the English run writes English")
    sent = [c.args for c in slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")]
    sent += [r.body for r in slack.responses]
    assert len(sent) > 50  # the module above did run
    leaks = {
        found
        for message in sent
        for found in foreign_phrases(json.dumps(message, ensure_ascii=False), language="fr")
    }
    assert leaks == set()


def test_no_secret_reaches_slack_or_the_logs(app: AppProcess, slack: FakeSlack) -> None:
    """Runs last: every message sent to Slack and every log line is free of secrets."""
    sent = json.dumps([c.args for c in slack.calls] + [r.body for r in slack.responses])
    logs = app.logs()
    assert len(slack.calls) > 20 and len(logs) > 1000  # the module above did run
    for secret in (API_KEY, SIGNING_SECRET, BOT_TOKEN):
        assert secret not in sent
        assert secret not in logs
