"""The Slack Web API clients: one TLS context for the process, kept-alive connections, no retry.

slack_sdk's own `WebClient` opens a new connection for every call (urllib) and, left with
`ssl=None`, builds a new default `SSLContext` for each HTTPS one: 17.5 ms of CPU to load
the CA bundle, then a full TLS handshake, on every card posted or updated.

`PooledWebClient` keeps slack_sdk's typed methods (`chat_postMessage`, `auth_test`...),
which all end in the public `WebClient.api_call`, and sends those calls through
`KeptConnections`: `http.client` connections kept open between calls, per host, made with
the process's one `SSLContext`, taken and given back under a lock (many workers call Slack
at once). What it does not handle (file uploads, OAuth's basic auth, a proxy, a team_id)
goes to slack_sdk's own path, with the same context. The three chat methods the cards use
skip slack_sdk's conversion of block objects when the blocks are plain dicts already (what
bot/slack/blocks.py builds), and send the same JSON. tests/test_slack_web.py fails if the
extension point moves.

Nothing here ever sends a call twice: no retry handlers, no retry on a failed connection,
no redirects. An automatic retry after a reset connection re-posted a card that Slack had
already shown.
"""

from __future__ import annotations

import functools
import http.client
import json
import select
import ssl
import threading
import time
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode, urljoin, urlsplit

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

# Idle connections kept per host: as many as the threads that may call Slack at once
# (bot/slack/app.py's 64 workers), so a burst does not open and close extra ones.
KEPT_CONNECTIONS = 64
# A connection idle longer than this is closed and replaced rather than reused. Servers close
# idle ones on their own clock (Apache's 5 s is the shortest common default; FakeSlack's
# 10 s): a call sent just as the server closes is reset, and since nothing is re-sent, that
# card would be lost. Short enough to stay clear of that; long enough to cover a burst.
MAX_IDLE_SECONDS = 4.0
FORM = "application/x-www-form-urlencoded"
JSON = "application/json;charset=utf-8"
DEFAULT_PORTS = {"http": 80, "https": 443}
# The list fields slack_sdk's `_parse_web_class_objects` turns from objects into dicts.
BLOCK_LISTS = ("blocks", "attachments", "user_auth_blocks", "chunks")

_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def slack_ssl_context() -> ssl.SSLContext:
    """The process's one TLS context for Slack, made on first use.

    The system's trust store, as Python's default: SSL_CERT_FILE / SSL_CERT_DIR apply."""
    global _context  # noqa: PLW0603 - one context per process is the point
    with _context_lock:
        if _context is None:
            _context = ssl.create_default_context()
        return _context


def slack_web_client(
    *, token: str, base_url: str, timeout: int, ssl_context: ssl.SSLContext | None = None
) -> PooledWebClient:
    """A Web API client for the bot token: pooled connections, the shared context, no retry."""
    context = ssl_context or slack_ssl_context()
    return PooledWebClient(
        pool=KeptConnections(ssl_context=context),
        token=token,
        base_url=base_url,
        timeout=timeout,
        ssl=context,
        retry_handlers=[],
    )


def slack_webhook_client(url: str, *, timeout: int) -> WebhookClient:
    """A response_url client with the shared context (one connection per post: slack_sdk's
    webhook client has no pluggable transport, and a response_url is used once or twice per
    request). Unlike chat.postMessage, what the app sends there is idempotent for the reader
    (an ephemeral note, or `replace_original` of a card), so a connection that failed is
    tried once more: a lost note would leave a click unanswered."""
    return WebhookClient(
        url,
        timeout=timeout,
        ssl=slack_ssl_context(),
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )


Origin = tuple[str, str, int]  # scheme, host, port


