"""The demo's stand-ins of SMS Partner and Slack, on loopback, through the app's real clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.demo import seed
from bot.demo.slack_api import ResponseTarget, SlackStandIn
from bot.demo.slack_events import SlackEvents, sign
from bot.demo.smspartner_api import PREFIX, SMSPartnerStandIn
from bot.demo.wsgi import WsgiApp
from bot.smspartner.client import APIError, SMSPartnerClient
from bot.smspartner.errors import OutcomeUnknownError

API_KEY = "demo-test-api-key-0123456789"
BOT_TOKEN = "xoxb-demo-test-token"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the tests read answers."""


def _serve(app: WsgiApp) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def smspartner() -> Iterator[tuple[SMSPartnerStandIn, str]]:
    stand_in = SMSPartnerStandIn(
        api_key=API_KEY, main_balance=seed.MAIN_BALANCE, subaccounts=seed.SUBACCOUNTS
    )
    for url in _serve(stand_in):
        yield stand_in, f"{url}{PREFIX}"


@pytest.fixture
def late_smspartner() -> Iterator[tuple[SMSPartnerStandIn, str]]:
    """The demo's stand-in with answers held until it is closed (far past any timeout)."""
    stand_in = SMSPartnerStandIn(
        api_key=API_KEY,
        main_balance=seed.MAIN_BALANCE,
        subaccounts=seed.SUBACCOUNTS,
        late_answer_seconds=300,
    )
    try:
        for url in _serve(stand_in):
            yield stand_in, f"{url}{PREFIX}"
    finally:
        stand_in.close()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn(
        bot_token=BOT_TOKEN,
        team_id=seed.TEAM_ID,
        team_domain=seed.TEAM_DOMAIN,
        bot_user_id=seed.BOT_USER_ID,
        usergroups={seed.APPROVERS_GROUP_ID: [p.user_id for p in seed.APPROVERS]},
    )
    for url in _serve(stand_in):
        stand_in.base_url = url
        yield stand_in


def _client(base_url: str, api_key: str = API_KEY) -> SMSPartnerClient:
    return SMSPartnerClient(
        api_key=api_key, base_url=base_url, timeout=5, session=requests.Session()
    )


def _web(slack: SlackStandIn, token: str = BOT_TOKEN) -> WebClient:
    return WebClient(token=token, base_url=f"{slack.base_url}/slack/api/", timeout=5)


# -- SMS Partner ---------------------------------------------------------------------------


def test_add_and_remove_move_exact_balances(smspartner: tuple[SMSPartnerStandIn, str]) -> None:
    """The real client's add and remove move the seeded balances, three decimals kept."""
    stand_in, url = smspartner
    added = _client(url).add_credit("lyon-store", Decimal("10.50"))
    assert (added.main_balance, added.subaccount_balance) == (
        Decimal("2858.700"),
        Decimal("11.300"),
    )
    removed = _client(url).remove_credit("lyon-store", Decimal("0.30"))
    assert removed.subaccount_balance == Decimal("11.000")
    assert removed.main_balance == Decimal("2859.000")
    balances = stand_in.balances()
    assert balances["main"] == "2859.000"
    assert [m["credit"] for m in balances["moves"]] == ["10.500", "0.300"]


def test_a_subaccount_that_never_answers_moves_the_money_and_the_outcome_is_unknown(
    late_smspartner: tuple[SMSPartnerStandIn, str],
) -> None:
    """night-batch: the transfer is carried out but its answer comes too late for the real
    client, which says the outcome is unknown; the balances show the money did move."""
    stand_in, url = late_smspartner
    client = SMSPartnerClient(
        api_key=API_KEY, base_url=url, timeout=0.5, session=requests.Session()
    )
    with pytest.raises(OutcomeUnknownError):
        client.add_credit("night-batch", Decimal("25"))
    stand_in.close()  # the held answer goes, so the server's thread is free
    balances = stand_in.balances()
    night = next(s for s in balances["subaccounts"] if s["token"] == "night-batch")
    assert night["balance"] == "65.000"
    assert balances["main"] == "2844.200"
    assert client.main_account().balance == Decimal("2844.200")  # reads answer at once


