"""An in-process Slack: the Web API methods the app calls, and the response_urls it answers.

Served as a WSGI app on the demo's own loopback server: `/slack/api/<method>` is the Web API
(`SLACK_API_URL` points there), `/slack/response/<id>` the response_urls handed out with each
command and click. It keeps what a Slack client would show: the channel's messages (with
thread replies), the ephemeral messages each person was sent, and each person's App Home.

Slack's rules kept, because the page must show what Slack would:
- every method answers HTTP 200 with `ok` and, when false, an `error` code (`not_authed`,
  `invalid_auth`, `channel_not_found`, `message_not_found`, `no_text`, `invalid_blocks`, …);
- `chat.update` without `blocks` keeps the message's blocks;
- a response_url POST with `replace_original` replaces the message the button was in,
  `delete_original` deletes it, `response_type: in_channel` posts a new message, and anything
  else is an ephemeral message to the person who clicked or typed;
- `views.publish` with a `hash` that is no longer current answers `hash_conflict`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.demo.wsgi import Request, StartResponse, not_found, read_request, respond_json

API_PREFIX = "/slack/api/"
RESPONSE_PREFIX = "/slack/response/"
MAX_BLOCKS = 50
_JSON_STRING_FIELDS = ("blocks", "attachments", "metadata", "view")


@dataclass
class Message:
    """A message as everyone in the channel sees it (or, if `ephemeral_to`, one person)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    ephemeral_to: str | None = None
    edited: bool = False
    kind: str = "message"  # or "command": a slash command as its author typed it
    sequence: int = 0  # arrival order, across channel and ephemeral messages

    def as_json(self) -> dict[str, Any]:
        """The message as Slack hands it to the app in a click's payload."""
        body: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        return body


@dataclass(frozen=True)
class ResponseTarget:
    """Who a response_url answers, and which message its `replace_original` replaces."""

    user_id: str
    channel: str
    message_ts: str | None = None


@dataclass
class HomeView:
    user_id: str
    id: str
    hash: str
    view: dict[str, Any] = field(default_factory=dict)


