"""End to end, issue 10: reasons, who can approve, user groups, a second approval, the daily
limit, reminders and the Home tab, through the real app process and the loopback fakes.

Run once per language (CREDIT_LANGUAGE=en, then fr): what the app writes is compared with the
catalogue's texts in that language, never with English literals."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Status
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID
from bot.store import Store
from bot.texts import Texts
from tests.e2e import (
    API_KEY,
    BOT_TOKEN,
    LANGUAGES,
    AppProcess,
    app_env,
    card_now,
    ephemeral_to,
    lead,
    open_request,
    shown,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import API_APP_ID, VERIFICATION_TOKEN, SlackSender

StartApp = Callable[..., AppProcess]
CLICKS = 20
# How long a wait may take on a loaded machine before it counts as never (no timing is tested).
PATIENT = 20.0


@pytest.fixture(scope="module", params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    """The apps' CREDIT_LANGUAGE: every test of the module runs in each."""
    return str(request.param)


@pytest.fixture(scope="module")
def texts(language: str) -> Texts:
    return Texts.for_language(language)


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
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'credit_bot.db'}"


@pytest.fixture
def start_app(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path, language: str
) -> Iterator[StartApp]:
    """Start app processes; each is stopped afterwards (before any database fixture goes)."""
    started: list[AppProcess] = []

    def start(database_url: str, *, module: str = "bot", **overrides: str) -> AppProcess:
        env = app_env(
            slack=slack,
            smspartner=smspartner,
            database_url=database_url,
            CREDIT_LANGUAGE=language,
            **overrides,
        )
        app = AppProcess(env=env, workdir=tmp_path, module=module)
        started.append(app)
        return app.start()

    yield start
    smspartner.reset()
    for app in started:
        app.stop()


def _stored(url: str, request_id: str) -> Any:
    store = Store.from_url(url)
    try:
        return store.get(request_id), store.approvals(request_id), store.events(request_id)
    finally:
        store.close()


def _card(slack: FakeSlack, token: str) -> str:
    """The card about `token` as users see it now, as JSON text."""
    return next(json.dumps(m) for m in slack.messages.values() if token in json.dumps(m))


def _open_home(sender: SlackSender, user_id: str) -> None:
    body = {
        "token": VERIFICATION_TOKEN,
        "team_id": "T0TEST",
        "api_app_id": API_APP_ID,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
    }
    response = sender.post(json.dumps(body).encode(), "application/json")
    assert response.status_code == 200


def _home_click(sender: SlackSender, action_id: str, request_id: str, user_id: str) -> None:
    """A button clicked in the Home tab: the container is the view, there is no channel,
    no message and no response_url, as Slack sends it."""
    payload = sender.click_payload(action_id, request_id, user_id=user_id)
    for key in ("channel", "message", "response_url"):
        payload.pop(key)
    payload["container"] = {"type": "view", "view_id": f"V{user_id}"}
    payload["view"] = {"id": f"V{user_id}", "type": "home", "blocks": []}
    assert sender.raw_payload(payload).status_code == 200


def _home_text(slack: FakeSlack, user_id: str) -> str:
    return json.dumps(slack.homes.get(user_id, {}))


def _added(texts: Texts) -> str:
    """What a success card of an add starts with (JSON-escaped)."""
    return lead(texts, "card.succeeded.add")


def _handled(texts: Texts, *approvers: str) -> list[str]:
    """The answers to a Confirm that came too late, by any of `approvers` (JSON-escaped)."""
    return [
        shown(texts(f"handled.{state}", who=f"<@{who}>"))
        for state in ("executing", "succeeded")
        for who in approvers
    ]


# -- 1. reason, 2. who can approve ------------------------------------------------------------


