"""Security pass (issue 5), end to end through the real app: replayed requests, guessable
request ids, who counts as the approver, what the logs hold, where the secrets travel, and
mrkdwn injection.

One app process (HTTP mode, SQLite in a tmp dir, approvers UAPP and UAPP2, requester UREQ)
serves the module; one more runs at DEBUG level to show no secret reaches even those logs.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from bot.domain import Status
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID
from bot.store import Store, new_request_id
from bot.store import requests as store_module
from tests.e2e import API_KEY, BOT_TOKEN, SIGNING_SECRET, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import FORM, SlackSender, sign

SECRETS = (BOT_TOKEN, SIGNING_SECRET, API_KEY)
REPLAY_WINDOW_SECONDS = 5 * 60
REQUEST_ID = re.compile(r"cr_[A-Za-z0-9_-]{22}")
ID_SAMPLES = 20_000
# Not `_italic_`: `_` is a token character (SPEC §2), and tokens are shown in code spans.
MENTION_TOKENS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<https://evil.example|x>",
    "<mailto:boss@example.com|boss>",
    "<@UAPP>",
    "<#CFIN>",
    "<!subteam^S0123>",
    "*bold*",
    "~strike~",
    "`code`",
    "&lt;!channel&gt;",
]
# Only our own user mentions and date tokens may reach Slack.
_ANGLE = re.compile(r"<[^<>]*>")
_ALLOWED_ANGLE = re.compile(r"<@[UW][A-Z0-9]+>|<!date\^[0-9]+\^[^<>|]*\|[^<>]*>")


# -- fixtures ----------------------------------------------------------------------------------

# More than the tests of this module use, each its own.
TOKEN_POOL = 80


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("5000.000")) as fake:
        yield fake


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security") / "credit_bot.db"


@pytest.fixture(scope="module")
def app(
    slack: FakeSlack, smspartner: FakeSMSPartner, database_file: Path, _fresh_tokens: Iterator[str]
) -> Iterator[AppProcess]:
    env = app_env(slack=slack, smspartner=smspartner, database_url=f"sqlite:///{database_file}")
    process = AppProcess(env=env, workdir=database_file.parent).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sender(app: AppProcess, slack: FakeSlack) -> SlackSender:
    return app.sender(slack)


@pytest.fixture(scope="module")
def store(database_file: Path, app: AppProcess) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{database_file}")
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _clean_smspartner(smspartner: FakeSMSPartner) -> None:
    smspartner.reset()


@pytest.fixture(scope="module")
def _fresh_tokens(smspartner: FakeSMSPartner) -> Iterator[str]:
    """Sub-accounts made before the app first reads SMS Partner's list: the directory reads
    it again at most every few seconds, so one made between two tests could be refused."""
    names = [f"sec-{secrets.token_hex(4)}" for _ in range(TOKEN_POOL)]
    for name in names:
        smspartner.add_subaccount(name, Decimal("100.000"))
    return iter(names)


@pytest.fixture
def token(_fresh_tokens: Iterator[str]) -> str:
    """A fresh sub-account with 100 EUR on it, used by this test only."""
    return next(_fresh_tokens)


# -- helpers -----------------------------------------------------------------------------------


def _cards_about(slack: FakeSlack, token: str) -> list[Any]:
    return [c for c in slack.calls_to("chat.postMessage") if token in json.dumps(c.args)]


def _open(sender: SlackSender, slack: FakeSlack, token: str, amount: str = "5") -> tuple[str, str]:
    """Ask for `amount` EUR into `token` as UREQ in CFIN; the request id and the card's ts."""
    assert sender.command(f"add {token} {amount}", user_id="UREQ").text == ""
    slack.wait_for(lambda fake: len(_cards_about(fake, token)) == 1)
    card = _cards_about(slack, token)[0]
    return _request_id(card.args), str(card.response["ts"])