class Answer:
    """An HTTP answer, read to its end."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class KeptConnections:
    """Idle kept-alive connections per origin, the last given back taken first (it is the
    one least likely to have been closed by the server), at most KEPT_CONNECTIONS each.

    A connection is only ever used by the thread that took it. One that failed, that the
    server said it would close, that sat idle over MAX_IDLE_SECONDS or that the server
    closed meanwhile is never used again."""

    def __init__(self, *, ssl_context: ssl.SSLContext) -> None:
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[tuple[float, http.client.HTTPConnection]]] = {}

    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """POST once on a kept or new connection; raises OSError or HTTPException as
        http.client does, after closing the connection. Redirects are answers like others."""
        origin, path = _target(url)
        connection = self._take(origin) or self._connection(origin)
        # The call's timeout, for the connect and for each read (a socket timeout).
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, dict(response.getheaders()), response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:  # `Connection: close`, or an HTTP/1.0 answer
            connection.close()
        else:
            self._give_back(origin, connection)
        return answer

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle = [connection for kept in self._idle.values() for _, connection in kept]
            self._idle.clear()
        for connection in idle:
            connection.close()

    def _take(self, origin: Origin) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                kept = self._idle.get(origin)
                if not kept:
                    return None
                given_back_at, connection = kept.pop()
                stale = []
                if time.monotonic() - given_back_at > MAX_IDLE_SECONDS:
                    # The ones below were given back earlier: all too old as well.
                    stale = [connection, *(older for _, older in kept)]
                    kept.clear()
            if not stale and _still_open(connection):
                return connection
            for closing in stale or [connection]:
                closing.close()

    def _give_back(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            kept = self._idle.setdefault(origin, [])
            if len(kept) < KEPT_CONNECTIONS:
                kept.append((time.monotonic(), connection))
                return
        connection.close()

    def _connection(self, origin: Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, context=self.ssl_context)
        return http.client.HTTPConnection(host, port)


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[Origin, str]:
    """The origin and the request target of a Web API URL (a handful, parsed once each)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise http.client.InvalidURL(f"not an http(s) URL: {parts.scheme!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]), path


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """False when the server closed the idle connection or sent something unasked: its
    socket is readable (urllib3's `is_connection_dropped`), or TLS holds unread data."""
    sock = connection.sock
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


class PooledWebClient(WebClient):
    """A `WebClient` whose form and JSON calls go through kept-alive connections."""

    def __init__(self, *, pool: KeptConnections, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool = pool

    def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: dict[str, str] | None = None,
    ) -> SlackResponse:
        if files or auth or self.proxy or self.default_params or http_verb != "POST":
            return super().api_call(
                api_method,
                http_verb=http_verb,
                files=files,
                data=data,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
            )
        url = urljoin(self.base_url, api_method.lstrip("/"))
        # As slack_sdk does: the client's headers win over the call's, a per-call token
        # (a `token` field) over the client's, and it travels as a header, not in the body.
        request_headers = {**(headers or {}), **self.headers}
        fields = _form_fields(params, data)
        document = dict(json) if json is not None else None
        token = fields.pop("token", None) or (document or {}).pop("token", None) or self.token
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        if document is not None:
            body = _dumps(document)
            request_headers["Content-Type"] = JSON
        else:
            body = urlencode(fields).encode("utf-8")
            request_headers["Content-Type"] = FORM
        try:
            response = self.pool.post(url, body=body, headers=request_headers, timeout=self.timeout)
        except (OSError, http.client.HTTPException) as error:
            # What slack_sdk's own client raises when the connection fails, so callers'
            # handling does not depend on which path a call took.
            raise URLError(error) from error
        answer = SlackResponse(
            client=self,
            http_verb="POST",
            api_url=url,
            req_args={"headers": request_headers, "params": fields, "json": document},
            data=_parsed(response.body),
            headers=response.headers,
            status_code=response.status,
        )
        answer.validate()  # type: ignore[no-untyped-call]  # raises SlackApiError if not ok
        return answer

    # The chat methods below take exactly slack_sdk's parameters (tests/test_slack_web.py
    # checks) and, for plain-dict messages, send what slack_sdk's own would: its fields, the
    # call's extra ones first, None values left out. Anything else goes to slack_sdk's.

    def chat_postMessage(
        self,
        *,
        channel: str,
        text: str | None = None,
        as_user: bool | None = None,
        attachments: Any = None,
        blocks: Any = None,
        thread_ts: str | None = None,
        reply_broadcast: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        container_id: str | None = None,
        icon_emoji: str | None = None,
        icon_url: str | None = None,
        mrkdwn: bool | None = None,
        link_names: bool | None = None,
        username: str | None = None,
        parse: str | None = None,
        metadata: Any = None,
        markdown_text: str | None = None,
        **kwargs: Any,
    ) -> SlackResponse:
        fields = {
            **kwargs,
            "channel": channel,
            "text": text,
            "as_user": as_user,
            "attachments": attachments,
            "blocks": blocks,
            "thread_ts": thread_ts,
            "reply_broadcast": reply_broadcast,
            "unfurl_links": unfurl_links,
            "unfurl_media": unfurl_media,
            "container_id": container_id,
            "icon_emoji": icon_emoji,
            "icon_url": icon_url,
            "mrkdwn": mrkdwn,
            "link_names": link_names,
            "username": username,
            "parse": parse,
            "metadata": metadata,
            "markdown_text": markdown_text,
        }
        message = _plain_message(fields)
        if message is None:
            return super().chat_postMessage(**fields)
        return self.api_call("chat.postMessage", json=message)

    def chat_update(
        self,
        *,
        channel: str,
        ts: str,
        text: str | None = None,
        attachments: Any = None,
        blocks: Any = None,
        as_user: bool | None = None,
        file_ids: Any = None,
        link_names: bool | None = None,
        parse: str | None = None,
        reply_broadcast: bool | None = None,
        metadata: Any = None,
        markdown_text: str | None = None,
        **kwargs: Any,
    ) -> SlackResponse:
        fields = {
            **kwargs,
            "channel": channel,
            "ts": ts,
            "text": text,
            "attachments": attachments,
            "blocks": blocks,
            "as_user": as_user,
            "link_names": link_names,
            "parse": parse,
            "reply_broadcast": reply_broadcast,
            "metadata": metadata,
            "markdown_text": markdown_text,
        }
        # slack_sdk joins a list of file ids; the cards never send any.
        message = _plain_message(fields) if file_ids is None else None
        if message is None:
            return super().chat_update(**fields, file_ids=file_ids)
        return self.api_call("chat.update", json=message)

    def chat_postEphemeral(
        self,
        *,
        channel: str,
        user: str,
        text: str | None = None,
        as_user: bool | None = None,
        attachments: Any = None,
        blocks: Any = None,
        thread_ts: str | None = None,
        icon_emoji: str | None = None,
        icon_url: str | None = None,
        link_names: bool | None = None,
        username: str | None = None,
        parse: str | None = None,
        markdown_text: str | None = None,
        **kwargs: Any,
    ) -> SlackResponse:
        fields = {
            **kwargs,
            "channel": channel,
            "user": user,
            "text": text,
            "as_user": as_user,
            "attachments": attachments,
            "blocks": blocks,
            "thread_ts": thread_ts,
            "icon_emoji": icon_emoji,
            "icon_url": icon_url,
            "link_names": link_names,
            "username": username,
            "parse": parse,
            "markdown_text": markdown_text,
        }
        message = _plain_message(fields)
        if message is None:
            return super().chat_postEphemeral(**fields)
        return self.api_call("chat.postEphemeral", json=message)


def _plain_message(fields: dict[str, Any]) -> dict[str, Any] | None:
    """`fields` without its None values, when slack_sdk would send them as they are: block
    and attachment lists of plain dicts (as lists), a dict or no metadata, and a text
    (without one slack_sdk warns, so it goes that way). None when slack_sdk's own method
    has to convert or warn."""
    if not (_has_text(fields.get("text")) or _has_text(fields.get("markdown_text"))):
        return None
    message: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name in BLOCK_LISTS and not isinstance(value, str):
            if type(value) not in (list, tuple) or any(type(item) is not dict for item in value):
                return None
            message[name] = list(value)
        elif name == "metadata" and type(value) is not dict:
            return None
        else:
            message[name] = value
    return message


def _has_text(text: object) -> bool:
    return isinstance(text, str) and bool(text.strip())


def _form_fields(*parts: dict[str, Any] | None) -> dict[str, Any]:
    """slack_sdk's form rules: None dropped, booleans as "1" / "0"."""
    fields: dict[str, Any] = {}
    for part in parts:
        for name, value in (part or {}).items():
            if value is not None:
                fields[name] = ("1" if value else "0") if isinstance(value, bool) else value
    return fields


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode("utf-8")


def _parsed(body: bytes) -> dict[str, Any]:
    """The JSON answer; what slack_sdk makes of a body that is not JSON (a proxy's page)."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except ValueError:
        return {"ok": False, "error": "Received a response in a non-JSON format"}
    return parsed if isinstance(parsed, dict) else {"ok": False, "error": "invalid_response"}
