"""Fuzzing the real app through signed HTTP requests (issue 5): `/credit` text and fields,
button-click payloads, and bodies that are not Slack's at all.

One app process (`python -m bot run --http`, SQLite in a tmp dir) against the loopback fakes
serves the whole module. Two requests are opened at the start and stay pending throughout:
the fuzz never sends the one click that may legitimately act on them, so any SMS Partner call
at all is a bug. Every click our listeners acknowledge carries its own response_url, and the
test waits for the answer posted to it before looking for what must not have happened.

Run with `-s` to see how many inputs were generated and how many requests were sent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.domain import Status
from bot.slack.blocks import CANCEL_ACTION_ID, CONFIRM_ACTION_ID
from bot.store import Store
from tests.e2e import API_KEY, BOT_TOKEN, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import FORM, SlackSender

APPROVERS = frozenset({"UAPP", "UAPP2"})
REQUESTER = "UREQ"
MAIN_TOKEN = "fuzz-main"
OTHER_TOKEN = "fuzz-other"
SLACK_TEXT_LIMIT = 4000
TEN_KB = 10 * 1024
# Examples per fuzz test: about 35 s for the module on a laptop.
COMMAND_TEXTS = 1000
COMMAND_FIELDS = 300
CLICKS = 1500
GARBAGE = 300

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# Only our own user mentions and date tokens may reach Slack; anything else in <...> would
# ping a channel, link somewhere or mention someone the app did not mean to.
_ANGLE = re.compile(r"<[^<>]*>")
_ALLOWED_ANGLE = re.compile(r"<@[UW][A-Z0-9]+>|<!date\^[0-9]+\^[^<>|]*\|[^<>]*>")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stats() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    print("\nfuzz counts:")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner(api_key=API_KEY, main_balance=Decimal("5000.000")) as fake:
        fake.add_subaccount(MAIN_TOKEN, Decimal("100.000"))
        fake.add_subaccount(OTHER_TOKEN, Decimal("100.000"))
        yield fake


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "credit_bot.db"


@pytest.fixture(scope="module")
def app(slack: FakeSlack, smspartner: FakeSMSPartner, database_file: Path) -> Iterator[AppProcess]:
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


@pytest.fixture(scope="module")
def pending(sender: SlackSender, slack: FakeSlack) -> dict[str, str]:
    """Two pending requests, by UREQ: one in CFIN and one in COTHER; request id -> channel."""
    return {
        _open(sender, slack, f"add {MAIN_TOKEN} 5", channel="CFIN"): "CFIN",
        _open(sender, slack, f"add {OTHER_TOKEN} 5", channel="COTHER"): "COTHER",
    }


@dataclass
class Harness:
    """What a fuzz test drives and watches. Its repr is short on purpose: Hypothesis prints
    a failing test's arguments, and the app's environment is the whole CI environment."""

    app: AppProcess
    sender: SlackSender
    slack: FakeSlack
    smspartner: FakeSMSPartner
    store: Store
    pending: dict[str, str]
    stats: Counter[str] = field(default_factory=Counter)

    def __repr__(self) -> str:
        return "Harness(...)"

    def log_offset(self) -> int:
        assert self.app.log_path is not None
        return self.app.log_path.stat().st_size

    def errors_logged_since(self, offset: int) -> list[str]:
        """Unhandled errors in what the app logged after `offset` (read alone: the whole
        log grows to megabytes, and is read twice per example)."""
        assert self.app.log_path is not None
        with self.app.log_path.open("rb") as log:
            log.seek(offset)
            return unhandled_errors(log.read().decode("utf-8", errors="replace"))


@pytest.fixture(scope="module")
def harness(
    app: AppProcess,
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    store: Store,
    pending: dict[str, str],
    stats: Counter[str],
) -> Harness:
    return Harness(app, sender, slack, smspartner, store, pending, stats)


# -- helpers -----------------------------------------------------------------------------------


def _open(sender: SlackSender, slack: FakeSlack, text: str, *, channel: str) -> str:
    token = text.split()[1]

    def cards(fake: FakeSlack) -> list[dict[str, Any]]:
        return [c.args for c in fake.calls_to("chat.postMessage") if token in json.dumps(c.args)]

    assert sender.command(text, user_id=REQUESTER, channel_id=channel).text == ""
    slack.wait_for(lambda fake: len(cards(fake)) == 1)
    for block in cards(slack)[0]["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == CONFIRM_ACTION_ID:
                return str(element["value"])
    raise AssertionError("no Confirm button")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys too)."""
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