def _request_id(card: dict[str, Any]) -> str:
    for block in card["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == CONFIRM_ACTION_ID:
                return str(element["value"])
    raise AssertionError(f"no Confirm button in {card}")


def _card_shows(slack: FakeSlack, token: str, fragment: str) -> dict[str, Any]:
    """Wait until the card about `token` shows `fragment`; return it as users see it."""

    def matching(fake: FakeSlack) -> list[dict[str, Any]]:
        return [
            m
            for m in fake.messages.values()
            if token in json.dumps(m) and fragment in json.dumps(m, ensure_ascii=False)
        ]

    slack.wait_for(lambda fake: bool(matching(fake)))
    return matching(slack)[0]


def _answer(slack: FakeSlack, url_id: str) -> str:
    """Wait for the app's answer through the response_url `url_id`; return its text."""
    slack.wait_for(lambda fake: any(r.url_id == url_id for r in fake.responses))
    return str(next(r.body for r in slack.responses if r.url_id == url_id)["text"])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def pings_or_links(value: Any) -> list[str]:
    """Every `<...>` in `value` that is not one of our own mentions or dates."""
    return [
        found
        for text in _strings(value)
        for found in _ANGLE.findall(text)
        if not _ALLOWED_ANGLE.fullmatch(found)
    ]


def _log_records(log: str) -> list[dict[str, Any]]:
    """Every line of the log as JSON; a line that is not JSON fails the test."""
    # Not splitlines(): it would also split on U+2028 or U+0085 inside a JSON string.
    return [json.loads(line) for line in log.split("\n") if line]


# -- replay ------------------------------------------------------------------------------------


def test_signed_request_replayed_after_five_minutes_is_refused(
    sender: SlackSender, slack: FakeSlack, token: str
) -> None:
    """A body signed correctly but 5 minutes ago gets 401; re-signed now, the same body works."""
    body = urlencode(sender.command_fields(f"add {token} 5", user_id="UREQ")).encode()
    stale = int(time.time()) - REPLAY_WINDOW_SECONDS - 10
    assert sender.post(body, FORM, timestamp=stale).status_code == 401
    ahead = int(time.time()) + REPLAY_WINDOW_SECONDS + 10
    assert sender.post(body, FORM, timestamp=ahead).status_code == 401
    fresh = sender.post(body, FORM)
    assert (fresh.status_code, fresh.text) == (200, "")
    slack.wait_for(lambda fake: len(_cards_about(fake, token)) == 1)
    # Requests are handled in order: the card is the fresh one's, the stale ones posted none.
    assert len(_cards_about(slack, token)) == 1


def test_click_replayed_within_five_minutes_sends_once(
    slack: FakeSlack, smspartner: FakeSMSPartner, token: str, sender: SlackSender
) -> None:
    """The same signed Confirm, byte for byte, sent twice: one transfer; the replay is told."""
    request_id, _ts = _open(sender, slack, token)
    url = slack.response_url(f"replay-{token}")
    payload = sender.click_payload(CONFIRM_ACTION_ID, request_id, user_id="UAPP", response_url=url)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    now = int(time.time())
    signature = sign(SIGNING_SECRET, now, body)
    for _ in range(2):
        assert sender.post(body, FORM, timestamp=now, signature=signature).status_code == 200
    assert "already" in _answer(slack, f"replay-{token}")
    _card_shows(slack, token, "Added")
    assert len(smspartner.transfers) == 1


# -- request ids -------------------------------------------------------------------------------


def test_request_ids_are_128_bits_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """new_request_id takes 16 bytes (128 bits) from the `secrets` module, nothing else."""
    asked: list[int | None] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        asked.append(nbytes)
        return real(nbytes)

    monkeypatch.setattr(store_module.secrets, "token_urlsafe", spy)
    request_id = new_request_id()
    assert asked == [16]
    assert REQUEST_ID.fullmatch(request_id)
    assert len(base64.urlsafe_b64decode(request_id[3:] + "==")) == 16


def test_request_ids_show_no_pattern() -> None:
    """20 000 ids: all distinct, every bit a fair coin, no order, no shared prefix."""
    ids = [new_request_id() for _ in range(ID_SAMPLES)]
    assert all(REQUEST_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == ID_SAMPLES
    # 8 characters are 48 bits: a counter or a clock would repeat them; chance would not.
    assert len({i[3:11] for i in ids}) == ID_SAMPLES
    numbers = [int.from_bytes(base64.urlsafe_b64decode(i[3:] + "=="), "big") for i in ids]
    for bit in range(128):
        ones = sum(n >> bit & 1 for n in numbers) / ID_SAMPLES
        assert 0.47 < ones < 0.53, f"bit {bit} is set in {ones:.1%} of ids"
    pairs = list(itertools.pairwise(numbers))
    rising = sum(b > a for a, b in pairs) / len(pairs)
    assert 0.47 < rising < 0.53  # not sequential, not sorted
    flipped = sum((a ^ b).bit_count() for a, b in pairs) / len(pairs)
    assert 63 < flipped < 65  # each next id differs from the last in half its bits
    assert len({b - a for a, b in pairs}) == len(pairs)  # no constant step


def test_cards_carry_ids_of_the_same_shape(
    slack: FakeSlack, sender: SlackSender, _fresh_tokens: Iterator[str]
) -> None:
    """The ids the running app puts on its buttons are such 128-bit ids, all different."""
    for _ in range(3):
        _open(sender, slack, next(_fresh_tokens))
    ids = [_request_id(c.args) for c in slack.calls_to("chat.postMessage")]
    assert len(ids) >= 3
    assert all(REQUEST_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


# -- who approves ------------------------------------------------------------------------------


def _click_naming_uapp(
    sender: SlackSender, slack: FakeSlack, request_id: str, ts: str, *, user_id: str, url: str
) -> dict[str, Any]:
    """A Confirm by `user_id` on the card as shown, every other field naming UAPP."""
    payload = sender.click_payload(
        CONFIRM_ACTION_ID,
        request_id,
        user_id=user_id,
        message=slack.messages[("CFIN", ts)],
        response_url=url,
    )
    payload["user"].update(name="UAPP", username="UAPP", real_name="<@UAPP>")
    payload.update(user_id="UAPP", approver="UAPP", approver_id="UAPP")
    payload["message"]["text"] = "Approved by <@UAPP>"
    payload["actions"][0]["text"]["text"] = "Approve as <@UAPP>"
    payload["actions"][0]["approver"] = "UAPP"
    payload["state"] = {
        "values": {"who": {"approver": {"type": "users_select", "selected_user": "UAPP"}}}
    }
    return payload


def test_non_approver_naming_an_approver_elsewhere_is_refused(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, store: Store, token: str
) -> None:
    """A click by a non-approver whose other fields name UAPP is refused; nothing changes."""
    request_id, ts = _open(sender, slack, token)
    url = slack.response_url(f"impostor-{token}")
    payload = _click_naming_uapp(sender, slack, request_id, ts, user_id="UNOBODY", url=url)
    assert sender.raw_payload(payload).status_code == 200
    assert "not allowed to approve" in _answer(slack, f"impostor-{token}")
    stored = store.get(request_id)
    assert stored is not None
    assert (stored.status, stored.approver_id) == (Status.PENDING, None)
    assert smspartner.transfers == []
    assert not any(token in json.dumps(c.args) for c in slack.calls_to("chat.update"))


def test_approver_recorded_is_the_signed_user(
    app: AppProcess,
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    store: Store,
    token: str,
) -> None:
    """UAPP2 clicks a payload naming UAPP everywhere else: UAPP2 is recorded, shown, logged."""
    request_id, ts = _open(sender, slack, token)
    url = slack.response_url(f"approver-{token}")
    payload = _click_naming_uapp(sender, slack, request_id, ts, user_id="UAPP2", url=url)
    assert sender.raw_payload(payload).status_code == 200
    shown = json.dumps(_card_shows(slack, token, "Added"))
    assert "<@UAPP2>" in shown and "<@UAPP>" not in shown
    stored = store.get(request_id)
    assert stored is not None
    assert (stored.status, stored.approver_id) == (Status.SUCCEEDED, "UAPP2")
    actors = {event.status: event.actor_id for event in store.events(request_id)}
    assert actors[Status.EXECUTING] == "UAPP2"
    assert len(smspartner.transfers) == 1
    logged = [r for r in _log_records(app.logs()) if r.get("request_id") == request_id]
    assert {r.get("approver_id") for r in logged if r["event"] == "credit.succeeded"} == {"UAPP2"}


# -- logs --------------------------------------------------------------------------------------


def test_logs_are_json_with_the_facts_and_no_secret(
    app: AppProcess, sender: SlackSender, slack: FakeSlack, token: str
) -> None:
    """Every log line is JSON; a transfer's lines carry its id, users, amount and outcome."""
    request_id, _ts = _open(sender, slack, token, amount="12,34")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    _card_shows(slack, token, "Added")
    log = app.logs()
    records = _log_records(log)
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    events = {r["event"]: r for r in records if r.get("request_id") == request_id}
    assert {"credit.requested", "click.confirm", "credit.executing", "credit.succeeded"} <= set(
        events
    )
    requested, done = events["credit.requested"], events["credit.succeeded"]
    assert (requested["requester_id"], requested["amount"], requested["outcome"]) == (
        "UREQ",
        "12.34",
        "pending",
    )
    assert (done["requester_id"], done["approver_id"], done["amount"], done["outcome"]) == (
        "UREQ",
        "UAPP",
        "12.34",
        "succeeded",
    )
    assert events["click.confirm"]["user_id"] == "UAPP"
    for secret in SECRETS:
        assert secret not in log


def test_unsigned_request_cannot_flood_or_split_the_log(
    app: AppProcess, sender: SlackSender
) -> None:
    """Bolt logs a badly signed body: capped, and one JSON record per line even for U+2028."""
    start = len(app.logs())
    body = ("text=\u2028\u0085\u2029" + "x" * 500_000).encode()
    assert sender.post(body, FORM, signature="v0=" + "0" * 64).status_code == 401
    written = app.logs()[start:]
    assert len(written) < 10_000
    assert all(json.loads(line) for line in written.splitlines())


def test_api_key_echoed_by_smspartner_reaches_neither_slack_nor_logs(
    app: AppProcess, sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """SMS Partner quoting our key in an error: the card shows the error without the key."""
    request_id, _ts = _open(sender, slack, token)
    smspartner.force_error(42, f"Cle {API_KEY} inconnue pour ce compte")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    shown = json.dumps(_card_shows(slack, token, "did not go through"))
    assert "[redacted]" in shown
    assert API_KEY not in json.dumps([c.args for c in slack.calls])
    assert API_KEY not in app.logs()


def test_debug_logs_hold_no_secret(
    slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path, token: str
) -> None:
    """At DEBUG level (HTTP libraries log requests there), a whole transfer logs no secret."""
    env = app_env(
        slack=slack, smspartner=smspartner, database_url=f"sqlite:///{tmp_path / 'debug.db'}"
    )
    # `--log-level` comes before the sub-command: rewrite `python -m bot run …` on the way.
    with_debug = ("sh", "-c", 'shift 2; exec "$0" -m bot --log-level DEBUG "$@"')
    debug_app = AppProcess(env=env, workdir=tmp_path, command_prefix=with_debug).start()
    try:
        debug_sender = debug_app.sender(slack)
        request_id, _ts = _open(debug_sender, slack, token)
        debug_sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
        _card_shows(slack, token, "Added")
    finally:
        debug_app.stop()
    log = debug_app.logs()
    assert sum(r["level"] == "debug" for r in _log_records(log)) > 10
    for secret in SECRETS:
        assert secret not in log


# -- where secrets travel ----------------------------------------------------------------------


def test_api_key_goes_only_to_smspartner_in_the_json_body(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """The key is in the POST's JSON body only: not in the path, query or any header."""
    request_id, _ts = _open(sender, slack, token)
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    _card_shows(slack, token, "Added")
    (sent,) = smspartner.transfers
    base = urlsplit(smspartner.base_url)
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/subaccount/credit/add", "")
    assert sent.headers["host"] == base.netloc
    assert sent.headers["content-type"] == "application/json"
    assert sent.json["apiKey"] == API_KEY
    assert API_KEY not in sent.path + sent.query + json.dumps(sent.headers)
    slack_traffic = json.dumps(
        [[c.args, c.headers] for c in slack.calls] + [[r.body, r.headers] for r in slack.responses]
    )
    assert API_KEY not in slack_traffic


def test_redirect_from_smspartner_does_not_carry_the_key_away(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """A 307 to another host is not followed: the key is not re-sent there; the card fails."""
    request_id, _ts = _open(sender, slack, token)
    elsewhere = slack.response_url(f"stolen-{token}")
    smspartner.force_body(b"", http_status=307, headers={"Location": elsewhere})
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    _card_shows(slack, token, "did not go through")
    assert len(smspartner.transfers) == 1
    assert not any(r.url_id == f"stolen-{token}" for r in slack.responses)


def test_bot_token_travels_only_in_the_authorization_header(
    slack: FakeSlack, smspartner: FakeSMSPartner
) -> None:
    """Every Web API call carries the token as a Bearer header and nowhere in its body."""
    calls = slack.calls
    assert len(calls) > 10
    for call in calls:
        assert call.headers.get("authorization") == f"Bearer {BOT_TOKEN}", call.method
        assert BOT_TOKEN not in json.dumps(call.args)
    for response in slack.responses:
        assert BOT_TOKEN not in json.dumps([response.body, response.headers])
    assert all(BOT_TOKEN not in r.body.decode() for r in smspartner.requests)


# -- mrkdwn injection --------------------------------------------------------------------------


@pytest.mark.parametrize("word", MENTION_TOKENS)
@pytest.mark.parametrize("where", ["token", "amount"])
def test_mrkdwn_in_a_command_is_refused(
    word: str, where: str, sender: SlackSender, slack: FakeSlack
) -> None:
    """Mentions, links and formatting as the token or the amount: refused, nothing echoed."""
    posts = len(slack.calls_to("chat.postMessage"))
    text = f"add {word} 5" if where == "token" else f"add sub-1 {word}"
    response = sender.command(text, user_id="UREQ")
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "ephemeral" and ":warning:" in answer["text"]
    assert pings_or_links(answer) == []
    assert word not in answer["text"]  # no input is quoted back
    assert len(slack.calls_to("chat.postMessage")) == posts


def test_vendor_message_cannot_ping_or_link(
    sender: SlackSender, slack: FakeSlack, smspartner: FakeSMSPartner, token: str
) -> None:
    """An SMS Partner error message full of mrkdwn reaches the card escaped."""
    request_id, _ts = _open(sender, slack, token)
    smspartner.force_error(42, "<!channel> <https://evil.example|cliquez ici> <@UBOSS>")
    sender.click(CONFIRM_ACTION_ID, request_id, user_id="UAPP")
    card = _card_shows(slack, token, "did not go through")
    assert pings_or_links(card) == []
    assert "&lt;!channel&gt;" in json.dumps(card)


def test_cancel_and_refusal_notes_cannot_ping(
    sender: SlackSender, slack: FakeSlack, token: str
) -> None:
    """A refusal and a cancellation, by users named like mentions: escaped, no ping."""
    request_id, _ts = _open(sender, slack, token)
    url = slack.response_url(f"odd-{token}")
    payload = sender.click_payload(CONFIRM_ACTION_ID, request_id, user_id="UX", response_url=url)
    payload["user"]["name"] = "<!channel>"
    sender.raw_payload(payload)
    assert "not allowed" in _answer(slack, f"odd-{token}")
    sender.click(CANCEL_ACTION_ID, request_id, user_id="UREQ")
    assert pings_or_links(_card_shows(slack, token, "Cancelled by")) == []


def test_nothing_sent_to_slack_pings_or_links(slack: FakeSlack) -> None:
    """Runs last: no text the app sent to Slack has a ping, a link or a foreign mention."""
    sent = [c.args for c in slack.calls] + [r.body for r in slack.responses]
    assert len(sent) > 20
    assert pings_or_links(sent) == []
    for secret in SECRETS:
        assert secret not in json.dumps(sent)
