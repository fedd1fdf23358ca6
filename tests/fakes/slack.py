"""A loopback fake of the Slack Web API and of response_url, for end-to-end tests.

`FakeSlack` is a real HTTP server on 127.0.0.1 (port chosen by the OS) that answers the
Web API methods the app uses the way Slack does: always HTTP 200 with a JSON body, `ok`
true or false with an `error` code. Point `slack_sdk.WebClient(base_url=fake.api_url)` at
it. It records every call and every POST to a response_url it handed out, keeps the
messages it was asked to post as a user would now see them, and lets a test block until
something was recorded with `wait_for`, without sleeping.

Slack behaviours kept on purpose, because an app can get them wrong:
- `chat.update` without `blocks` keeps the message's previous blocks (Slack's documented
  rule); an empty list removes them. An update meant to remove buttons must send blocks.
- a missing token answers `not_authed`, a wrong one `invalid_auth`.
- a response_url bound to a message (`response_url(channel=..., message_ts=...)`) replaces
  or deletes that message on `replace_original` / `delete_original`, and an `in_channel`
  response posts a new message in the channel.

Bad days, on demand: `hold(method)` makes calls wait (unapplied) until `release(method)`;
`slow(method, seconds, trickle=...)` applies a call late, or answers it one byte a second;
`refuse_for_good(ts)` makes every `chat.update` of one message answer `message_not_found`
(`about=` picks the message by its content, before it is posted);
`count(method, ts=...)` says how many calls a method got.

User groups: `set_group(id, members)` is what `usergroups.users.list` answers (an unknown
group answers `no_such_subteam`). `views.publish` keeps each user's Home view in `homes`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import ssl
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.demo.slack_api import content_error

Handler = Callable[["FakeSlack", dict[str, Any]], dict[str, Any]]

# Form-encoded Web API calls carry these as JSON strings; JSON bodies carry them as objects.
JSON_STRING_FIELDS = frozenset({"blocks", "attachments", "metadata", "view"})
FIRST_TS_MICROS = 1_700_000_000_000_000
TS_STEP_MICROS = 100
BOT_ID = "BBOT"
DEFAULT_BOT_TOKEN = "xoxb-test-token"
APP_ID = "A0TEST"


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake received it, and what it answered."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    response: dict[str, Any]


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a response_url handed out by `FakeSlack.response_url`."""

    url_id: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _ResponseUrl:
    channel: str | None
    message_ts: str | None