def _sent_to_slack(slack: FakeSlack) -> list[Any]:
    return [c.args for c in slack.calls] + [r.body for r in slack.responses]


def unhandled_errors(log: str) -> list[str]:
    """Log lines of an unhandled error: a traceback (Bolt's and waitress's handlers put it in
    the JSON `error` field), any error-level record, or Bolt's traceback-less report of a
    lazy listener that raised ("Failed to run an internal function")."""
    found = []
    # Not splitlines(): a JSON line may hold U+0085 or U+2028, which it takes for line breaks.
    for line in log.split("\n"):
        if "Traceback" in line or "Failed to run" in line:
            found.append(line)
            continue
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("level") in ("error", "critical"):
                found.append(line)
    return found


def _answer(slack: FakeSlack, url_id: str) -> Any:
    """Wait for the app's answer through the response_url `url_id`; return its body."""
    slack.wait_for(lambda fake: any(r.url_id == url_id for r in fake.responses))
    return next(r.body for r in slack.responses if r.url_id == url_id)


# -- /credit text ------------------------------------------------------------------------------

ACTION_WORDS = [
    "add",
    "remove",
    "help",
    "ADD",
    "Remove",
    "ad",
    "adds",
    "rm",
    "delete",
    "add\u200b",
    "\u0430dd",  # Cyrillic a
    "\uff41\uff44\uff44",  # fullwidth
    "transfer",
]
TOKENS = [
    "sub-1",
    "sub_1.a",
    "a" * 128,
    "a" * 129,
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<https://evil.example|x>",
    "<mailto:a@b.c|x>",
    "<@UAPP>",
    "<#CFIN>",
    "<!subteam^S1>",
    "*bold*",
    "_it_",
    "~s~",
    "`code`",
    "&lt;!channel&gt;",
    "sub/1",
    "s\u00fcb",
    "\uff53\uff55\uff42",
    "sub\u00a01",
    # Bolt reads any form body containing "payload" as an interaction (see test at the end).
    "payload",
]
AMOUNTS = [
    "10",
    "10.5",
    "10,50",
    "0.01",
    "1000",
    "1000.00",
    "1000.01",
    "0",
    "0.00",
    "-5",
    "+5",
    "1e3",
    "1E3",
    "NaN",
    "sNaN",
    "inf",
    "-Infinity",
    "10.555",
    ".5",
    "10.",
    "1,000.50",
    "\u0661\u0660",  # Arabic-Indic 10
    "\uff11\uff10",  # fullwidth 10
    "0x10",
    "1_000",
    "10\u20ac",
    "99999999999999999999",
    "<!channel>",
]
SEPARATORS = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "\u200b"]


def _near_miss(
    action: str, token: str, amount: str, extra: list[str], sep: str, drop: int | None, swap: bool
) -> str:
    words = [action, amount, token] if swap else [action, token, amount]
    if drop is not None:
        del words[drop]
    return sep.join([*words, *extra])


near_miss_commands = st.builds(
    _near_miss,
    st.sampled_from(ACTION_WORDS),
    st.sampled_from(TOKENS) | st.text(max_size=12),
    st.sampled_from(AMOUNTS) | st.text(max_size=8),
    st.lists(st.sampled_from(AMOUNTS + TOKENS), max_size=2),
    st.sampled_from(SEPARATORS),
    st.sampled_from([None, None, None, 0, 1, 2]),
    st.booleans(),
)
long_texts = st.builds(
    lambda piece, times: (piece * times)[:SLACK_TEXT_LIMIT],
    st.text(min_size=1, max_size=50),
    st.integers(min_value=1, max_value=SLACK_TEXT_LIMIT),
)
control_texts = st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]))
command_texts = st.one_of(
    st.text(),
    control_texts,
    long_texts,
    near_miss_commands,
    st.just("add sub-1 " + "9" * (SLACK_TEXT_LIMIT - 10)),
    st.just("add " + "a" * (SLACK_TEXT_LIMIT - 7) + " 10"),
)