def test_reason_is_escaped_on_the_card_its_outcome_the_trail_and_the_log(
    sqlite_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    token: str,
    tmp_path: Path,
    texts: Texts,
) -> None:
    """The reason shows escaped (no ping), the approvers are mentioned, and it stays."""
    app = start_app(sqlite_url)
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 10 March <!channel> campaign")
    card = _card(slack, token)
    assert "March &lt;!channel&gt; campaign" in card
    assert "<!channel>" not in card
    assert shown(texts("card.can_approve", approvers="<@UAPP>, <@UAPP2>")) in card

    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    outcome = json.dumps(card_now(slack, token, _added(texts)))
    assert "March &lt;!channel&gt; campaign" in outcome

    request, _, events = _stored(sqlite_url, request_id)
    assert request.reason == "March <!channel> campaign"
    assert events[0].detail == "March <!channel> campaign"
    audit = subprocess.run(
        [sys.executable, "-m", "bot", "audit", request_id],
        env=app.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "March <!channel> campaign" in audit
    assert any(
        e.get("event") == "credit.requested" and e.get("reason") == "March <!channel> campaign"
        for e in app.log_events()
    )


def test_required_reason_is_asked_for_and_groups_are_mentioned_as_groups(
    sqlite_url: str, start_app: StartApp, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """CREDIT_REQUIRE_REASON refuses a bare command; a group approver shows as a group."""
    slack.set_group("SFIN", ["UAPP"])
    app = start_app(sqlite_url, CREDIT_REQUIRE_REASON="true", CREDIT_APPROVERS="SFIN,UBOSS")
    sender = app.sender(slack)
    refused = sender.command(f"add {token} 10", user_id="UREQ")
    assert texts("usage.error.reason_required") in refused.json()["text"]
    open_request(sender, slack, f"add {token} 10 Q3 launch")
    can_approve = texts("card.can_approve", approvers="<@UBOSS>, <!subteam^SFIN>")
    assert shown(can_approve) in _card(slack, token)


def test_with_no_approvers_the_requester_is_named(
    sqlite_url: str, start_app: StartApp, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """No approvers configured: the card says the requester approves."""
    app = start_app(sqlite_url, CREDIT_APPROVERS="")
    open_request(app.sender(slack), slack, f"add {token} 10")
    assert shown(texts("card.can_approve", approvers="<@UREQ>")) in _card(slack, token)


# -- 3. user groups -------------------------------------------------------------------------


def test_group_membership_change_is_seen_once_the_cache_expires(
    sqlite_url: str, start_app: StartApp, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """UNEW is refused while not in the group; once added, after the cache expires, UNEW
    may act: here Cancel, so no money moves while the test waits."""
    slack.set_group("SFIN", ["UOLD"])
    app = start_app(
        sqlite_url,
        module="tests.short_group_cache",
        CREDIT_APPROVERS="SFIN",
        CREDIT_TEST_GROUP_CACHE_SECONDS="0.5",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 10")
    refused_url = slack.response_url(f"refused-{token}")
    sender.click(CANCEL_ACTION_ID, request_id, user_id="UNEW", response_url=refused_url)
    slack.wait_for(lambda f: len(ephemeral_to(f, f"refused-{token}")) == 1)
    refusal = shown(texts("refusal.cancel_not_allowed"))
    assert refusal in ephemeral_to(slack, f"refused-{token}")[0]

    cancelled = lead(texts, "card.cancelled")
    slack.set_group("SFIN", ["UOLD", "UNEW"])
    deadline = time.monotonic() + 10
    attempt = 0
    while cancelled not in _card(slack, token):
        assert time.monotonic() < deadline, "the new member was never let in"
        attempt += 1
        url = slack.response_url(f"try-{token}-{attempt}")
        sender.click(CANCEL_ACTION_ID, request_id, user_id="UNEW", response_url=url)
        # Each click is answered (a refusal, or the card): wait for that answer.
        slack.wait_for(
            lambda f, n=attempt: (
                bool(ephemeral_to(f, f"try-{token}-{n}")) or cancelled in _card(f, token)
            )
        )
    assert f"{cancelled}<@UNEW>" in _card(slack, token)


# -- 4. second approval -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_twenty_confirms_by_two_approvers_make_one_call_above_the_threshold(
    backend: str,
    request: pytest.FixtureRequest,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """Above CREDIT_SECOND_APPROVAL_ABOVE: 20 simultaneous Confirms, split between two
    approvers, give one first approval, one claim, one SMS Partner call; both approvers are
    on the result and in the trail; every other click is told why it did nothing."""
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    app = start_app(url, CREDIT_SECOND_APPROVAL_ABOVE="500")
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 600 big campaign")
    assert shown(texts("card.needs_two")) in _card(slack, token)
    smspartner.delay_seconds = 0.3  # keep the claimant busy while the others arrive
    urls = [slack.response_url(f"race-{token}-{n}") for n in range(CLICKS)]

    def click(n: int) -> int:
        user = "UAPP" if n % 2 else "UAPP2"
        response = sender.click(CONFIRM_ACTION_ID, request_id, user_id=user, response_url=urls[n])
        return response.status_code

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        statuses = list(pool.map(click, range(CLICKS)))
    assert statuses == [200] * CLICKS

    outcome = json.dumps(card_now(slack, token, _added(texts), timeout=PATIENT))
    slack.wait_for(lambda f: len(ephemeral_to(f, f"race-{token}")) == CLICKS - 2, timeout=PATIENT)
    assert len(smspartner.requests_to("add")) == 1
    stored, approvals, events = _stored(url, request_id)
    assert stored.status is Status.SUCCEEDED
    approvers = {stored.first_approver_id, stored.approver_id}
    assert approvers == {"UAPP", "UAPP2"}
    assert {a for a, _ in approvals} == approvers
    executing = next(e for e in events if e.status is Status.EXECUTING)
    assert executing.detail == f"second approval; first by {stored.first_approver_id}"
    assert f"<@{stored.first_approver_id}>, <@{stored.approver_id}>" in outcome
    told = [shown(texts("refusal.already_approved")), *_handled(texts, "UAPP", "UAPP2")]
    for answer in ephemeral_to(slack, f"race-{token}"):
        assert any(text in answer for text in told)


def test_first_approval_waits_for_a_second_approver(
    sqlite_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """The first Confirm says "1 of 2" and keeps the buttons; the same approver again is
    told they already approved; nothing is sent until the second approver confirms."""
    app = start_app(sqlite_url, CREDIT_SECOND_APPROVAL_ABOVE="500")
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 501")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card = json.dumps(
        card_now(slack, token, shown(texts("card.first_approval", approver="<@UAPP>")))
    )
    assert CONFIRM_ACTION_ID in card and CANCEL_ACTION_ID in card

    again = slack.response_url(f"again-{token}")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP", response_url=again)
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"again-{token}")))
    assert shown(texts("refusal.already_approved")) in ephemeral_to(slack, f"again-{token}")[0]
    assert smspartner.requests_to("add") == []

    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP2")
    card_now(slack, token, _added(texts))
    assert len(smspartner.requests_to("add")) == 1


# -- 5. daily limit ---------------------------------------------------------------------------


def test_daily_limit_refuses_the_command_with_what_is_left(
    sqlite_url: str, start_app: StartApp, slack: FakeSlack, token: str, texts: Texts
) -> None:
    """100 EUR a day: after 70 EUR went through, asking for 40 more is refused with 30 left."""
    app = start_app(sqlite_url, CREDIT_DAILY_LIMIT="100")
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 70")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card_now(slack, token, _added(texts))
    url = slack.response_url(f"limit-{token}")
    assert sender.command(f"add {token} 40", user_id="UREQ", response_url=url).text == ""
    slack.wait_for(lambda f: bool(ephemeral_to(f, f"limit-{token}")))
    refusal = texts(
        "command.daily_limit",
        left=texts.format_amount(Decimal("30"), "EUR"),
        limit=texts.format_amount(Decimal("100"), "EUR"),
    )
    assert shown(refusal) in ephemeral_to(slack, f"limit-{token}")[0]


def test_daily_limit_holds_for_confirms_racing_on_two_replicas(
    postgres_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """Two requests of 60 EUR under a 100 EUR limit, opened before either moved money, are
    confirmed at once on two replicas: one is sent, the other's card says the daily limit
    is reached and nothing is sent for it."""
    apps = [start_app(postgres_url, CREDIT_DAILY_LIMIT="100") for _ in range(2)]
    senders = [app.sender(slack) for app in apps]
    first = open_request(senders[0], slack, f"add {token} 60 one")
    second = open_request(senders[1], slack, f"add {token} 60 two")
    smspartner.delay_seconds = 0.3

    def confirm(n: int) -> int:
        request_id = (first, second)[n % 2]
        return senders[n % 2].click(CONFIRM_ACTION_ID, request_id, user_id="UAPP").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(confirm, range(8))) == [200] * 8
    reached = texts(
        "reason.daily_limit",
        left=texts.format_balance(Decimal("40.00"), "EUR"),
        limit=texts.format_balance(Decimal("100.00"), "EUR"),
    )
    card_now(slack, token, shown(reached), timeout=PATIENT)
    card_now(slack, token, _added(texts), timeout=PATIENT)
    assert len(smspartner.requests_to("add")) == 1
    statuses = {_stored(postgres_url, r)[0].status for r in (first, second)}
    assert statuses == {Status.SUCCEEDED, Status.FAILED}


# -- 6. reminders -----------------------------------------------------------------------------


def test_reminder_is_sent_once_with_two_replicas(
    postgres_url: str, start_app: StartApp, slack: FakeSlack, smspartner: FakeSMSPartner
) -> None:
    """Two replicas sweeping one database: each pending request gets exactly one reply in
    its card's thread, mentioning the approvers."""
    apps = [start_app(postgres_url, CREDIT_REMIND_AFTER_SECONDS="1") for _ in range(2)]
    tokens = [f"sub-{secrets.token_hex(4)}" for _ in range(4)]
    # Made before the replicas first read the sub-account list: they re-read it at most
    # every few seconds, so one made later could be refused as unknown for that long.
    sentinel = f"sub-{secrets.token_hex(4)}"
    for name in [*tokens, sentinel]:
        smspartner.add_subaccount(name, Decimal("100.000"))
    card_ts = {}
    request_ids = set()
    for n, name in enumerate(tokens):
        request_ids.add(open_request(apps[n % 2].sender(slack), slack, f"add {name} 5"))
        card_ts[name] = next(ts for (_, ts), m in slack.messages.items() if name in json.dumps(m))

    def replies(fake: FakeSlack, ts: str) -> list[dict[str, Any]]:
        return [c.args for c in fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]

    slack.wait_for(lambda f: all(replies(f, ts) for ts in card_ts.values()), timeout=PATIENT)
    # A later request reminded proves the replicas swept again after the first reminders.
    open_request(apps[0].sender(slack), slack, f"add {sentinel} 5")
    sentinel_ts = next(ts for (_, ts), m in slack.messages.items() if sentinel in json.dumps(m))
    slack.wait_for(lambda f: bool(replies(f, sentinel_ts)), timeout=PATIENT)

    for ts in card_ts.values():
        sent = replies(slack, ts)
        assert len(sent) == 1
        assert "<@UAPP>, <@UAPP2>" in sent[0]["text"]
    sent_logs = [
        e
        for app in apps
        for e in app.log_events()
        if e.get("event") == "reminder.sent" and e.get("request_id") in request_ids
    ]
    assert len(sent_logs) == len(tokens)


# -- 7. the Home tab --------------------------------------------------------------------------


def test_home_tab_lists_what_waits_and_a_click_there_moves_money_once(
    sqlite_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """The approver's Home lists the request with its buttons and the main balance; Confirm
    clicked there sends once, updates the channel's card and redraws the Home tab."""
    app = start_app(sqlite_url)
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 12 for the Home tab")
    _open_home(sender, "UAPP")
    slack.wait_for(lambda f: request_id in _home_text(f, "UAPP"))
    home = _home_text(slack, "UAPP")
    assert shown(texts.format_balance(Decimal("5000.000"), "EUR")) in home
    assert "for the Home tab" in home
    assert CONFIRM_ACTION_ID in home and CANCEL_ACTION_ID in home

    _open_home(sender, "UREQ")
    slack.wait_for(lambda f: shown(texts("home.mine")) in _home_text(f, "UREQ"))
    mine = _home_text(slack, "UREQ")
    assert (
        shown(texts("status.pending")) in mine and CONFIRM_ACTION_ID not in mine
    )  # own request: not theirs to approve

    publishes = slack.count("views.publish")
    _home_click(sender, CONFIRM_ACTION_ID, request_id, "UAPP")
    _home_click(sender, CONFIRM_ACTION_ID, request_id, "UAPP")
    card_now(slack, token, _added(texts))
    slack.wait_for(lambda f: f.count("views.publish") >= publishes + 2)
    assert len(smspartner.requests_to("add")) == 1
    published = [json.dumps(c.args) for c in slack.calls_to("views.publish")]
    # The second click's answer:
    assert any(told in view for view in published for told in _handled(texts, "UAPP"))
    assert request_id not in _home_text(slack, "UAPP")  # nothing waits any more


def test_home_tab_click_by_someone_not_allowed_is_refused(
    sqlite_url: str,
    start_app: StartApp,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    texts: Texts,
) -> None:
    """No channel in a Home click: the signed user still decides; the requester may not
    confirm from there. The balance says unavailable when /me fails."""
    smspartner.fail_endpoint("me", 10)
    app = start_app(sqlite_url)
    sender = app.sender(slack)
    request_id = open_request(sender, slack, f"add {token} 12")
    _home_click(sender, CONFIRM_ACTION_ID, request_id, "UREQ")
    refusal = shown(texts("refusal.not_an_approver"))
    slack.wait_for(lambda f: refusal in _home_text(f, "UREQ"))
    assert shown(texts("home.unavailable")) in _home_text(slack, "UREQ")
    assert smspartner.requests_to("add") == []
    assert lead(texts, "card.confirm.fallback") in _card(slack, token)  # still pending