class FakeSlack:
    """A loopback Slack Web API + response_url endpoint that records what the app sends."""

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        team_id: str = "T0TEST",
        bot_user_id: str = "UBOT",
        app_token: str = "xapp-test-app-token",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.bot_token = bot_token
        # Served over HTTPS with this server-side context (its certificate), else plain HTTP.
        self.ssl_context = ssl_context
        self.app_token = app_token
        # Where apps.connections.open sends a Socket Mode client (a FakeSocketMode's url).
        self.socket_mode_url: str | None = None
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self._changed = threading.Condition(threading.RLock())
        self._calls: list[Call] = []
        self._responses: list[ResponseUrlPost] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._failures: defaultdict[str, deque[str]] = defaultdict(deque)
        self._held: dict[str, threading.Event] = {}
        self._waiting: Counter[str] = Counter()  # calls now held, by method
        self._slow: dict[str, tuple[float, bool]] = {}
        self._refused: dict[str, str] = {}
        self._refused_about: dict[str, str] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._ts_counter = itertools.count(1)
        self._url_counter = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._groups: dict[str, list[str]] = {}
        self._homes: dict[str, dict[str, Any]] = {}

    def set_group(self, group_id: str, members: list[str]) -> None:
        """What `usergroups.users.list` answers for `group_id` from now on."""
        with self._changed:
            self._groups[group_id] = list(members)

    @property
    def homes(self) -> dict[str, dict[str, Any]]:
        """The Home view last published for each user id."""
        with self._changed:
            return copy.deepcopy(self._homes)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        with self._changed:
            held, self._held = list(self._held.values()), {}
        for event in held:
            event.set()  # free held handlers, so the server can stop
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._server.server_address[:2]
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(
        self,
        name: str | None = None,
        *,
        channel: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A fresh response_url on this server; POSTs to it are recorded in `responses`.

        Bind it to the message a button sits in (`channel`, `message_ts`) to have
        `replace_original` / `delete_original` change `messages` as Slack would; with only
        `channel`, an `in_channel` response posts a new message there.
        """
        url_id = name if name is not None else f"r{next(self._url_counter)}"
        with self._changed:
            self._response_urls[url_id] = _ResponseUrl(channel=channel, message_ts=message_ts)
        return f"{self.base_url}/response/{url_id}"

    # -- what was recorded -----------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return list(self._calls)

    @property
    def responses(self) -> list[ResponseUrlPost]:
        with self._changed:
            return list(self._responses)

    @property
    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._changed:
            return copy.deepcopy(self._messages)

    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self._calls if call.method == method]

    def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 5.0) -> None:
        """Block until `predicate(self)` holds; re-checked each time something is recorded."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout=timeout):
                raise AssertionError(
                    f"FakeSlack: condition not met in {timeout}s; {self._summary()}"
                )

    def fail_next(self, method: str, error: str = "not_in_channel") -> None:
        """Make the next call to `method` answer `{"ok": false, "error": error}`."""
        with self._changed:
            self._failures[method].append(error)

    def hold(self, method: str) -> None:
        """Calls to `method` wait, not yet applied, until `release(method)` (or `stop`)."""
        with self._changed:
            self._held[method] = threading.Event()

    def held_calls(self, method: str) -> int:
        """How many calls to `method` are waiting on `hold` now."""
        with self._changed:
            return self._waiting[method]

    def release(self, method: str) -> None:
        with self._changed:
            held = self._held.pop(method, None)
        if held is not None:
            held.set()

    def slow(self, method: str, seconds: float, *, trickle: bool = False) -> None:
        """Calls to `method` are applied and answered `seconds` late; with `trickle`,
        applied at once and answered one byte a second (`seconds` between bytes)."""
        with self._changed:
            self._slow[method] = (seconds, trickle)

    def refuse_for_good(
        self, ts: str | None = None, *, about: str | None = None, error: str = "message_not_found"
    ) -> None:
        """Every chat.update of the message `ts` answers `error`, as for a deleted message;
        with `about`, of every message whose content contains that text (for a card not
        posted yet)."""
        with self._changed:
            if ts is not None:
                self._refused[ts] = error
            if about is not None:
                self._refused_about[about] = error

    def _refusal(self, args: dict[str, Any]) -> str | None:
        ts = str(args.get("ts"))
        if ts in self._refused:
            return self._refused[ts]
        current = json.dumps(self._messages.get((str(args.get("channel")), ts), {}))
        return next((e for text, e in self._refused_about.items() if text in current), None)

    def count(self, method: str, *, ts: str | None = None) -> int:
        """How many calls `method` got (only those about message `ts`, if given)."""
        with self._changed:
            return sum(
                1
                for call in self._calls
                if call.method == method and (ts is None or call.args.get("ts") == ts)
            )

    def _wait_turn(self, method: str) -> tuple[float, bool]:
        """Hold or slow a call as asked; returns the trickle interval (0: none)."""
        with self._changed:
            held = self._held.get(method)
            seconds, trickle = self._slow.get(method, (0.0, False))
        if held is not None:
            with self._changed:
                self._waiting[method] += 1
                self._changed.notify_all()
            held.wait()
            with self._changed:
                self._waiting[method] -= 1
        if seconds and not trickle:
            time.sleep(seconds)  # the fake's own behaviour (a slow Slack), not a test's wait
        return (seconds if trickle else 0.0), trickle

    def reset(self) -> None:
        """Forget calls, responses, messages and pending failures (ts keep increasing)."""
        with self._changed:
            self._calls.clear()
            self._responses.clear()
            self._messages.clear()
            self._failures.clear()
            self._response_urls.clear()
            self._homes.clear()

    def _summary(self) -> str:
        calls = ", ".join(
            f"{c.method}({_brief(c.args)}) -> {c.response.get('error', 'ok')}" for c in self._calls
        )
        posts = ", ".join(f"{p.url_id}: {_brief(p.body)}" for p in self._responses)
        return f"calls: [{calls}]; response_url posts: [{posts}]"

    # -- answering -------------------------------------------------------------------------

    def _handle_api(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        token = _bearer_token(headers) or args.pop("token", None)
        with self._changed:
            response = self._answer(method, args, token)
            self._calls.append(
                Call(method=method, args=args, headers=headers, token=token, response=response)
            )
            self._changed.notify_all()
        return response

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        if not token:
            return {"ok": False, "error": "not_authed"}
        # Socket Mode's one method takes the app-level token; every other one the bot token.
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}
        if self._failures[method]:
            return {"ok": False, "error": self._failures[method].popleft()}
        refusal = self._refusal(args) if method == "chat.update" else None
        if refusal:
            return {"ok": False, "error": refusal}
        return handler(self, args)

    def _handle_response_url(self, url_id: str, body: Any, headers: dict[str, str]) -> None:
        with self._changed:
            self._responses.append(ResponseUrlPost(url_id=url_id, body=body, headers=headers))
            bound = self._response_urls.get(url_id)
            if bound is not None and isinstance(body, dict):
                self._apply_response(bound, body)
            self._changed.notify_all()

    def _apply_response(self, bound: _ResponseUrl, body: dict[str, Any]) -> None:
        key = (bound.channel or "", bound.message_ts or "")
        if body.get("delete_original") and key in self._messages:
            del self._messages[key]
        elif body.get("replace_original") and key in self._messages:
            self._messages[key] = self._message(
                key[1], body.get("text", ""), body.get("blocks", [])
            )
        elif body.get("response_type") == "in_channel" and bound.channel:
            ts = self._next_ts()
            self._messages[(bound.channel, ts)] = self._message(
                ts, body.get("text", ""), body.get("blocks", [])
            )

    def _next_ts(self) -> str:
        micros = FIRST_TS_MICROS + next(self._ts_counter) * TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _message(self, ts: str, text: str, blocks: list[Any]) -> dict[str, Any]:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": self.team_id,
            "ts": ts,
            "text": text,
            "blocks": blocks,
        }

    # -- Web API methods -------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://credit-bot-test.slack.com/",
            "team": "Credit Bot Test",
            "user": "credit-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        ts = self._next_ts()
        message = self._message(ts, args.get("text", ""), args.get("blocks", []))
        self._messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": dict(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        current = self._messages.get((channel, ts or ""))
        if current is None:
            return {"ok": False, "error": "message_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        updated = dict(current, text=args.get("text", ""))
        if "blocks" in args:
            updated["blocks"] = args["blocks"]
        updated["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        self._messages[(channel, ts)] = updated
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": updated["text"],
            "message": dict(updated),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        error = content_error(args)
        if error:
            return {"ok": False, "error": error}
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if self._messages.pop((channel, ts or ""), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = self._groups.get(str(args.get("usergroup") or ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id, view = args.get("user_id"), args.get("view")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        self._homes[str(user_id)] = view
        return {"ok": True, "view": {"id": f"V{user_id}", **view}}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode_url is None:
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_mode_url}


_METHODS: dict[str, Handler] = {
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._chat_post_message,
    "chat.update": FakeSlack._chat_update,
    "chat.postEphemeral": FakeSlack._chat_post_ephemeral,
    "chat.delete": FakeSlack._chat_delete,
    "apps.connections.open": FakeSlack._apps_connections_open,
    "usergroups.users.list": FakeSlack._usergroups_users_list,
    "views.publish": FakeSlack._views_publish,
}


def _bearer_token(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _decode_json_strings(args: dict[str, Any]) -> dict[str, Any]:
    for name in JSON_STRING_FIELDS & args.keys():
        value = args[name]
        if isinstance(value, str):
            # Not JSON: left as sent, and the method answers invalid_blocks.
            with contextlib.suppress(ValueError):
                args[name] = json.loads(value)
    return args


def _parse_args(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return _decode_json_strings(args)
    text = body.decode("utf-8")
    if content_type.startswith("application/json"):
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            args.update(parsed)
    else:
        args.update(parse_qsl(text, keep_blank_values=True))
    return _decode_json_strings(args)


def _brief(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _make_handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class SlackHandler(BaseHTTPRequestHandler):
        server_version = "FakeSlack/1"
        timeout = 10

        def do_POST(self) -> None:
            self._dispatch()

        def do_GET(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            content_type = headers.get("content-type", "")
            if parts.path.startswith("/api/"):
                method = parts.path.removeprefix("/api/")
                try:
                    args = _parse_args(parts.query, body, content_type)
                except ValueError:
                    self._send_json({"ok": False, "error": "invalid_json"})
                    return
                interval, _ = fake._wait_turn(method)
                self._send_json(fake._handle_api(method, args, headers), trickle=interval)
            elif parts.path.startswith("/response/") and self.command == "POST":
                url_id = parts.path.removeprefix("/response/")
                try:
                    posted: Any = json.loads(body.decode("utf-8") or "null")
                except ValueError:
                    posted = body.decode("utf-8", errors="replace")
                fake._handle_response_url(url_id, posted, headers)
                self._send_json({"ok": True})
            else:
                self._send_json({"ok": False, "error": "not_found"}, HTTPStatus.NOT_FOUND)

        def _send_json(
            self,
            payload: dict[str, Any],
            status: HTTPStatus = HTTPStatus.OK,
            trickle: float = 0.0,
        ) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if payload.get("ok") and self.path.startswith("/api/auth.test"):
                self.send_header("X-OAuth-Scopes", "commands,chat:write")
            self.end_headers()
            if not trickle:
                self.wfile.write(data)
                return
            try:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(trickle)
            except OSError:
                return  # the client gave up waiting: what a trickle is for

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `calls`, not an access log."""

    return SlackHandler


class _Server(ThreadingHTTPServer):
    """http.server's listen backlog is 5: forty clicks answered at once overflow it and the
    kernel resets connections, which Slack itself never does. A real server's backlog."""

    request_queue_size = 1024