class SlackStandIn:
    """The Web API and the response_urls, and what a Slack client would now show."""

    def __init__(
        self,
        *,
        bot_token: str,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        usergroups: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self._usergroups = {group: list(users) for group, users in (usergroups or {}).items()}
        self.base_url = ""  # the server's http://127.0.0.1:PORT, set once it listens
        self._lock = threading.RLock()
        self._messages: dict[tuple[str, str], Message] = {}
        self._homes: dict[str, HomeView] = {}
        self._targets: dict[str, ResponseTarget] = {}
        self._last_ts_micros = 0
        self._hashes = itertools.count(1)
        self._sequence = itertools.count(1)
        self.version = 0  # bumped by every change, so the page redraws only on change

    # -- for the page ----------------------------------------------------------------------

    def response_url(self, target: ResponseTarget) -> str:
        """A fresh response_url answering `target`, as Slack sends with a command or click."""
        url_id = secrets.token_urlsafe(12)
        with self._lock:
            self._targets[url_id] = target
        return f"{self.base_url}{RESPONSE_PREFIX}{url_id}"

    def timeline(self, channel: str, viewer: str) -> list[Message]:
        """The channel as `viewer` sees it: everyone's messages and their own ephemerals."""
        with self._lock:
            shown = [
                copy.deepcopy(m)
                for m in self._messages.values()
                if m.channel == channel and m.ephemeral_to in (None, viewer)
            ]
        return sorted(shown, key=lambda m: m.sequence)

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            found = self._messages.get((channel, ts))
            return copy.deepcopy(found) if found else None

    def home(self, user_id: str) -> HomeView | None:
        """The last view published to `user_id`'s App Home, if any."""
        with self._lock:
            found = self._homes.get(user_id)
            return copy.deepcopy(found) if found else None

    # -- the WSGI app ----------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = read_request(environ)
        if request.path.startswith(API_PREFIX):
            try:
                args = _arguments(request)
            except ValueError:
                return respond_json(start_response, {"ok": False, "error": "invalid_json"})
            method = request.path.removeprefix(API_PREFIX)
            return respond_json(start_response, self.call(method, args, _token(request, args)))
        if request.path.startswith(RESPONSE_PREFIX) and request.method == "POST":
            answer = self.post_to_response_url(
                request.path.removeprefix(RESPONSE_PREFIX), request.json()
            )
            status = "200 OK" if answer.get("ok") else "404 Not Found"
            return respond_json(start_response, answer, status)
        return not_found(start_response)

    def call(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        """One Web API call, answered as Slack answers it."""
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not secrets.compare_digest(token, self._bot_token):
            return {"ok": False, "error": "invalid_auth"}
        with self._lock:
            answer = handler(self, args)
            if answer.get("ok"):
                self.version += 1
            return answer

    def post_to_response_url(self, url_id: str, body: Any) -> dict[str, Any]:
        with self._lock:
            target = self._targets.get(url_id)
        if target is None:
            return {"ok": False, "error": "expired_url"}
        return self.respond(target, body)

    def respond(self, target: ResponseTarget, body: Any) -> dict[str, Any]:
        """Show an answer to a command or click: what its response_url, or the HTTP answer
        to a slash command, does in Slack."""
        if not isinstance(body, dict):
            return {"ok": False, "error": "invalid_payload"}
        error = None if body.get("delete_original") else content_error(body)
        if error:
            return {"ok": False, "error": error}
        with self._lock:
            original = self._messages.get((target.channel, target.message_ts or ""))
            if body.get("delete_original"):
                if original is not None:
                    del self._messages[(original.channel, original.ts)]
            elif body.get("replace_original") and original is not None:
                original.text = str(body.get("text", ""))
                original.blocks = list(body.get("blocks") or [])
                original.edited = True
            elif body.get("response_type") == "in_channel":
                self._post(target.channel, body)
            else:
                self._post(target.channel, body, ephemeral_to=target.user_id)
            self.version += 1
        return {"ok": True}

    def show_typed_command(self, *, user_id: str, channel: str, text: str) -> None:
        """What the person typed, shown to them alone (Slack shows nothing; the page does,
        so a visitor sees which answer belongs to which command)."""
        with self._lock:
            self._post(channel, {"text": text}, ephemeral_to=user_id, kind="command")
            self.version += 1

    # -- Web API methods -------------------------------------------------------------------

    def _auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "credit-bot demo",
            "user": "credit-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0CREDITBOT",
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        thread_ts = args.get("thread_ts")
        if thread_ts and (channel, thread_ts) not in self._messages:
            return {"ok": False, "error": "thread_not_found"}
        message = self._post(channel, args, thread_ts=thread_ts or None)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.as_json()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = self._messages.get((channel, ts or ""))
        if message is None or message.ephemeral_to is not None:
            return {"ok": False, "error": "message_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        message.text = str(args.get("text", ""))
        if "blocks" in args:
            message.blocks = list(args["blocks"] or [])
        message.edited = True
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.text,
            "message": message.as_json(),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, user = args.get("channel"), args.get("user")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        message = self._post(channel, args, ephemeral_to=user)
        return {"ok": True, "message_ts": message.ts}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if self._messages.pop((channel, ts or ""), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id, view = args.get("user_id"), args.get("view")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        if not (isinstance(view, dict) and view.get("type") == "home"):
            return {"ok": False, "error": "invalid_arguments"}
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        current = self._homes.get(user_id)
        if current is not None and args.get("hash") and args["hash"] != current.hash:
            return {"ok": False, "error": "hash_conflict"}
        home = HomeView(
            user_id=user_id,
            id=current.id if current else f"V{secrets.token_hex(5).upper()}",
            hash=f"{next(self._hashes)}.{secrets.token_hex(4)}",
            view=copy.deepcopy(view),
        )
        self._homes[user_id] = home
        return {"ok": True, "view": {**home.view, "id": home.id, "hash": home.hash}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self._usergroups.get(str(args.get("usergroup", "")))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    # -- keeping messages ------------------------------------------------------------------

    def _post(
        self,
        channel: str,
        content: dict[str, Any],
        *,
        thread_ts: str | None = None,
        ephemeral_to: str | None = None,
        kind: str = "message",
    ) -> Message:
        # Slack's ts: the time it was posted, in microseconds, unique within a channel.
        self._last_ts_micros = max(time.time_ns() // 1000, self._last_ts_micros + 1)
        micros = self._last_ts_micros
        message = Message(
            channel=channel,
            ts=f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
            text=str(content.get("text", "")),
            blocks=list(content.get("blocks") or []),
            thread_ts=thread_ts,
            ephemeral_to=ephemeral_to,
            kind=kind,
            sequence=next(self._sequence),
        )
        self._messages[(channel, message.ts)] = message
        return message


_METHODS = {
    "auth.test": SlackStandIn._auth_test,
    "chat.postMessage": SlackStandIn._chat_post_message,
    "chat.update": SlackStandIn._chat_update,
    "chat.postEphemeral": SlackStandIn._chat_post_ephemeral,
    "chat.delete": SlackStandIn._chat_delete,
    "views.publish": SlackStandIn._views_publish,
    "usergroups.users.list": SlackStandIn._usergroups_users_list,
}


def content_error(args: dict[str, Any]) -> str | None:
    """Slack's refusal of a message's content (`invalid_blocks`, `no_text`), or None; the
    test fake of Slack (tests/fakes/slack.py) answers by the same rule."""
    blocks = args.get("blocks")
    if blocks is not None and (
        not isinstance(blocks, list)
        or len(blocks) > MAX_BLOCKS
        or not all(isinstance(block, dict) and "type" in block for block in blocks)
    ):
        return "invalid_blocks"
    if not (args.get("text") or blocks or args.get("attachments")):
        return "no_text"
    return None


def _token(request: Request, args: dict[str, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    value = args.pop("token", None)
    return value if isinstance(value, str) else None


def _arguments(request: Request) -> dict[str, Any]:
    """A call's arguments, wherever slack_sdk put them: query, form or JSON body."""
    args: dict[str, Any] = dict(request.query)
    if request.body:
        if request.content_type.startswith("application/json"):
            parsed = json.loads(request.body.decode("utf-8"))
            if isinstance(parsed, dict):
                args.update(parsed)
        else:
            args.update(request.form())
    for name in _JSON_STRING_FIELDS:
        if isinstance(args.get(name), str):
            # Not JSON: left as sent, and the method refuses it.
            with contextlib.suppress(ValueError):
                args[name] = json.loads(args[name])
    return args
