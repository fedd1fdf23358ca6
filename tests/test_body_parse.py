"""bot/server.py parses a Slack body once, itself: the same fields as parse_qsl, the same
body and context as Bolt's request with the "payload" fix, faster."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context

from bot.server import _bolt_request, _form_fields, _SlackRequest

BODIES = Path(__file__).parent / "bodies"
SAMPLES = {name: (BODIES / f"{name}.txt").read_text("utf-8") for name in ("click", "command")}
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


def reference_fields(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


class ReferenceRequest(BoltRequest):
    """The request as bot/server.py built it before issue 13: Bolt's parse, then the fix."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        misread = not self.body and "payload" in self.raw_body
        if (
            misread
            and self.content_type != "application/json"
            and not self.raw_body.startswith("{")
        ):
            fields = dict(parse_qsl(self.raw_body, keep_blank_values=True))
            if "payload" not in fields:
                self.body = fields
                self.context = build_context(self.context, fields)


# Pieces Slack's encoding and a forger's would use: escapes in both cases, broken escapes,
# a trailing %, pluses, separators, raw non-ASCII text, backslashes, UTF-8 cut short.
PIECES = [
    "%", "%2", "%zz", "%g1", "%%", "%25", "%2B", "%2b", "+", "&", "=", "&&", "==", "a", "Z",
    "payload", "\\", "\\x41", "%5C", "%5cx41", "%C3%A9", "%c3%a9", "%C3", "%A9", "%E2%82%AC",
    "%E2%82", "%F0%9F%98%80", "%F0%9F", "%FF", "%80", "%C0%AF", "%ED%A0%80", "é", "€", "😀",
    "\u00ff", "%00", "%7F", "%0A", " ", "%20", "0", "f", "F",
]  # fmt: skip
form_like = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=40).map("".join)


@settings(max_examples=3000, deadline=None)
@given(raw=form_like)
def test_fields_are_parse_qsls_on_generated_bodies(raw: str) -> None:
    assert _form_fields(raw) == reference_fields(raw)


@settings(max_examples=500, deadline=None)
@given(values=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=6))
def test_fields_are_parse_qsls_on_encoded_forms(values: dict[str, str]) -> None:
    """What urlencode writes, non-ASCII text included, reads back the same both ways."""
    raw = urlencode(values)
    assert _form_fields(raw) == reference_fields(raw) == values


def test_fields_are_parse_qsls_on_a_seeded_spread() -> None:
    """A fixed draw, so a failure reproduces without hypothesis's database."""
    draw = random.Random(13)
    for _ in range(3000):
        raw = "".join(draw.choice(PIECES) for _ in range(draw.randint(0, 30)))
        assert _form_fields(raw) == reference_fields(raw), raw


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fields_are_parse_qsls_on_slacks_bodies(name: str) -> None:
    raw = SAMPLES[name]
    assert _form_fields(raw) == reference_fields(raw)


def test_every_escape_decodes_as_urllib_does() -> None:
    for byte in range(256):
        for escape in (f"%{byte:02X}", f"%{byte:02x}"):
            assert _form_fields(f"a={escape}") == reference_fields(f"a={escape}")


def test_escaped_multibyte_text_and_bad_utf8() -> None:
    text = "10 225,119\u202fEUR é € 😀"
    assert _form_fields(f"t={quote(text)}") == {"t": text}
    assert _form_fields("t=%C3%28+%FF%E2%82") == {"t": "\ufffd( \ufffd\ufffd"}
    assert _form_fields("t=%zz%2") == {"t": "%zz%2"}


def command(text: str, channel: str = "CFIN") -> str:
    return urlencode({"command": "/credit", "text": text, "channel_id": channel, "user_id": "U1"})


def click(payload: object) -> str:
    return urlencode({"payload": json.dumps(payload)})