def _is_silent_ack(response_text: str) -> bool:
    """The ack of a command is empty (valid: the card follows) or an ephemeral usage."""
    assert "Traceback" not in response_text
    if response_text == "":
        return True
    answer = json.loads(response_text)
    assert answer["response_type"] == "ephemeral"
    assert "Usage" in answer["text"]
    assert pings_or_links(answer) == []
    return False


@settings(FUZZ, max_examples=COMMAND_TEXTS)
@given(text=command_texts)
def test_command_text_never_crashes_or_moves_money(text: str, harness: Harness) -> None:
    """Any `/credit` text: 200 with a private usage or a silent ack, no traceback, no API call."""
    h = harness
    h.stats["command_text.inputs"] += 1
    fields = h.sender.command_fields(text, user_id=REQUESTER, channel_id="CFIN")
    _send_command(h, fields, "command_text")


def _send_command(h: Harness, fields: dict[str, str], kind: str) -> None:
    start = h.log_offset()
    cards = len(h.slack.calls_to("chat.postMessage"))
    answers = len(h.slack.responses) + len(h.slack.calls_to("chat.postEphemeral"))
    body = urlencode(fields).encode("utf-8")
    response = h.sender.post(body, FORM)
    h.stats[f"{kind}.requests"] += 1
    h.stats[f"{kind}.status_{response.status_code}"] += 1
    assert response.status_code == 200
    if _is_silent_ack(response.text):
        h.stats[f"{kind}.cards"] += 1
        # A valid command: its worker posts the card, or answers privately (an unknown
        # sub-account, too little money, a balance or a history), through the response_url
        # or, without one, chat.postEphemeral: wait for any of them.
        h.slack.wait_for(
            lambda fake: (
                len(fake.calls_to("chat.postMessage")) > cards
                or len(fake.responses) + len(fake.calls_to("chat.postEphemeral")) > answers
            )
        )
    assert h.smspartner.transfers == []
    assert h.errors_logged_since(start) == []


slack_ids = st.sampled_from(["UREQ", "UAPP", "CFIN", "W0ENTERPRISE1"]) | st.text(max_size=40)
optional = st.none()


@settings(FUZZ, max_examples=COMMAND_FIELDS)
@given(
    user_id=slack_ids | optional,
    channel_id=slack_ids | optional,
    drop_response_url=st.booleans(),
    text=st.sampled_from(["add fuzz-fields 5", "help", "add x"]),
)
def test_command_fields_never_crash(
    user_id: str | None,
    channel_id: str | None,
    drop_response_url: bool,
    text: str,
    harness: Harness,
) -> None:
    """Missing or odd user and channel ids, no response_url: answered, never a crash."""
    harness.stats["command_fields.inputs"] += 1
    fields = harness.sender.command_fields(text)
    for name, value in (("user_id", user_id), ("channel_id", channel_id)):
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    if drop_response_url:
        del fields["response_url"]
    _send_command(harness, fields, "command_fields")


# -- button clicks -----------------------------------------------------------------------------

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
forged_ids = st.builds(lambda rest: "cr_" + rest, st.text(_ID_CHARS, min_size=10, max_size=60))
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_junk = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
# What Bolt itself reads before any listener (user, channel): it indexes a number or a list
# holding "id" and fails, so bot/server.py refuses those shapes (test_malformed_signed_body...).
bolt_safe_junk = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["id", "name", "channel_id", "x"]), json_junk, max_size=3),
)
user_ids = st.sampled_from(["UAPP", "UAPP2", "UREQ", "USTRANGER"]) | st.text(max_size=20)
channel_ids = st.sampled_from(["CFIN", "COTHER", "CNEW"]) | st.text(max_size=20)


