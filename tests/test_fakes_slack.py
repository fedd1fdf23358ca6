"""The Slack test tooling: FakeSlack answers as Slack does, SlackSender signs as Slack does."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackSender, sign

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
CARD_BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Move *10 EUR* to `sub-1`?"}},
    {
        "type": "actions",
        "block_id": "credit_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "credit_confirm",
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": "req-1",
            }
        ],
    },
]


class QuietRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test output."""


@dataclass
class RunningApp:
    url: str
    clicks: queue.Queue[dict[str, Any]]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=fake.api_url)


@pytest.fixture
def bolt_app(client: WebClient) -> Iterator[RunningApp]:
    clicks: queue.Queue[dict[str, Any]] = queue.Queue()
    # The token comes from `client`; passing it to App as well only logs that it is unused.
    app = App(client=client, signing_secret=SIGNING_SECRET)

    @app.command("/credit")
    def credit(ack: Any, command: dict[str, Any], client: WebClient, respond: Any) -> None:
        ack()
        client.chat_postMessage(channel=command["channel_id"], text="Confirm?", blocks=CARD_BLOCKS)
        respond(text=f"asked by {command['user_id']}: {command['text']}")

    @app.action("credit_confirm")
    def confirm(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        clicks.put({"body": body, "action": action})
        respond(replace_original=True, text=f"confirmed by {body['user']['id']}")

    server: WSGIServer = make_server(
        "127.0.0.1", 0, SlackRequestHandler(app), handler_class=QuietRequestHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield RunningApp(url=f"http://127.0.0.1:{server.server_port}/slack/events", clicks=clicks)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_sign_reproduces_slacks_documented_example() -> None:
    """sign() gives the signature of the worked example in Slack's request-verification doc."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == expected
    verifier = SignatureVerifier("s3cret")
    assert sign("s3cret", 1700000000, b"a=b") == verifier.generate_signature(
        timestamp="1700000000", body="a=b"
    )


def test_signed_command_reaches_listener_and_post_is_recorded(
    fake: FakeSlack, bolt_app: RunningApp
) -> None:
    """A signed /credit reaches Bolt; the fake records chat.postMessage with decoded blocks."""
    sender = SlackSender(bolt_app.url, SIGNING_SECRET)

    reply = sender.command("add sub-1 10,50", response_url=fake.response_url("cmd"))

    assert reply.status_code == 200
    fake.wait_for(lambda f: bool(f.calls_to("chat.postMessage") and f.responses))
    [post] = fake.calls_to("chat.postMessage")
    assert post.token == BOT_TOKEN
    assert post.args["channel"] == "CFIN"
    assert post.args["blocks"] == CARD_BLOCKS
    assert fake.messages[("CFIN", post.response["ts"])]["blocks"] == CARD_BLOCKS
    [answer] = fake.responses
    assert answer.url_id == "cmd"
    assert answer.body["text"] == "asked by UREQ: add sub-1 10,50"


def test_signed_click_reaches_action_listener(
    fake: FakeSlack, client: WebClient, bolt_app: RunningApp
) -> None:
    """A signed click carries user, channel, value, button; replace_original updates the card."""
    ts = client.chat_postMessage(channel="CFIN", text="Confirm?", blocks=CARD_BLOCKS)["ts"]
    sender = SlackSender(bolt_app.url, SIGNING_SECRET)

    reply = sender.click(
        "credit_confirm",
        "req-1",
        user_id="UAPP",
        channel_id="CFIN",
        message=fake.messages[("CFIN", ts)],
        response_url=fake.response_url(channel="CFIN", message_ts=ts),
    )

    assert reply.status_code == 200
    seen = bolt_app.clicks.get(timeout=5)
    assert seen["body"]["user"]["id"] == "UAPP"
    assert seen["body"]["channel"]["id"] == "CFIN"
    assert seen["body"]["container"]["message_ts"] == ts
    assert seen["action"]["value"] == "req-1"
    assert seen["action"]["block_id"] == "credit_actions"
    assert seen["action"]["style"] == "primary"
    fake.wait_for(lambda f: f.messages[("CFIN", ts)]["text"] == "confirmed by UAPP")
    assert fake.messages[("CFIN", ts)]["blocks"] == []


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, "v0=" + "0" * 64), (int(time.time()) - 6 * 60, None)],
    ids=["wrong-signature", "six-minutes-old"],
)
def test_forged_or_replayed_request_gets_401(
    fake: FakeSlack, bolt_app: RunningApp, timestamp: int | None, signature: str | None
) -> None:
    """Bolt refuses a wrong signature and a correctly signed 6-minute-old request with 401."""
    sender = SlackSender(bolt_app.url, SIGNING_SECRET)

    reply = sender.command("help", timestamp=timestamp, signature=signature)

    assert reply.status_code == 401
    assert fake.calls_to("chat.postMessage") == []


def test_fail_next_fails_exactly_the_next_call(fake: FakeSlack, client: WebClient) -> None:
    """fail_next answers ok=false with the error once, then the method works again."""
    fake.fail_next("chat.postMessage")

    with pytest.raises(SlackApiError) as failure:
        client.chat_postMessage(channel="CFIN", text="hi")
    client.chat_postMessage(channel="CFIN", text="hi")

    assert failure.value.response["error"] == "not_in_channel"
    assert [c.response["ok"] for c in fake.calls_to("chat.postMessage")] == [False, True]
    assert len(fake.messages) == 1


def test_chat_update_replaces_the_message_as_slack_does(fake: FakeSlack, client: WebClient) -> None:
    """chat.update keeps blocks it was not sent, drops them on [], and 404s unknown messages."""
    ts = client.chat_postMessage(channel="CFIN", text="card", blocks=CARD_BLOCKS)["ts"]

    client.chat_update(channel="CFIN", ts=ts, text="text only")
    assert fake.messages[("CFIN", ts)]["text"] == "text only"
    assert fake.messages[("CFIN", ts)]["blocks"] == CARD_BLOCKS
    client.chat_update(channel="CFIN", ts=ts, text="done", blocks=[])
    assert fake.messages[("CFIN", ts)]["blocks"] == []
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="CFIN", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


def test_auth_errors_unknown_methods_and_form_encoded_blocks(fake: FakeSlack) -> None:
    """Bad/missing token and unknown methods fail as on Slack; form-encoded blocks get decoded."""
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("users.info", params={"user": "UREQ"})
    assert unknown.value.response["error"] == "unknown_method"

    client.api_call(
        "chat.postMessage", params={"channel": "CFIN", "blocks": '[{"type": "divider"}]'}
    )

    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == [{"type": "divider"}]
    assert fake.calls_to("auth.test")[0].token == "xoxb-wrong"


def test_wait_for_times_out_with_a_summary(fake: FakeSlack, client: WebClient) -> None:
    """wait_for raises AssertionError naming what was recorded when the condition never holds."""
    client.auth_test()

    with pytest.raises(AssertionError, match=r"auth\.test"):
        fake.wait_for(lambda f: bool(f.calls_to("chat.delete")), timeout=0.05)
