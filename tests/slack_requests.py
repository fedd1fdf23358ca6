"""Send an app's request URL what Slack sends it: slash commands and button clicks, signed.

Shapes follow Slack's references (slash command payload: the form fields Slack posts;
block_actions payload: `payload=<url-encoded JSON>`) and bolt-python's own scenario tests.
Signing follows "Verifying requests from Slack": `v0=` + hex HMAC-SHA256, keyed with the
signing secret, of `v0:<timestamp>:<raw body>`, in `X-Slack-Signature`, with the timestamp in
`X-Slack-Request-Timestamp`. Bolt refuses a timestamp more than 5 minutes from now.

Nothing here reaches the internet: without an explicit response_url (or a
`response_url_factory`, e.g. `FakeSlack.response_url`), requests carry a loopback URL on the
discard port, so an app that answers through it fails fast instead of calling Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import requests

VERIFICATION_TOKEN = "legacy-verification-token"
API_APP_ID = "A0TEST"
TEAM_DOMAIN = "credit-bot-test"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
FORM = "application/x-www-form-urlencoded"
UNREACHABLE_RESPONSE_URL = "http://127.0.0.1:9/response/unset"
REQUEST_TIMEOUT_SECONDS = 10

_trigger_counter = itertools.count(1)


def sign(signing_secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Slack-Signature` Slack sends for `body` at `timestamp`."""
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def new_trigger_id() -> str:
    return f"{1_000_000_000_000 + next(_trigger_counter)}.1000000000.{secrets.token_hex(16)}"


class SlackSender:
    """Posts signed Slack requests to one app URL (its `POST /slack/events`)."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        team_id: str = "T0TEST",
        session: requests.Session | None = None,
        response_url_factory: Callable[[], str] | None = None,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.session = session
        self.response_url_factory = response_url_factory

    def command(
        self,
        text: str,
        *,
        user_id: str = "UREQ",
        channel_id: str = "CFIN",
        command: str = "/credit",
        response_url: str | None = None,
        trigger_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """A slash command, form-encoded with every field Slack sends, in Slack's order."""
        fields = self.command_fields(
            text,
            user_id=user_id,
            channel_id=channel_id,
            command=command,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        body = urlencode(fields).encode("utf-8")
        return self.post(body, FORM, timestamp=timestamp, signature=signature)

    def command_fields(
        self,
        text: str,
        *,
        user_id: str = "UREQ",
        channel_id: str = "CFIN",
        command: str = "/credit",
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """The fields of a slash command (HTTP sends them form-encoded, Socket Mode as JSON)."""
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": _name_of(channel_id),
            "user_id": user_id,
            "user_name": _name_of(user_id),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url or self._response_url(),
            "trigger_id": trigger_id or new_trigger_id(),
        }

    def click(
        self,
        action_id: str,
        value: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        **fields: Any,
    ) -> requests.Response:
        """POST a click (see `click_payload` for the fields) signed as Slack signs it."""
        payload = self.click_payload(action_id, value, **fields)
        return self.raw_payload(payload, timestamp=timestamp, signature=signature)

    def click_payload(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str = "UAPP",
        channel_id: str = "CFIN",
        message_ts: str = "1700000000.000100",
        response_url: str | None = None,
        block_id: str = "credit_actions",
        message: dict[str, Any] | None = None,
        button_text: str | None = None,
        style: str | None = None,
    ) -> dict[str, Any]:
        """A click on a message button: a block_actions interaction as Slack sends it.

        Pass `message` (e.g. `fake.messages[(channel, ts)]`) to send the message as the user
        saw it; the clicked button is then looked up in its blocks and its block_id, label
        and style are used, as Slack does. `value` is always the one given, so a test can
        also send a value no button carried.
        """
        shown = message or {
            "type": "message",
            "user": "UBOT",
            "bot_id": "BBOT",
            "app_id": API_APP_ID,
            "team": self.team_id,
            "ts": message_ts,
            "text": "",
            "blocks": [],
        }
        shown = dict(shown, ts=shown.get("ts", message_ts))
        found_block_id, button = _find_button(shown.get("blocks") or [], action_id)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": found_block_id or block_id,
            "text": (button or {}).get("text")
            or {"type": "plain_text", "text": button_text or action_id, "emoji": True},
            "value": value,
        }
        if button_style := (button or {}).get("style", style):
            action["style"] = button_style
        action.update({"type": "button", "action_ts": f"{time.time():.6f}"})
        payload = {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": _name_of(user_id),
                "name": _name_of(user_id),
                "team_id": self.team_id,
            },
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": shown["ts"],
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": new_trigger_id(),
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": _name_of(channel_id)},
            "message": shown,
            "state": {"values": {}},
            "response_url": response_url or self._response_url(),
            "actions": [action],
        }
        return payload

    def raw_payload(
        self,
        payload: Any,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """Any interaction payload (even a malformed one), as `payload=<url-encoded JSON>`."""
        body = urlencode({"payload": json.dumps(payload)}).encode("utf-8")
        return self.post(body, FORM, timestamp=timestamp, signature=signature)

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """POST `body` signed for `timestamp` (now by default), or with `signature` as given."""
        sent_at = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": str(sent_at),
            "X-Slack-Signature": signature or sign(self.signing_secret, sent_at, body),
        }
        if self.session is not None:
            return self.session.post(
                self.url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
            )
        return requests.post(self.url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)

    def _response_url(self) -> str:
        if self.response_url_factory is not None:
            return self.response_url_factory()
        return UNREACHABLE_RESPONSE_URL


def _name_of(slack_id: str) -> str:
    return f"name-{slack_id.lower()}"


def _find_button(
    blocks: list[dict[str, Any]], action_id: str
) -> tuple[str | None, dict[str, Any] | None]:
    for block in blocks:
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None
