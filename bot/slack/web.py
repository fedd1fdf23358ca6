"""The Slack Web API clients: one TLS context for the process, kept-alive connections, no retry.

slack_sdk's own `WebClient` opens a new connection for every call (urllib) and, left with
`ssl=None`, builds a new default `SSLContext` for each HTTPS one: 17.5 ms of CPU to load
the CA bundle, then a full TLS handshake, on every card posted or updated.

`PooledWebClient` keeps slack_sdk's typed methods (`chat_postMessage`, `auth_test`...),
which all end in the public `WebClient.api_call`, and sends those calls through one
urllib3 pool: thread-safe (many workers call Slack at once) and keeping connections open
between calls, all made with the process's one `SSLContext`. What the pool does not
handle (file uploads, OAuth's basic auth, a proxy, a team_id) goes to slack_sdk's own
path, with the same context. tests/test_slack_web.py fails if the extension point moves.

Nothing here ever sends a call twice: no retry handlers, no urllib3 retries, no redirects.
An automatic retry after a reset connection re-posted a card that Slack had already shown.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode, urljoin

import urllib3
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Idle connections kept per host: as many as the threads that may call Slack at once
# (bot/slack/app.py's 64 workers), so a burst does not open and close extra ones (urllib3
# would then warn "Connection pool is full" for each).
KEPT_CONNECTIONS = 64
# A connection idle longer than this is closed and replaced rather than reused. Servers close
# idle ones on their own clock (Apache's 5 s is the shortest common default; FakeSlack's
# 10 s): a call sent just as the server closes is reset, and since nothing is re-sent, that
# card would be lost. Short enough to stay clear of that; long enough to cover a burst.
MAX_IDLE_SECONDS = 4.0
FORM = "application/x-www-form-urlencoded"
JSON = "application/json;charset=utf-8"

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
    pool = urllib3.PoolManager(
        maxsize=KEPT_CONNECTIONS, block=False, ssl_context=context, retries=False
    )
    pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return PooledWebClient(
        pool=pool,
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


class _IdleLimitedConnection(HTTPConnection):
    """A kept-alive connection that counts as dropped once idle over MAX_IDLE_SECONDS, so
    the pool replaces it (urllib3 asks `is_connected` before reusing one)."""

    answered_at = -math.inf

    def getresponse(self) -> Any:
        response = super().getresponse()
        self.answered_at = time.monotonic()
        return response

    @property
    def is_connected(self) -> bool:
        fresh = time.monotonic() - self.answered_at <= MAX_IDLE_SECONDS
        return fresh and super().is_connected


class _IdleLimitedHTTPSConnection(_IdleLimitedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _IdleLimitedConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _IdleLimitedHTTPSConnection


class PooledWebClient(WebClient):
    """A `WebClient` whose form and JSON calls go through a kept-alive urllib3 pool."""

    def __init__(self, *, pool: urllib3.PoolManager, **kwargs: Any) -> None:
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
            response = self.pool.request(
                "POST",
                url,
                body=body,
                headers=request_headers,
                timeout=self.timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            # What slack_sdk's own client raises when the connection fails, so callers'
            # handling does not depend on which path a call took.
            raise URLError(error) from error
        answer = SlackResponse(
            client=self,
            http_verb="POST",
            api_url=url,
            req_args={"headers": request_headers, "params": fields, "json": document},
            data=_parsed(response.data),
            headers=dict(response.headers),
            status_code=response.status,
        )
        answer.validate()  # type: ignore[no-untyped-call]  # raises SlackApiError if not ok
        return answer


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
