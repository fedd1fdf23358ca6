"""What Slack sends the app's request URL when a person types or clicks: signed, as Slack does.

Shapes follow Slack's references: a slash command is form fields; a click is a block_actions
payload (`payload=<JSON>`) with user, channel, container, message and response_url, or, on the
App Home, a `view` container and the view instead; opening the Home tab is an
`app_home_opened` event_callback. Signing follows "Verifying requests from Slack": `v0=` and
the hex HMAC-SHA256 of `v0:<timestamp>:<body>` keyed with the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from bot.demo.seed import APP_HOME_CHANNEL_ID, CHANNEL_NAME, Person
from bot.demo.slack_api import HomeView, Message, ResponseTarget, SlackStandIn

FORM = "application/x-www-form-urlencoded"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
# The app must ack within Slack's 3 s; the page waits a little longer before saying so.
ACK_TIMEOUT_SECONDS = 10
API_APP_ID = "A0CREDITBOT"
# Slack's deprecated verification token: sent as Slack sends it, checked by nobody.
VERIFICATION_TOKEN = "demo-verification-token"  # noqa: S105

_triggers = itertools.count(1)


@dataclass(frozen=True)
class Answer:
    """The app's HTTP answer to one signed request."""

    status: int
    body: Any  # the JSON it answered with, or None for an empty ack


def sign(signing_secret: str, timestamp: int, body: bytes) -> str:
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


class SlackEvents:
    """Turns a person's command or click into the signed request Slack would send."""

    def __init__(
        self,
        *,
        events_url: str,
        signing_secret: str,
        slack: SlackStandIn,
        session: requests.Session | None = None,
    ) -> None:
        self.events_url = events_url
        self._signing_secret = signing_secret
        self.slack = slack
        self.session = session or requests.Session()

    def command(self, person: Person, channel: str, text: str) -> Answer:
        """`/credit <text>` typed by `person` in `channel`."""
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.slack.team_id,
            "team_domain": self.slack.team_domain,
            "channel_id": channel,
            "channel_name": CHANNEL_NAME,
            "user_id": person.user_id,
            "user_name": person.name,
            "command": "/credit",
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.slack.response_url(
                ResponseTarget(user_id=person.user_id, channel=channel)
            ),
            "trigger_id": _trigger_id(),
        }
        return self._post(urlencode(fields).encode("utf-8"), FORM)

    def click_in_message(self, person: Person, message: Message, action: dict[str, Any]) -> Answer:
        """A click on a button of a channel message (or of an ephemeral one)."""
        ephemeral = message.ephemeral_to is not None
        payload = {
            **self._click_base(person, action),
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": ephemeral,
            },
            "channel": {"id": message.channel, "name": CHANNEL_NAME},
            "response_url": self.slack.response_url(
                ResponseTarget(
                    user_id=person.user_id, channel=message.channel, message_ts=message.ts
                )
            ),
        }
        if not ephemeral:
            # Slack sends the message as the clicker saw it; not for ephemeral ones.
            payload["message"] = message.as_json()
        return self._post_payload(payload)

    def click_in_home(self, person: Person, home: HomeView, action: dict[str, Any]) -> Answer:
        """A click on a button of the person's App Home: a view, no channel, no response_url."""
        payload = {
            **self._click_base(person, action),
            "container": {"type": "view", "view_id": home.id},
            "view": self._view(home),
        }
        return self._post_payload(payload)

    def home_opened(self, person: Person, home: HomeView | None) -> Answer:
        """The person opened the app's Home tab."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": person.user_id,
            "channel": APP_HOME_CHANNEL_ID,
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        if home is not None:
            event["view"] = self._view(home)
        body = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.slack.team_id,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.slack.team_id,
                    "user_id": self.slack.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self._post(json.dumps(body).encode("utf-8"), "application/json")

    def _click_base(self, person: Person, action: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "block_actions",
            "user": {
                "id": person.user_id,
                "username": person.name,
                "name": person.name,
                "team_id": self.slack.team_id,
            },
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": _trigger_id(),
            "team": {"id": self.slack.team_id, "domain": self.slack.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [{**action, "type": "button", "action_ts": f"{time.time():.6f}"}],
        }

    def _view(self, home: HomeView) -> dict[str, Any]:
        return {
            **home.view,
            "id": home.id,
            "team_id": self.slack.team_id,
            "type": "home",
            "state": {"values": {}},
            "hash": home.hash,
            "root_view_id": home.id,
            "app_id": API_APP_ID,
            "bot_id": "B0CREDITBOT",
        }

    def _post_payload(self, payload: dict[str, Any]) -> Answer:
        return self._post(urlencode({"payload": json.dumps(payload)}).encode("utf-8"), FORM)

    def _post(self, body: bytes, content_type: str) -> Answer:
        timestamp = int(time.time())
        response = self.session.post(
            self.events_url,
            data=body,
            headers={
                "Content-Type": content_type,
                "User-Agent": USER_AGENT,
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": sign(self._signing_secret, timestamp, body),
            },
            timeout=ACK_TIMEOUT_SECONDS,
        )
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        return Answer(status=response.status_code, body=answer)


def _trigger_id() -> str:
    return f"{1_000_000_000_000 + next(_triggers)}.1000000000.{secrets.token_hex(16)}"
