"""The signature is checked once, by the HTTP server, before Bolt sees anything (Bolt's own
check is off for that reason): unsigned or wrongly signed requests still get 401 and move
nothing, and each body is parsed once, a command whose text says "payload" included."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain import Status
from bot.slack.blocks import CONFIRM_ACTION_ID
from bot.store import Store
from tests.e2e import (
    API_KEY,
    BOT_TOKEN,
    AppProcess,
    app_env,
    card_posted,
    cards_about,
    open_request,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender

OTHER_SECRET = "not-the-signing-secret-" + "0" * 16


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[AppProcess, FakeSlack, FakeSMSPartner, Store]]:
    with (
        FakeSlack(bot_token=BOT_TOKEN) as slack,
        FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("1000.000")) as smspartner,
    ):
        database = f"sqlite:///{tmp_path / 'credit_bot.db'}"
        for token in ("sub-payload", "sub-click"):
            smspartner.add_subaccount(token, Decimal("100.000"))
        env = app_env(slack=slack, smspartner=smspartner, database_url=database)
        app = AppProcess(env=env, workdir=tmp_path).start()
        store = Store.from_url(database)
        try:
            yield app, slack, smspartner, store
        finally:
            app.stop()
            store.close()


def test_only_requests_signed_with_the_secret_reach_the_app(
    rig: tuple[AppProcess, FakeSlack, FakeSMSPartner, Store],
) -> None:
    """A command and a click signed with another secret, or not at all, get 401 and open or
    send nothing; the same command signed right opens its request."""
    app, slack, smspartner, store = rig
    sender = app.sender(slack)
    forger = SlackSender(app.events_url, OTHER_SECRET, response_url_factory=slack.response_url)
    text = "add sub-payload 5 payload for the spring campaign"

    assert forger.command(text).status_code == 401
    assert sender.command(text, signature="v0=" + "0" * 64).status_code == 401
    assert sender.command(text, signature="v0=not-hex").status_code == 401
    # Parsed right once: a command's text may say "payload" (Bolt alone would read nothing).
    assert sender.command(text).status_code == 200
    card_posted(slack, "sub-payload")
    assert len(cards_about(slack, "sub-payload")) == 1

    request_id = open_request(sender, slack, "add sub-click 5")
    forged = forger.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    assert forged.status_code == 401
    zeros = sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP", signature="v0=" + "0" * 64)
    assert zeros.status_code == 401
    request = store.get(request_id)
    assert request is not None and request.status is Status.PENDING
    assert smspartner.transfers == []