def _sometimes(one_in: int) -> st.SearchStrategy[bool]:
    """True about once in `one_in` draws (not exactly: Hypothesis skews draws on purpose)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


@st.composite
def click_values(draw: st.DrawFn, request_ids: list[str]) -> Any:
    return draw(
        st.one_of(
            st.sampled_from(request_ids),
            forged_ids,
            st.sampled_from(request_ids).map(lambda rid: rid + "x"),
            st.sampled_from(request_ids).map(str.upper),
            st.sampled_from(request_ids).map(lambda rid: f" {rid}"),
            st.sampled_from(request_ids).map(lambda rid: (rid + " ") * (TEN_KB // 30)),
            st.just("x" * TEN_KB),
            st.just("cr_" + "a" * TEN_KB),
            json_junk,
        )
    )


@st.composite
def click_payloads(
    draw: st.DrawFn, sender: SlackSender, request_ids: list[str], response_url: str
) -> dict[str, Any]:
    """A block_actions payload as Slack sends it, then with fields removed or mistyped."""
    # Each choice lists "keep" first and most often: Hypothesis favours the first entries,
    # and most payloads should reach our listeners rather than Bolt's "unhandled request".
    ours = st.sampled_from([CONFIRM_ACTION_ID, CANCEL_ACTION_ID])
    unknown = st.sampled_from(["credit_confirm ", "CREDIT_CONFIRM", "credit_delete", ""]) | st.text(
        max_size=20
    )
    action_id = draw(unknown if draw(_sometimes(4)) else ours)
    payload = sender.click_payload(
        action_id,
        "placeholder",
        user_id=draw(user_ids),
        channel_id=draw(channel_ids),
        response_url=response_url,
    )
    action = payload["actions"][0]
    action["value"] = draw(click_values(request_ids))
    if draw(_sometimes(5)):
        action.pop("value")
    if draw(_sometimes(9)):
        action["action_id"] = draw(json_junk)
    payload["actions"] = [action, *draw(st.lists(json_junk, max_size=2))]
    for name in ("user", "channel"):
        match draw(st.sampled_from(["keep", "keep", "keep", "drop", "junk", "id"])):
            case "drop":
                payload.pop(name)
            case "junk":
                payload[name] = draw(bolt_safe_junk)
            case "id":
                payload[name]["id"] = draw(json_junk)
    match draw(st.sampled_from(["keep", "keep", "drop", "junk", "channel_id"])):
        case "drop":
            payload.pop("container")
        case "junk":
            payload["container"] = draw(json_junk)
        case "channel_id":
            payload["container"]["channel_id"] = draw(json_junk | channel_ids)
    if draw(_sometimes(9)):
        payload["type"] = draw(
            st.sampled_from(["interactive_message", "message_action", "shortcut", ""])
            | st.text(max_size=20)
        )
    if draw(_sometimes(3)):
        # Fields that name someone else than the clicker: never taken for the clicker.
        payload["user_id"] = "UAPP"
        payload["approver"] = "UAPP"
        payload["message"]["text"] = "Approved by <@UAPP>"
    return payload


def _channels_named(payload: dict[str, Any]) -> str:
    return json.dumps([payload.get("channel"), payload.get("container")])


def could_act(payload: dict[str, Any], pending: dict[str, str]) -> bool:
    """True when the click might legitimately confirm or cancel one of the pending requests:
    an allowed user, the request's id, and its channel named anywhere a channel can be."""
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(action, dict):
        return False
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    value = action.get("value")
    if not isinstance(value, str) or value not in pending:
        return False
    if pending[value] not in _channels_named(payload):
        return False
    if not isinstance(user_id, str):
        return False
    if action.get("action_id") == CONFIRM_ACTION_ID:
        return user_id in APPROVERS
    return user_id in APPROVERS or user_id == REQUESTER


CONTENT_TYPES = [
    FORM,
    FORM + "; charset=utf-8",
    "text/plain",
    "multipart/form-data",
    "application/octet-stream",
    "",
    "application/json",  # the payload sent as a JSON body, not form-encoded
]


