"""PooledWebClient's chat methods hand api_call exactly what slack_sdk's own methods do.

Both clients are subclassed to record what reaches `api_call` instead of sending it, and
given the same messages: the cards and notes bot/slack/blocks.py builds (plain dicts, the
fast path), and what only slack_sdk's own conversion handles (block objects, no text).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import DividerBlock, SectionBlock
from slack_sdk.models.metadata import Metadata
from slack_sdk.web import SlackResponse

from bot.domain import Action, CreditRequest, Status
from bot.slack.blocks import build_card, build_notice, build_usage
from bot.slack.web import KeptConnections, PooledWebClient, slack_ssl_context
from bot.texts import Texts

TOKEN = "xoxb-messages-test-token"
CHANNEL = "CFIN"
TS = "1700000000.000100"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
REQUEST = CreditRequest(
    id="cr_AAAAAAAAAAAAAAAAAAAAAA",
    action=Action.ADD,
    subaccount_token="sub-42",
    amount=Decimal("10.5"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UREQ",
    channel_id=CHANNEL,
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
)
TEXTS = {language: Texts.for_language(language) for language in ("en", "fr")}
CHAT_METHODS = ("chat_postMessage", "chat_update", "chat_postEphemeral")

Recorded = tuple[str, dict[str, Any]]


def _answer(client: WebClient, api_method: str) -> SlackResponse:
    return SlackResponse(
        client=client,
        http_verb="POST",
        api_url=api_method,
        req_args={},
        data={"ok": True, "channel": CHANNEL, "ts": TS},
        headers={},
        status_code=200,
    )


class RecordingStock(WebClient):
    """slack_sdk's own typed methods, stopped at api_call."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN, retry_handlers=[])
        self.recorded: list[Recorded] = []

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        self.recorded.append((api_method, kwargs))
        return _answer(self, api_method)


class RecordingPooled(PooledWebClient):
    """PooledWebClient's typed methods, stopped at api_call."""

    def __init__(self) -> None:
        super().__init__(
            pool=KeptConnections(ssl_context=slack_ssl_context()), token=TOKEN, retry_handlers=[]
        )
        self.recorded: list[Recorded] = []

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        self.recorded.append((api_method, kwargs))
        return _answer(self, api_method)


def _cards() -> list[dict[str, Any]]:
    """Every kind of card and note the app sends, in both languages."""
    messages: list[dict[str, Any]] = []
    for texts in TEXTS.values():
        for status in Status:
            request = replace(
                REQUEST,
                status=status,
                approver_id="UAPP",
                executing_at=NOW,
                finished_at=NOW,
                main_balance=Decimal("100.00"),
                subaccount_balance=Decimal("20.50"),
            )
            messages.append(build_card(request, texts=texts))
        messages.append(build_usage(texts))
        messages.append(build_notice("*Already handled.*"))
    return messages


def _sent_both_ways(method: str, **arguments: Any) -> tuple[Recorded, Recorded]:
    """What reaches api_call from slack_sdk's method and from ours, for the same call."""
    stock, pooled = RecordingStock(), RecordingPooled()
    getattr(stock, method)(**arguments)
    getattr(pooled, method)(**arguments)
    assert len(stock.recorded) == len(pooled.recorded) == 1
    return stock.recorded[0], pooled.recorded[0]


def _assert_same(method: str, **arguments: Any) -> None:
    theirs, ours = _sent_both_ways(method, **arguments)
    assert ours == theirs
    # The same bytes on the wire, keys in the same order.
    assert json.dumps(ours[1]) == json.dumps(theirs[1])


@pytest.mark.parametrize("method", CHAT_METHODS)
def test_our_chat_methods_take_exactly_slack_sdks_parameters(method: str) -> None:
    """A parameter slack_sdk adds (or drops) fails here, not at a caller."""
    theirs = inspect.signature(getattr(WebClient, method)).parameters
    ours = inspect.signature(getattr(PooledWebClient, method)).parameters
    assert [(p.name, p.kind, p.default) for p in theirs.values()] == [
        (p.name, p.kind, p.default) for p in ours.values()
    ]


@pytest.mark.parametrize("message", _cards(), ids=lambda message: message["text"][:40])
def test_cards_and_notes_reach_api_call_as_slack_sdk_sends_them(message: dict[str, Any]) -> None:
    _assert_same("chat_postMessage", channel=CHANNEL, **message)
    _assert_same("chat_update", channel=CHANNEL, ts=TS, **message)
    _assert_same("chat_postEphemeral", channel=CHANNEL, user="UREQ", **message)


def test_optional_and_extra_arguments_reach_api_call_as_slack_sdk_sends_them() -> None:
    """A reminder in a thread, False kept (only None is dropped), a tuple of blocks, dict
    attachments and metadata, and a field slack_sdk has no parameter for (first, as there)."""
    card = build_card(REQUEST, texts=TEXTS["en"])
    optional = {
        "thread_ts": TS,
        "unfurl_links": False,
        "mrkdwn": True,
        "attachments": [{"fallback": "plain", "text": "more"}],
        "metadata": {"event_type": "credit", "event_payload": {"id": REQUEST.id}},
        "token": "xoxb-per-call-token",
    }
    _assert_same("chat_postMessage", channel=CHANNEL, **card, **optional)
    _assert_same("chat_postMessage", channel=CHANNEL, text=card["text"], blocks=(card["blocks"]))
    _assert_same("chat_postMessage", channel=CHANNEL, text="as a string", blocks="[]")
    _assert_same("chat_postMessage", channel=CHANNEL, markdown_text="*only markdown*")
    _assert_same(
        "chat_update", channel=CHANNEL, ts=TS, text="gone", blocks=[], reply_broadcast=False
    )
    _assert_same("chat_postEphemeral", channel=CHANNEL, user="UREQ", text="note", thread_ts=TS)


def test_what_slack_sdk_converts_still_goes_through_its_own_method() -> None:
    """Block and metadata objects, and file ids, come out as slack_sdk makes them."""
    blocks = [SectionBlock(text="*hello*"), DividerBlock()]
    metadata = Metadata(event_type="credit", event_payload={"id": REQUEST.id})
    _assert_same("chat_postMessage", channel=CHANNEL, text="objects", blocks=blocks)
    _assert_same("chat_postMessage", channel=CHANNEL, text="meta", metadata=metadata)
    _assert_same("chat_update", channel=CHANNEL, ts=TS, text="files", file_ids=["F1", "F2"])
    mixed = [{"type": "divider"}, DividerBlock()]
    _assert_same("chat_postEphemeral", channel=CHANNEL, user="UREQ", text="mixed", blocks=mixed)


def test_a_message_without_text_gets_slack_sdks_warning_and_body() -> None:
    """slack_sdk warns when a message has no text for screen readers: so do we."""
    blocks = [{"type": "divider"}]
    with pytest.warns(UserWarning, match="top-level `text` argument is missing") as warned:
        _assert_same("chat_postMessage", channel=CHANNEL, blocks=blocks)
    assert len(warned) == 2  # once from each client
