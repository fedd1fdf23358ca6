"""End to end under other settings: no approvers, restricted requesters and channels,
expiry on click, and a restart between the command and the click."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Status
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID
from bot.store import Store
from tests.e2e import API_KEY, BOT_TOKEN, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("500.000")) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean_fakes(smspartner: FakeSMSPartner) -> None:
    smspartner.reset()


@pytest.fixture
def token(smspartner: FakeSMSPartner) -> str:
    name = f"sub-{secrets.token_hex(4)}"
    smspartner.add_subaccount(name, Decimal("50.000"))
    return name


def _start(
    slack: FakeSlack, smspartner: FakeSMSPartner, workdir: Path, **overrides: str
) -> AppProcess:
    env = app_env(
        slack=slack,
        smspartner=smspartner,
        database_url=f"sqlite:///{workdir / 'credit_bot.db'}",
        **overrides,
    )
    return AppProcess(env=env, workdir=workdir).start()


def _open(sender: SlackSender, slack: FakeSlack, text: str, user: str = "UREQ") -> str:
    token = text.split()[1]

    def cards(fake: FakeSlack) -> list[dict[str, Any]]:
        return [c.args for c in fake.calls_to("chat.postMessage") if token in json.dumps(c.args)]

    already = len(cards(slack))
    assert sender.command(text, user_id=user).text == ""
    slack.wait_for(lambda fake: len(cards(fake)) > already)
    for block in cards(slack)[-1]["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == CONFIRM_ACTION_ID:
                return str(element["value"])
    raise AssertionError("no Confirm button")


def _card_shows(slack: FakeSlack, token: str, fragment: str) -> None:
    slack.wait_for(
        lambda fake: any(
            token in json.dumps(m) and fragment in json.dumps(m) for m in fake.messages.values()
        )
    )


def _ephemeral(slack: FakeSlack, url_id: str) -> str:
    slack.wait_for(lambda fake: any(r.url_id == url_id for r in fake.responses))
    return next(json.dumps(r.body) for r in slack.responses if r.url_id == url_id)


@pytest.fixture(scope="module")
def no_approvers(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    app = _start(slack, smspartner, tmp_path_factory.mktemp("noapp"), CREDIT_APPROVERS="")
    yield app
    app.stop()


def test_without_approvers_the_requester_confirms(
    no_approvers: AppProcess, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """No CREDIT_APPROVERS: someone else is refused; the requester's own Confirm sends it."""
    sender = no_approvers.sender(slack)
    request_id = _open(sender, slack, f"add {token} 5")
    sender.click(
        CONFIRM_ACTION_ID,
        request_id,
        user_id="UOTHER",
        response_url=slack.response_url(f"other-{token}"),
    )
    assert "Only the person who asked" in _ephemeral(slack, f"other-{token}")
    assert smspartner.transfers == []
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UREQ")
    _card_shows(slack, token, "Added")
    assert len(smspartner.transfers) == 1


@pytest.fixture(scope="module")
def restricted(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    app = _start(
        slack,
        smspartner,
        tmp_path_factory.mktemp("restricted"),
        CREDIT_REQUESTERS="UREQ",
        CREDIT_CHANNELS="CFIN",
        CREDIT_MAX_AMOUNT="50",
    )
    yield app
    app.stop()


@pytest.mark.parametrize(
    ("user", "channel", "text", "reason"),
    [
        ("UOTHER", "CFIN", "add sub-1 5", "not on the list of people allowed"),
        ("UREQ", "CRANDOM", "add sub-1 5", "cannot be used in this channel"),
        ("UREQ", "CFIN", "add sub-1 50.01", "maximum for one request is 50"),
    ],
)
def test_requesters_channels_and_maximum_are_enforced(
    restricted: AppProcess,
    slack: FakeSlack,
    user: str,
    channel: str,
    text: str,
    reason: str,
) -> None:
    """Outside CREDIT_REQUESTERS, CREDIT_CHANNELS or CREDIT_MAX_AMOUNT: private refusal, no card."""
    posts = len(slack.calls_to("chat.postMessage"))
    body = restricted.sender(slack).command(text, user_id=user, channel_id=channel).json()
    assert body["response_type"] == "ephemeral"
    assert reason in body["text"]
    assert len(slack.calls_to("chat.postMessage")) == posts


def test_allowed_requester_in_allowed_channel_gets_a_card(
    restricted: AppProcess, slack: FakeSlack, token: str
) -> None:
    """The listed requester, in the listed channel, within the maximum: a card is posted."""
    assert _open(restricted.sender(slack), slack, f"add {token} 50").startswith("cr_")


def test_click_after_expiry_closes_the_card_and_sends_nothing(
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    token: str,
    tmp_path: Path,
) -> None:
    """A Confirm after the TTL turns the card to expired and calls nothing."""
    # The sweep is slowed down so that it is the click, not the sweep, that finds it expired.
    app = _start(
        slack, smspartner, tmp_path, CONFIRMATION_TTL_SECONDS="0.5", SWEEP_INTERVAL_SECONDS="600"
    )
    try:
        sender = app.sender(slack)
        request_id = _open(sender, slack, f"add {token} 5")
        store = Store.from_url(app.env["DATABASE_URL"])
        request = store.get(request_id)
        assert request is not None
        # Wait (on the clock, not on a guess) until the request's own expiry has passed.
        _wait_until_past(request.expires_at)
        sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
        _card_shows(slack, token, "Expired")
        stored = store.get(request_id)
        assert stored is not None and stored.status is Status.EXPIRED
        store.close()
        assert smspartner.transfers == []
        url = slack.response_url(f"late-{token}")
        sender.click(CANCEL_ACTION_ID, request_id, user_id="UREQ", response_url=url)
        assert "expired" in _ephemeral(slack, f"late-{token}")
    finally:
        app.stop()


def _wait_until_past(moment: dt.datetime) -> None:
    remaining = (moment - dt.datetime.now(dt.UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining + 0.05)


def test_pending_request_survives_a_restart(
    slack: FakeSlack, smspartner: FakeSMSPartner, token: str, tmp_path: Path
) -> None:
    """Command, restart the app, then Confirm: the new process sends it and shows the result."""
    first = _start(slack, smspartner, tmp_path)
    request_id = _open(first.sender(slack), slack, f"remove {token} 20")
    first.stop()
    assert first.process is not None and first.process.returncode == 0
    second = _start(slack, smspartner, tmp_path)
    try:
        second.sender(slack).click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
        _card_shows(slack, token, "Removed")
        assert len(smspartner.transfers) == 1
    finally:
        second.stop()