@settings(FUZZ, max_examples=CLICKS)
@given(data=st.data(), content_type=st.sampled_from(CONTENT_TYPES))
def test_click_payloads_never_crash_or_move_money(
    data: st.DataObject, content_type: str, harness: Harness
) -> None:
    """Any click payload: 200 or 404, no traceback; a private answer; never an API call."""
    h = harness
    h.stats["click.inputs"] += 1
    url_id = f"fz-click-{h.stats['click.inputs']}"
    payload = data.draw(click_payloads(h.sender, list(h.pending), h.slack.response_url(url_id)))
    if could_act(payload, h.pending):
        h.stats["click.left_out_as_legitimate"] += 1
    assume(not could_act(payload, h.pending))
    start = h.log_offset()
    if content_type == "application/json":
        body = json.dumps(payload).encode("utf-8")
    else:
        body = urlencode({"payload": json.dumps(payload)}).encode("utf-8")
    response = h.sender.post(body, content_type)
    h.stats["click.requests"] += 1
    h.stats[f"click.status_{response.status_code}"] += 1
    assert response.status_code in (200, 404), response.text  # 404: no listener matched
    assert "Traceback" not in response.text
    if response.status_code == 200:
        # Acknowledged: our listener ran, and it always answers the clicker, last.
        answer = _answer(h.slack, url_id)
        h.stats["click.answers"] += 1
        assert answer["response_type"] == "ephemeral"
        assert answer["replace_original"] is False
        assert pings_or_links(answer) == []
    assert h.smspartner.transfers == []
    assert h.slack.calls_to("chat.update") == []  # no card changed
    assert h.errors_logged_since(start) == []


def test_pending_requests_still_work_after_the_fuzz(
    sender: SlackSender,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    store: Store,
    pending: dict[str, str],
    stats: Counter[str],
) -> None:
    """After the fuzz both requests are untouched; a real Confirm sends exactly one transfer."""
    for request_id in pending:
        request = store.get(request_id)
        assert request is not None
        assert (request.status, request.approver_id) == (Status.PENDING, None)
    main = next(rid for rid, channel in pending.items() if channel == "CFIN")
    sender.click(CONFIRM_ACTION_ID, main, user_id="UAPP", channel_id="CFIN")
    calls = smspartner.wait_for_transfers(1)
    slack.wait_for(lambda fake: any("Added" in json.dumps(c.args) for c in fake.calls))
    assert [call.json["tokenSubaccount"] for call in calls] == [MAIN_TOKEN]
    stats["legit_click.requests"] += 1


def test_nothing_sent_to_slack_pings_or_links(
    slack: FakeSlack, app: AppProcess, stats: Counter[str]
) -> None:
    """Whatever the fuzz typed, no message the app sent holds a ping, link or foreign mention."""
    sent = _sent_to_slack(slack)
    stats["slack.messages_checked"] += len(sent)
    assert len(sent) > 100
    assert pings_or_links(sent) == []
    for secret in (BOT_TOKEN, API_KEY):
        assert secret not in json.dumps(sent)


# -- bodies that are not Slack's ----------------------------------------------------------------

garbage_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.text(max_size=200).map(lambda text: urlencode({"payload": text}).encode()),
    json_junk.map(lambda junk: urlencode({"payload": json.dumps(junk)}).encode()),
    json_junk.map(lambda junk: json.dumps(junk).encode()),
)


@settings(FUZZ, max_examples=GARBAGE)
@given(
    body=garbage_bodies,
    content_type=st.sampled_from([FORM, "application/json", "text/plain", ""]),
    signed=st.booleans(),
)
def test_garbage_bodies_leak_nothing_and_move_no_money(
    body: bytes, content_type: str, signed: bool, harness: Harness
) -> None:
    """Bodies Slack never sends: no traceback in the answer, no API call, app keeps serving.

    bot/server.py checks the signature, then the shape, before Bolt reads anything."""
    h = harness
    h.stats["garbage.inputs"] += 1
    transfers = len(h.smspartner.transfers)
    signature = None if signed else "v0=" + "0" * 64
    response = h.sender.post(body, content_type, signature=signature)
    h.stats["garbage.requests"] += 1
    h.stats[f"garbage.status_{response.status_code}"] += 1
    assert response.status_code in (200, 400, 401, 404)
    assert "Traceback" not in response.text and 'File "' not in response.text
    if not signed:
        assert response.status_code == 401
    assert len(h.smspartner.transfers) == transfers
    assert h.app.health() == 200


