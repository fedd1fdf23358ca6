"""End to end, issue 8: the money path keeps "at most once, and always answered" under
replays, a slow Slack, clock skew, a database that goes away, and cards Slack refuses.

Every app is the real CLI (`python -m bot run --http`) against the loopback fakes; the
database goes away through a TCP proxy the test cuts (tests/fakes/tcp_proxy.py).
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
from sqlalchemy.engine import make_url

from bot.domain import CreditRequest, Status
from bot.slack.blocks import CONFIRM_ACTION_ID
from bot.store import Store
from tests.e2e import (
    API_KEY,
    BOT_TOKEN,
    AppProcess,
    app_env,
    card_now,
    cards_about,
    ephemeral_to,
    open_request,
    request_id_of,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.fakes.tcp_proxy import TCPProxy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("5000.000")) as fake:
        yield fake


@pytest.fixture
def token(smspartner: FakeSMSPartner) -> str:
    name = f"sub-{secrets.token_hex(4)}"
    smspartner.add_subaccount(name, Decimal("100.000"))
    return name


@pytest.fixture
def start_app(slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path) -> Iterator[Any]:
    """Start app processes; every one still running is stopped afterwards (before the
    database fixture, asked for first, drops its schema)."""
    started: list[AppProcess] = []

    def start(database_url: str, *, module: str = "bot", **overrides: str) -> AppProcess:
        env = app_env(slack=slack, smspartner=smspartner, database_url=database_url, **overrides)
        app = AppProcess(env=env, workdir=tmp_path, module=module)
        started.append(app)
        return app.start()

    yield start
    smspartner.reset()
    for app in started:
        app.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'credit_bot.db'}"


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TCPProxy]:
    port = make_url(postgres_url).port or 5432
    with TCPProxy(port) as running:
        yield running


def _through(proxy: TCPProxy, url: str) -> str:
    """The same database URL, reached through the proxy."""
    return make_url(url).set(port=proxy.port).render_as_string(hide_password=False)


def _stored(url: str, request_id: str) -> CreditRequest:
    store = Store.from_url(url)
    try:
        request = store.get(request_id)
    finally:
        store.close()
    assert request is not None
    return request


def _wait_for(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.05)


def _card_ts(slack: FakeSlack, token: str) -> str:
    return next(ts for (_, ts), m in slack.messages.items() if token in json.dumps(m))


# -- case 1: a replayed /credit opens nothing -------------------------------------------------


def test_replayed_command_opens_one_request_and_answers_each_replay(
    database_url: str, start_app: Any, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """The same signed command four times: one row, one card, three 'already received'."""
    app = start_app(database_url)
    sender = app.sender(slack)
    url = slack.response_url("replayed")
    trigger = "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    for _ in range(4):
        assert sender.command(f"add {token} 5", trigger_id=trigger, response_url=url).ok
    slack.wait_for(lambda f: len(ephemeral_to(f, "replayed")) == 3)
    assert all("already received" in note for note in ephemeral_to(slack, "replayed"))
    # The first delivery's card may still be on its way when the replays are answered.
    slack.wait_for(lambda f: len(cards_about(f, token)) >= 1)
    assert len(cards_about(slack, token)) == 1
    store = Store.from_url(database_url)
    try:
        assert [r.subaccount_token for r in store.recent()].count(token) == 1
    finally:
        store.close()


# -- case 9a: Slack's error string is escaped -------------------------------------------------


def test_slack_error_string_is_escaped_in_the_note(
    sqlite_url: str, start_app: Any, slack: FakeSlack, token: str
) -> None:
    """An error code with mrkdwn in it reaches the requester as text, never as a mention."""
    app = start_app(sqlite_url)
    slack.fail_next("chat.postMessage", "<!channel>")
    url = slack.response_url("escaped")
    assert app.sender(slack).command(f"add {token} 5", response_url=url).ok
    slack.wait_for(lambda f: bool(ephemeral_to(f, "escaped")))
    note = ephemeral_to(slack, "escaped")[0]
    assert "&lt;!channel&gt;" in note and "<!channel>" not in note


# -- case 2 and 8: nothing between claim and send; updates in order ------------------------


def test_transfer_is_sent_while_the_sending_update_hangs_and_the_card_ends_on_the_outcome(
    sqlite_url: str, start_app: Any, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """chat.update stuck: SMS Partner is called anyway, and the held "Sending…" is applied
    before the outcome, never after it. (SMS Partner answers after the moment a transfer
    under way is shown as such.)"""
    app = start_app(sqlite_url)
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 7")
    smspartner.delay_seconds = 1.5
    slack.hold("chat.update")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)  # the old code waited on the update before sending
    slack.wait_for(lambda fake: fake.held_calls("chat.update") == 1)  # "Sending…", held
    slack.release("chat.update")
    card = card_now(slack, token, "Added")
    assert "Sending" not in json.dumps(card)
    _wait_for(lambda: _stored(sqlite_url, request_id).status is Status.SUCCEEDED)
    assert len(smspartner.transfers) == 1
    updates = [c.args for c in slack.calls_to("chat.update") if token in json.dumps(c.args)]
    assert "Sending" in json.dumps(updates[0]) and "Added" in json.dumps(updates[-1])


# -- case 8: a card Slack refuses for good ---------------------------------------------------


def test_card_refused_for_good_is_given_up_and_never_holds_up_another(
    sqlite_url: str, start_app: Any, slack: FakeSlack, token: str, smspartner: FakeSMSPartner
) -> None:
    """message_not_found for one card: a few tries with back-off, then given up and logged;
    the other card, expiring at the same time, closes."""
    app = start_app(sqlite_url, CONFIRMATION_TTL_SECONDS="1")
    sender = app.sender(slack)
    other = f"sub-{secrets.token_hex(4)}"
    smspartner.add_subaccount(other, Decimal("1"))
    slack.refuse_for_good(about=token)  # before it is posted: it may expire at once
    open_request(sender, slack, f"add {token} 3")
    open_request(sender, slack, f"add {other} 3")
    refused_ts = _card_ts(slack, token)
    card_now(slack, other, "Expired")
    _wait_for(
        lambda: any(e.get("event") == "card.given_up" for e in app.log_events()),
        timeout=20,
        what="card.given_up",
    )
    tries = slack.count("chat.update", ts=refused_ts)
    assert tries == 3
    time.sleep(1.0)  # a window for sweeps that must not try again (sizes it, asserts nothing)
    assert slack.count("chat.update", ts=refused_ts) == tries


# -- cases 4 and 5: the database goes away (PostgreSQL through a proxy) ----------------------


def test_answer_in_hand_is_shown_logged_and_recorded_once_the_database_is_back(
    postgres_url: str,
    proxy: TCPProxy,
    start_app: Any,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """The database drops while SMS Partner answers: the card shows the success anyway,
    one log line has it at once, and the store takes it when the database is back."""
    app = start_app(_through(proxy, postgres_url), SMSPARTNER_TIMEOUT_SECONDS="10")
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 9")
    smspartner.hang = True
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    smspartner.wait_for_transfers(1)
    proxy.cut()
    smspartner.hang = False
    smspartner.release()
    card_now(slack, token, "Added", timeout=10)
    logged = [e for e in app.log_events() if e.get("event") == "credit.succeeded"]
    assert logged and logged[0]["request_id"] == request_id
    assert logged[0]["subaccount_balance"] == "109.000"
    assert _stored(postgres_url, request_id).status is Status.EXECUTING  # not recorded yet
    proxy.restore()
    _wait_for(lambda: _stored(postgres_url, request_id).status is Status.SUCCEEDED, timeout=15)
    assert _stored(postgres_url, request_id).subaccount_balance == Decimal("109.000")
    assert len(smspartner.transfers) == 1


def test_command_and_click_are_answered_while_the_database_is_away(
    postgres_url: str,
    proxy: TCPProxy,
    start_app: Any,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
) -> None:
    """PostgreSQL unreachable: /credit and Confirm each get a note that nothing moved."""
    app = start_app(_through(proxy, postgres_url))
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 4")
    proxy.cut()
    command_url = slack.response_url("command-away")
    assert sender.command(f"add {token} 5", response_url=command_url).ok
    click_url = slack.response_url("click-away")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP", response_url=click_url)
    slack.wait_for(
        lambda f: bool(ephemeral_to(f, "command-away")) and bool(ephemeral_to(f, "click-away")),
        timeout=15,
    )
    assert "nothing moved" in ephemeral_to(slack, "command-away")[0]
    assert "nothing was sent" in ephemeral_to(slack, "click-away")[0]
    assert smspartner.transfers == []
    proxy.restore()


# -- case 3: a replica whose clock is ahead ---------------------------------------------------


def test_replica_with_its_clock_ahead_leaves_a_live_transfer_alone(
    postgres_url: str, start_app: Any, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """Replica B's clock is 60 s ahead; A's slow transfer is not relabelled unknown by B's
    sweep, and its success is recorded."""
    sender_app = start_app(postgres_url)
    start_app(
        postgres_url,
        module="tests.skewed_clock",
        CREDIT_TEST_CLOCK_SKEW_SECONDS="60",
        PYTHONPATH=str(REPO),
    )
    sender = sender_app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 6")
    smspartner.delay_seconds = 1.5  # many of B's sweeps (every 0.2 s) run meanwhile
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card_now(slack, token, "Added", timeout=10)
    _wait_for(lambda: _stored(postgres_url, request_id).status is Status.SUCCEEDED)
    trail = Store.from_url(postgres_url)
    try:
        assert Status.UNKNOWN not in [e.status for e in trail.events(request_id)]
    finally:
        trail.close()


# -- case 8: a card whose ts was never stored --------------------------------------------------


def test_card_post_timed_out_is_closed_through_the_response_url(
    sqlite_url: str, start_app: Any, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """Slack answers chat.postMessage too late: the post is not repeated, the request is
    closed (the card that did appear has dead buttons), and the requester is told."""
    app = start_app(sqlite_url)
    sender = app.sender(slack)
    slack.slow("chat.postMessage", 11)  # past the app's 10 s Slack timeout
    url = slack.response_url("post-timeout")
    assert sender.command(f"add {token} 2", response_url=url).ok
    slack.wait_for(lambda f: bool(ephemeral_to(f, "post-timeout")), timeout=25)
    assert "is closed" in ephemeral_to(slack, "post-timeout")[0]
    slack.wait_for(lambda f: len(cards_about(f, token)) == 1, timeout=10)
    late_card = cards_about(slack, token)[0]
    request_id = request_id_of(late_card)
    assert _stored(sqlite_url, request_id).status is Status.CANCELLED
    click_url = slack.response_url("dead-button")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP", response_url=click_url)
    slack.wait_for(lambda f: bool(ephemeral_to(f, "dead-button")))
    assert "already closed" in ephemeral_to(slack, "dead-button")[0]
    assert smspartner.transfers == []
    assert slack.count("chat.postMessage") == 1