ACTIONS = {
    "type": "block_actions",
    "user": {"id": "UAPP", "team_id": "T1"},
    "team": {"id": "T1"},
    "channel": {"id": "CFIN"},
    "response_url": "http://127.0.0.1:9/response",
    "actions": [{"action_id": "confirm", "value": "r1"}],
}
REQUESTS: dict[str, tuple[str, dict[str, str]]] = {
    "sample click": (SAMPLES["click"], FORM),
    "sample command": (SAMPLES["command"], FORM),
    "click": (click(ACTIONS), FORM),
    "command saying payload": (command("add payload-1 10 payload"), FORM),
    "channel named payload": (command("help", channel="CPAYLOAD"), FORM),
    "field named payload, escaped": ("pay%6Coad=%7B%7D&text=x", FORM),
    "payload field and another": (click(ACTIONS) + "&payload_extra=1", FORM),
    "payload that is null": ("payload=null", FORM),
    "payload that is a list": ("payload=%5B1%5D", FORM),
    "payload that is empty JSON": ("payload=%7B%7D", FORM),
    "payload that is not JSON": ("payload=%7Bnot+json", FORM),
    "empty payload": ("payload=", FORM),
    "json body": (json.dumps(ACTIONS), JSON),
    "json body, form type": (json.dumps(ACTIONS), FORM),
    "json list": ("[1, 2]", JSON),
    "json body saying payload": ('{"payload": 1}', FORM),
    "empty json": ("{}", JSON),
    "empty body": ("", FORM),
    "no content type": (command("help"), {}),
    "bare word": ("payload", FORM),
    "broken escapes": ("text=%zz%&payload%", FORM),
}


def outcome(cls: type[BoltRequest], raw: str, headers: dict[str, str]) -> object:
    try:
        request = cls(body=raw, query="a=1", headers=headers)
    except Exception as error:
        return type(error)
    return (request.raw_body, request.body, dict(request.context), request.content_type)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_request_is_the_one_bolt_and_the_fix_built(name: str) -> None:
    raw, headers = REQUESTS[name]
    assert outcome(_SlackRequest, raw, headers) == outcome(ReferenceRequest, raw, headers)


@settings(max_examples=500, deadline=None)
@given(
    raw=form_like
    | st.builds(click, st.recursive(st.none() | st.integers(), st.lists))
    | st.builds(command, st.text(max_size=30)),
    headers=st.sampled_from([FORM, JSON, {}]),
)
def test_the_request_is_the_one_bolt_built_on_generated_bodies(
    raw: str, headers: dict[str, str]
) -> None:
    assert outcome(_SlackRequest, raw, headers) == outcome(ReferenceRequest, raw, headers)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_bolt_request_refuses_what_it_refused(name: str) -> None:
    """_bolt_request's None cases and requests are the same as with the former request."""
    raw, headers = REQUESTS[name]
    request = _bolt_request(raw.encode("utf-8"), "", headers)
    try:
        reference = ReferenceRequest(body=raw, query="", headers=headers)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        assert request is None
        return
    if not isinstance(reference.body, dict):
        assert request is None
    elif request is not None:
        assert request.body == reference.body
        assert dict(request.context) == dict(reference.context)


def test_a_body_that_is_not_utf8_is_refused() -> None:
    assert _bolt_request(b"text=\xff", "", FORM) is None


def test_a_command_saying_payload_keeps_its_fields() -> None:
    request = _bolt_request(command("add payload-1 10").encode(), "", FORM)
    assert request is not None
    assert request.body["text"] == "add payload-1 10"
    assert request.context["channel_id"] == "CFIN"


def test_the_copy_for_lazy_listeners_is_parsed_the_same() -> None:
    request = _bolt_request(SAMPLES["click"].encode(), "", FORM)
    assert request is not None
    copy = request.to_copyable()
    assert isinstance(copy, _SlackRequest)
    assert (copy.raw_body, copy.body, dict(copy.context)) == (
        request.raw_body,
        request.body,
        dict(request.context),
    )