def _form_payload(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode("utf-8")


def _click(sender: SlackSender, **changes: Any) -> dict[str, Any]:
    payload = sender.click_payload(CONFIRM_ACTION_ID, "cr_" + "a" * 22)
    payload.update(changes)
    return payload


def _malformed_bodies(sender: SlackSender) -> dict[str, tuple[bytes, str]]:
    return {
        "garbage-json-in-payload": (urlencode({"payload": "{not json"}).encode(), FORM),
        "payload-is-a-list": (_form_payload([1, 2]), FORM),
        "payload-is-null": (_form_payload(None), FORM),
        "payload-is-a-string": (_form_payload("block_actions"), FORM),
        "payload-is-a-number": (_form_payload(5), FORM),
        "body-not-utf8": (b"payload=\xff\xfe", FORM),
        "json-content-type-form-body": (_form_payload(_click(sender)), "application/json"),
        "form-body-starting-with-brace": (b"{payload=1", FORM),
        "actions-a-string": (_form_payload(_click(sender, actions="x")), FORM),
        "actions-null": (_form_payload(_click(sender, actions=None)), FORM),
        "actions-empty": (_form_payload(_click(sender, actions=[])), FORM),
        "actions-of-numbers": (_form_payload(_click(sender, actions=[1])), FORM),
        "action-without-id": (_form_payload(_click(sender, actions=[{"value": "x"}])), FORM),
        "user-a-number": (_form_payload(_click(sender, user=5)), FORM),
        "user-true": (_form_payload(_click(sender, user=True)), FORM),
        "user-list-with-id": (_form_payload(_click(sender, user=["id"])), FORM),
        "channel-a-number": (_form_payload(_click(sender, channel=5)), FORM),
        "team-a-number": (_form_payload(_click(sender, team=5)), FORM),
    }


MALFORMED = [
    "garbage-json-in-payload",
    "payload-is-a-list",
    "payload-is-null",
    "payload-is-a-string",
    "payload-is-a-number",
    "body-not-utf8",
    "json-content-type-form-body",
    "form-body-starting-with-brace",
    "actions-a-string",
    "actions-null",
    "actions-empty",
    "actions-of-numbers",
    "action-without-id",
    "user-a-number",
    "user-true",
    "user-list-with-id",
    "channel-a-number",
    "team-a-number",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_signed_body_gets_a_4xx(
    case: str, sender: SlackSender, app: AppProcess, stats: Counter[str]
) -> None:
    """A signed body that is not a Slack payload: a 4xx and no traceback in the log."""
    body, content_type = _malformed_bodies(sender)[case]
    start = len(app.logs())
    response = sender.post(body, content_type)
    stats["malformed.requests"] += 1
    assert 400 <= response.status_code < 500
    assert unhandled_errors(app.logs()[start:]) == []


def test_unsigned_garbage_gets_401(sender: SlackSender, stats: Counter[str]) -> None:
    """Garbage without a valid signature is refused as unsigned (401), not parsed (500)."""
    body = urlencode({"payload": "{not json"}).encode()
    stats["malformed.requests"] += 1
    assert sender.post(body, FORM, signature="v0=" + "0" * 64).status_code == 401


@pytest.mark.parametrize(
    ("text", "channel"),
    [("add payload-1 10", "CFIN"), ("help", "CPAYLOAD")],
    ids=["token-payload-1", "channel-named-payload"],
)
def test_command_mentioning_payload_is_answered(
    text: str, channel: str, sender: SlackSender, stats: Counter[str]
) -> None:
    """A valid command whose text, or channel name, contains "payload" is still answered."""
    stats["malformed.requests"] += 1
    assert sender.command(text, channel_id=channel).status_code == 200