def test_only_the_silent_subaccount_answers_late(
    late_smspartner: tuple[SMSPartnerStandIn, str],
) -> None:
    """Every other sub-account's transfer answers at once, even with answers being held."""
    _stand_in, url = late_smspartner
    client = SMSPartnerClient(api_key=API_KEY, base_url=url, timeout=5, session=requests.Session())
    assert client.add_credit("paris-store", Decimal("1")).subaccount_balance == Decimal("62.800")


@pytest.mark.parametrize(
    ("token", "amount", "api_key", "code"),
    [
        ("nope", Decimal("1"), API_KEY, 7),
        ("lyon-store", Decimal("5"), API_KEY, 8),  # remove more than its 0.800
        ("paris-store", Decimal("1"), "wrong-key-0123456789", 10),
    ],
)
def test_refusals_carry_the_vendors_codes(
    smspartner: tuple[SMSPartnerStandIn, str],
    token: str,
    amount: Decimal,
    api_key: str,
    code: int,
) -> None:
    """Unknown sub-account 7, insufficient credit 8, bad key 10; nothing moves."""
    stand_in, url = smspartner
    before = stand_in.balances()
    with pytest.raises(APIError) as refused:
        _client(url, api_key).remove_credit(token, amount)
    assert refused.value.code == code
    assert stand_in.balances() == before


def test_removing_from_an_empty_subaccount_is_code_6(
    smspartner: tuple[SMSPartnerStandIn, str],
) -> None:
    """Taking a sub-account to 0, then asking for more: the balance must be above 0."""
    _, url = smspartner
    _client(url).remove_credit("lyon-store", Decimal("0.80"))
    with pytest.raises(APIError) as refused:
        _client(url).remove_credit("lyon-store", Decimal("0.01"))
    assert refused.value.code == 6


def test_me_gives_the_main_balance_as_a_string(smspartner: tuple[SMSPartnerStandIn, str]) -> None:
    """GET /me: the main balance as a 3-decimal string; a wrong key is code 10."""
    _, url = smspartner
    me = requests.get(f"{url}/me", params={"apiKey": API_KEY}, timeout=5).json()
    assert me["success"] is True
    assert me["credits"]["balance"] == me["credits"]["solde"] == "2869.200"
    assert me["credits"]["currency"] == "EUR"
    refused = requests.get(f"{url}/me", params={"apiKey": "bad-key-0123456"}, timeout=5).json()
    assert (refused["success"], refused["code"]) == (False, 10)


def test_the_subaccount_list_pages_by_20_with_each_ones_own_key(
    smspartner: tuple[SMSPartnerStandIn, str],
) -> None:
    """Page 1 holds every seeded sub-account; page 2 is empty; keys are in the list
    but never in what the page is shown."""
    stand_in, url = smspartner
    first = requests.get(
        f"{url}/subaccount/list", params={"apiKey": API_KEY, "page": "1"}, timeout=5
    ).json()
    count = len(seed.SUBACCOUNTS)
    assert (first["total"], first["nb_per_page"], first["page"]) == (count, 20, 1)
    tokens = [item["token"] for item in first["data"]]
    assert tokens == [sub.token for sub in seed.SUBACCOUNTS]
    assert first["data"][1]["credits"] == {"balance": "0.800", "currency": "EUR"}
    keys = {item["apiKey"] for item in first["data"]}
    assert len(keys) == count
    shown = json.dumps(stand_in.balances())
    assert not any(key in shown for key in keys) and API_KEY not in shown
    second = requests.get(
        f"{url}/subaccount/list", params={"apiKey": API_KEY, "page": "2"}, timeout=5
    ).json()
    assert (second["page"], second["data"]) == (2, [])


# -- Slack ---------------------------------------------------------------------------------


def test_post_then_update_keeps_blocks_unless_given(slack: SlackStandIn) -> None:
    """chat.update without blocks keeps the message's blocks, as Slack does."""
    web = _web(slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    posted = web.chat_postMessage(channel=seed.CHANNEL_ID, text="hi", blocks=blocks)
    web.chat_update(channel=seed.CHANNEL_ID, ts=posted["ts"], text="changed")
    [message] = slack.timeline(seed.CHANNEL_ID, seed.REQUESTER.user_id)
    assert (message.text, message.blocks, message.edited) == ("changed", blocks, True)
    web.chat_update(channel=seed.CHANNEL_ID, ts=posted["ts"], text="gone", blocks=[])
    assert slack.timeline(seed.CHANNEL_ID, seed.REQUESTER.user_id)[0].blocks == []


def test_web_api_errors_are_slacks(slack: SlackStandIn) -> None:
    """Wrong token, unknown message, empty message: Slack's error codes."""
    with pytest.raises(SlackApiError) as wrong:
        _web(slack, "xoxb-not-the-token").auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        _web(slack).chat_update(channel=seed.CHANNEL_ID, ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    # slack_sdk itself warns before sending an empty message: ask the stand-in directly.
    empty = slack.call("chat.postMessage", {"channel": seed.CHANNEL_ID, "text": ""}, BOT_TOKEN)
    assert empty == {"ok": False, "error": "no_text"}
    assert _web(slack).auth_test()["user_id"] == seed.BOT_USER_ID


def test_ephemeral_messages_are_seen_only_by_their_person(slack: SlackStandIn) -> None:
    """chat.postEphemeral shows the message to its person alone, in the channel's order."""
    web = _web(slack)
    web.chat_postMessage(channel=seed.CHANNEL_ID, text="for everyone")
    web.chat_postEphemeral(channel=seed.CHANNEL_ID, user=seed.OUTSIDER.user_id, text="just you")
    seen_by_outsider = [m.text for m in slack.timeline(seed.CHANNEL_ID, seed.OUTSIDER.user_id)]
    seen_by_requester = [m.text for m in slack.timeline(seed.CHANNEL_ID, seed.REQUESTER.user_id)]
    assert seen_by_outsider == ["for everyone", "just you"]
    assert seen_by_requester == ["for everyone"]


def test_response_urls_replace_post_or_whisper(slack: SlackStandIn) -> None:
    """replace_original replaces the clicked message; in_channel posts; the rest is
    ephemeral to whoever clicked; an unknown url is refused."""
    web = _web(slack)
    card = web.chat_postMessage(channel=seed.CHANNEL_ID, text="card")
    clicked = ResponseTarget(
        user_id=seed.APPROVER_1.user_id, channel=seed.CHANNEL_ID, message_ts=card["ts"]
    )
    assert (
        WebhookClient(slack.response_url(clicked))
        .send_dict({"text": "replaced", "replace_original": True})
        .status_code
        == 200
    )
    assert slack.message(seed.CHANNEL_ID, card["ts"]).text == "replaced"  # type: ignore[union-attr]
    WebhookClient(slack.response_url(clicked)).send_dict(
        {"text": "note", "response_type": "ephemeral"}
    )
    WebhookClient(slack.response_url(clicked)).send_dict(
        {"text": "shout", "response_type": "in_channel"}
    )
    approver = [m.text for m in slack.timeline(seed.CHANNEL_ID, seed.APPROVER_1.user_id)]
    others = [m.text for m in slack.timeline(seed.CHANNEL_ID, seed.REQUESTER.user_id)]
    assert approver == ["replaced", "note", "shout"]
    assert others == ["replaced", "shout"]
    lost = requests.post(f"{slack.base_url}/slack/response/unknown", json={"text": "x"}, timeout=5)
    assert lost.status_code == 404


def test_views_publish_keeps_the_last_home_per_person(slack: SlackStandIn) -> None:
    """The last view published to a person is their Home; a stale hash is refused."""
    web = _web(slack)
    first = web.views_publish(
        user_id=seed.APPROVER_1.user_id,
        view={"type": "home", "blocks": [{"type": "divider"}]},
    )
    web.views_publish(user_id=seed.APPROVER_1.user_id, view={"type": "home", "blocks": []})
    home = slack.home(seed.APPROVER_1.user_id)
    assert home is not None and home.view["blocks"] == [] and home.id == first["view"]["id"]
    assert slack.home(seed.APPROVER_2.user_id) is None
    with pytest.raises(SlackApiError) as stale:
        web.views_publish(
            user_id=seed.APPROVER_1.user_id,
            view={"type": "home", "blocks": []},
            hash=first["view"]["hash"],
        )
    assert stale.value.response["error"] == "hash_conflict"


def test_usergroups_users_list_names_the_approvers(slack: SlackStandIn) -> None:
    """The seeded group holds both approvers; an unknown group is Slack's no_such_subteam."""
    users = _web(slack).usergroups_users_list(usergroup=seed.APPROVERS_GROUP_ID)["users"]
    assert users == [p.user_id for p in seed.APPROVERS]
    with pytest.raises(SlackApiError) as unknown:
        _web(slack).usergroups_users_list(usergroup="S0NOPE")
    assert unknown.value.response["error"] == "no_such_subteam"


def test_signatures_are_slacks() -> None:
    """The signature of Slack's documented example request ("Verifying requests from Slack")."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
        b"&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
        b"%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


# -- what the page sends the app -------------------------------------------------------------


class _Capture:
    """A request URL that keeps what it was sent and answers an empty ack."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.received.append((headers, body))
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]


def test_commands_clicks_and_home_events_are_signed_as_slack_signs(slack: SlackStandIn) -> None:
    """slack_sdk's own verifier accepts each request; a Home click carries a view container
    and no response_url, a message click its message and a response_url bound to it."""
    capture = _Capture()
    for url in _serve(capture):
        events = SlackEvents(
            events_url=f"{url}/slack/events", signing_secret="s3cret-demo", slack=slack
        )
        card = _web(slack).chat_postMessage(channel=seed.CHANNEL_ID, text="card", blocks=[])
        message = slack.message(seed.CHANNEL_ID, card["ts"])
        assert message is not None
        _web(slack).views_publish(
            user_id=seed.APPROVER_1.user_id, view={"type": "home", "blocks": []}
        )
        home = slack.home(seed.APPROVER_1.user_id)
        assert home is not None
        action = {"action_id": "credit_confirm", "block_id": "b", "value": "cr_x"}
        assert events.command(seed.REQUESTER, seed.CHANNEL_ID, "help").status == 200
        events.click_in_message(seed.APPROVER_1, message, action)
        events.click_in_home(seed.APPROVER_1, home, action)
        events.home_opened(seed.APPROVER_1, home)
    verifier = SignatureVerifier("s3cret-demo")
    for headers, body in capture.received:
        assert verifier.is_valid_request(body, headers)
    command, in_message, in_home, opened = (body for _, body in capture.received)
    assert parse_qs(command.decode())["text"] == ["help"]
    clicked = json.loads(parse_qs(in_message.decode())["payload"][0])
    assert clicked["container"]["message_ts"] == card["ts"]
    assert clicked["message"]["ts"] == card["ts"]
    assert clicked["response_url"].startswith(f"{slack.base_url}/slack/response/")
    from_home = json.loads(parse_qs(in_home.decode())["payload"][0])
    assert from_home["container"] == {"type": "view", "view_id": home.id}
    assert "response_url" not in from_home and "channel" not in from_home
    assert from_home["view"]["hash"] == home.hash
    event = json.loads(opened)
    assert (event["type"], event["event"]["type"]) == ("event_callback", "app_home_opened")
