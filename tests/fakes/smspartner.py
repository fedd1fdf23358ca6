"""A loopback fake of SMS Partner's sub-account API, for tests.

`FakeSMSPartner` is a real HTTP server on 127.0.0.1 (port chosen by the OS) that answers
`POST /v1/subaccount/credit/add` and `/remove` as the vendor page describes: a JSON body in,
`{"success": true, "code": 200, "credit": ..., "subaccountCredit": ..., "currency": "EUR"}`
or `{"success": false, "code": N, "message": "..."}` out, or the positional `<result>` XML
when the request says `"_format": "xml"`. Balances are Decimals and go out with 3 decimals
as raw JSON numbers (`990.000`), never through float. It records every request and lets a
test block until some arrived with `wait_for_requests`, without sleeping.

It also answers the read calls, from the same live balances: `GET /v1/me?apiKey=…` (the main
account, balances as 3-decimal strings) and `GET /v1/subaccount/list?apiKey=…&page=N`
(`per_page` a page, 20 as SMS Partner does; each item with its e-mail and its own `apiKey`, a
secret the client must drop: `subaccount_api_key(token)` tells a test what to look for).

Switches, cleared by `reset()`, in the order they win:
- `rate_limited` (429), `http_500`, `force_error(...)`, `force_body(...)`, `garbage_body`,
  then `fail_endpoint(endpoint, ...)` for one endpoint only: the request never reaches the
  transfer logic, so no balance moves.
- `close_connection_after_request`, `hang` (or `hang_endpoint(endpoint)`), `delay_seconds`,
  `trickle_seconds`: the transfer is done, only the answer is lost (socket dropped), held back
  until `release()` / `stop()`, late, or sent one byte at a time (status line, headers and
  body) with that pause between bytes. This is the case that makes an outcome unknown: the
  vendor moved the credit, the client never heard.
Endpoints are named as the client's CallRecord names them: "add", "remove", "me",
"subaccount_list".
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_API_KEY = "test-smspartner-key"
API_PREFIX = "/v1"
PAGE_SIZE = 20
CREATED_AT = "2026-01-05 09:30:00"
THREE_DECIMALS = Decimal("0.001")
GARBAGE = b"Service temporairement indisponible, merci de reessayer plus tard.\n"

# What the real API says for each code; the client must show these next to its own text.
MESSAGES = {
    1: "Clé API requise",
    2: "Crédit requis",
    3: "Identifiant du sous-compte requis",
    4: "Vous n'avez pas la permission",
    5: "Le crédit à attribuer doit être supérieur à 0",
    6: "Le solde doit être supérieur à 0",
    7: "Le sous-compte n'existe pas",
    8: "Crédit insuffisant",
    10: "Clé API incorrecte",
}
RATE_LIMITED_MESSAGE = "Trop de requêtes, réessayez dans une minute"
SERVER_ERROR_MESSAGE = "Erreur interne"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any  # the body parsed with Decimal numbers, or None when it is not JSON


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # read the request, then close the socket without a word
    hold: threading.Event | None = None  # answer only once this is set
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the answer's bytes


class FakeSMSPartner:
    """A loopback SMS Partner that moves Decimal balances and records what it receives."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        main_balance: Decimal = Decimal("1000.000"),
        currency: str = "EUR",
        keep_alive: bool = False,
    ) -> None:
        self.api_key = api_key
        # HTTP/1.1 with connections kept between calls, as SMS Partner's servers; by default
        # HTTP/1.0, a connection per call.
        self.keep_alive = keep_alive
        self.main_balance = main_balance
        self.currency = currency
        self.subaccounts: dict[str, Decimal] = {}
        self.subaccount_emails: dict[str, str] = {}
        self._subaccount_keys: dict[str, str] = {}
        self._subaccount_ids: dict[str, int] = {}
        self.username = "owner@example.com"
        self.first_name = "Camille"
        self.last_name = "Martin"
        self.per_page = PAGE_SIZE
        self._changed = threading.Condition(threading.RLock())
        self._requests: list[RecordedRequest] = []
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSMSPartner:
        with self._changed:
            self._released = threading.Event()  # a previous stop() left it set
        handler = _make_handler(self)
        if self.keep_alive:
            handler.protocol_version = "HTTP/1.1"
            # Headers and body are written apart: without TCP_NODELAY, Nagle's algorithm
            # would hold the body until the client's delayed ACK (40 ms).
            handler.disable_nagle_algorithm = True
        server = _Server(("127.0.0.1", 0), handler)
        server.daemon_threads = True
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
            self._released.set()  # free hung handlers, so server_close can join them
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeSMSPartner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSMSPartner is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    # -- state and switches ------------------------------------------------------------------

    def add_subaccount(
        self, token: str, balance: Decimal = Decimal("0"), *, email: str | None = None
    ) -> None:
        """Create (or refill) a sub-account; its e-mail defaults to `<token>@example.com`."""
        with self._changed:
            self.subaccounts[token] = balance
            self.subaccount_emails[token] = email or f"{token}@example.com"

    def subaccount_api_key(self, token: str) -> str:
        """The secret API key the listing gives this sub-account (stable for the fake's life)."""
        with self._changed:
            return self._subaccount_keys.setdefault(token, f"subkey-{secrets.token_hex(12)}")

    def fail_endpoint(
        self,
        endpoint: str,
        code: int,
        message: str = "",
        *,
        http_status: int = 200,
        times: int | None = None,
    ) -> None:
        """Answer `endpoint`'s calls with this error (`times` of them, or all) until `reset()`."""
        if endpoint not in _ENDPOINT_NAMES:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._changed:
            self._endpoint_errors[endpoint] = (code, message or MESSAGES.get(code, ""), http_status)
            self._endpoint_error_times[endpoint] = times

    def hang_endpoint(self, endpoint: str) -> None:
        """Hold `endpoint`'s answers until `release()` / `stop()`, as `hang` does for all."""
        if endpoint not in _ENDPOINT_NAMES:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._changed:
            self._hung_endpoints.add(endpoint)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests that went to `endpoint`."""
        return [request for request in self.requests if _endpoint(request) == endpoint]

    def force_error(self, code: int, message: str, *, http_status: int = 200) -> None:
        """Answer every next call with this business error until `reset()`."""
        with self._changed:
            self._forced_error = (code, message, http_status)

    def force_body(
        self, body: bytes, *, http_status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer every next call with these raw bytes until `reset()`."""
        with self._changed:
            self._forced_body = (body, http_status, dict(headers or {}))

    def release(self) -> None:
        """Let every hung handler answer now; `hang` keeps holding later requests."""
        with self._changed:
            self._released.set()
            self._released = threading.Event()

    def reset(self) -> None:
        """Clear every switch and the recorded requests (balances and sub-accounts stay)."""
        with self._changed:
            self.release()
            self._requests.clear()
            self._forced_error: tuple[int, str, int] | None = None
            self._forced_body: tuple[bytes, int, dict[str, str]] | None = None
            self.http_500 = False
            self.garbage_body = False
            self.rate_limited = False
            self.delay_seconds = 0.0
            self.hang = False
            self.close_connection_after_request = False
            self.trickle_seconds = 0.0
            self._endpoint_errors: dict[str, tuple[int, str, int]] = {}
            self._endpoint_error_times: dict[str, int | None] = {}
            self._hung_endpoints: set[str] = set()

    # -- what was recorded -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def transfers(self) -> list[RecordedRequest]:
        """The recorded credit POSTs (add, remove), without the read calls."""
        return [r for r in self.requests if _endpoint(r) in TRANSFER_ENDPOINTS]

    def wait_for_transfers(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `n` credit POSTs arrived; return them (reads left out)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.transfers) >= n, timeout=timeout):
                raise AssertionError(
                    f"FakeSMSPartner: {len(self.transfers)} transfer(s) in {timeout}s, wanted {n}"
                )
            return self.transfers

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `n` requests arrived; return them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout=timeout):
                raise AssertionError(
                    f"FakeSMSPartner: {len(self._requests)} request(s) in {timeout}s, wanted {n}"
                )
            return list(self._requests)

    # -- answering -------------------------------------------------------------------------

    def _receive(self, request: RecordedRequest) -> _Reply:
        with self._changed:
            self._requests.append(request)
            reply = self._answer(request)
            self._changed.notify_all()
            return reply

    def _answer(self, request: RecordedRequest) -> _Reply:
        fields = request.json if isinstance(request.json, dict) else {}
        as_xml = fields.get("_format") == "xml"
        if self.rate_limited:
            return self._failure(429, RATE_LIMITED_MESSAGE, HTTPStatus.TOO_MANY_REQUESTS, as_xml)
        if self.http_500:
            return self._failure(
                500, SERVER_ERROR_MESSAGE, HTTPStatus.INTERNAL_SERVER_ERROR, as_xml
            )
        if self._forced_error is not None:
            code, message, status = self._forced_error
            return self._failure(code, message, status, as_xml)
        if self._forced_body is not None:
            body, status, headers = self._forced_body
            looks_xml = body.lstrip().startswith(b"<")
            content_type = "application/xml" if looks_xml else "application/json"
            return _Reply(status, body, f"{content_type}; charset=utf-8", headers)
        if self.garbage_body:
            return _Reply(HTTPStatus.OK, GARBAGE, "text/plain; charset=utf-8")
        endpoint = _endpoint(request)
        if endpoint is None:
            return _Reply(
                HTTPStatus.NOT_FOUND,
                _json_failure(404, "Page introuvable"),
                "application/json; charset=utf-8",
            )
        if endpoint in self._endpoint_errors:
            code, message, status = self._endpoint_errors[endpoint]
            left = self._endpoint_error_times[endpoint]
            if left is not None:
                self._endpoint_error_times[endpoint] = left - 1
                if left <= 1:
                    del self._endpoint_errors[endpoint]
            return self._failure(code, message, status, as_xml)
        if endpoint == "me":
            reply = self._main_account(request)
        elif endpoint == "subaccount_list":
            reply = self._subaccount_list(request)
        else:
            reply = self._transfer(endpoint, fields, as_xml)
        if self.close_connection_after_request:
            return _Reply(0, b"", "", drop=True)
        hung = self.hang or endpoint in self._hung_endpoints
        return _Reply(
            reply.status,
            reply.body,
            reply.content_type,
            hold=self._released if hung else None,
            delay=self.delay_seconds,
            trickle=self.trickle_seconds,
        )

    def _query_key_refusal(self, request: RecordedRequest) -> _Reply | None:
        api_key = _query(request, "apiKey")
        if not api_key:
            return self._failure(1, MESSAGES[1], HTTPStatus.OK, False)
        if api_key != self.api_key:
            return self._failure(10, MESSAGES[10], HTTPStatus.OK, False)
        return None

    def _main_account(self, request: RecordedRequest) -> _Reply:
        refusal = self._query_key_refusal(request)
        if refusal is not None:
            return refusal
        balance = _three_decimals(self.main_balance)
        answer = {
            "success": True,
            "code": 200,
            "user": {
                "username": self.username,
                "firstname": self.first_name,
                "lastname": self.last_name,
            },
            "credits": {
                "creditSms": 2690,
                "creditSmsECO": 4445,
                "creditHlr": 20450,
                "toSend": 0,
                "solde": balance,
                "currency": self.currency,
                "balance": balance,
            },
        }
        return _json_reply(answer)

    def _subaccount_list(self, request: RecordedRequest) -> _Reply:
        refusal = self._query_key_refusal(request)
        if refusal is not None:
            return refusal
        page_text = _query(request, "page") or "1"
        page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
        tokens = list(self.subaccounts)
        start = (page - 1) * self.per_page
        answer = {
            "success": True,
            "code": 200,
            "total": len(tokens),
            "nb_per_page": self.per_page,
            "page": page,
            "data": [self._listed(token) for token in tokens[start : start + self.per_page]],
        }
        return _json_reply(answer)

    def _listed(self, token: str) -> dict[str, Any]:
        number = self._subaccount_ids.setdefault(token, len(self._subaccount_ids) + 1)
        return {
            "id": number,
            "email": self.subaccount_emails.get(token, f"{token}@example.com"),
            "type": "subaccount",
            "token": token,
            "createdAt": CREATED_AT,
            "credits": {
                "balance": _three_decimals(self.subaccounts[token]),
                "currency": self.currency,
            },
            "apiKey": self.subaccount_api_key(token),
        }

    def _transfer(self, action: str, fields: dict[str, Any], as_xml: bool) -> _Reply:
        api_key = fields.get("apiKey")
        if not api_key:
            return self._failure(1, MESSAGES[1], HTTPStatus.OK, as_xml)
        if api_key != self.api_key:
            return self._failure(10, MESSAGES[10], HTTPStatus.OK, as_xml)
        if fields.get("credit") in (None, ""):
            return self._failure(2, MESSAGES[2], HTTPStatus.OK, as_xml)
        token = fields.get("tokenSubaccount")
        if not token:
            return self._failure(3, MESSAGES[3], HTTPStatus.OK, as_xml)
        credit = _amount(fields["credit"])
        if credit is None or credit <= 0:
            return self._failure(5, MESSAGES[5], HTTPStatus.OK, as_xml)
        if not isinstance(token, str) or token not in self.subaccounts:
            return self._failure(7, MESSAGES[7], HTTPStatus.OK, as_xml)
        sub = self.subaccounts[token]
        if action == "add":
            if self.main_balance < credit:
                return self._failure(8, MESSAGES[8], HTTPStatus.OK, as_xml)
            self.main_balance -= credit
            self.subaccounts[token] = sub + credit
        else:
            if sub <= 0:
                return self._failure(6, MESSAGES[6], HTTPStatus.OK, as_xml)
            if sub < credit:
                return self._failure(8, MESSAGES[8], HTTPStatus.OK, as_xml)
            self.subaccounts[token] = sub - credit
            self.main_balance += credit
        main, sub = _three_decimals(self.main_balance), _three_decimals(self.subaccounts[token])
        if as_xml:
            entries = ["true", "200", main, sub, _cdata(self.currency)]
            return _Reply(HTTPStatus.OK, _xml(entries), "application/xml; charset=utf-8")
        body = (
            f'{{"success": true, "code": 200, "credit": {main}, "subaccountCredit": {sub}, '
            f'"currency": {json.dumps(self.currency)}}}'
        )
        return _Reply(HTTPStatus.OK, body.encode("utf-8"), "application/json; charset=utf-8")

    def _failure(self, code: int, message: str, status: int, as_xml: bool) -> _Reply:
        if self.garbage_body:
            return _Reply(status, GARBAGE, "text/plain; charset=utf-8")
        if as_xml:
            entries = ["false", str(code), _cdata(message)]
            return _Reply(status, _xml(entries), "application/xml; charset=utf-8")
        return _Reply(status, _json_failure(code, message), "application/json; charset=utf-8")


_ENDPOINTS = {
    ("POST", f"{API_PREFIX}/subaccount/credit/add"): "add",
    ("POST", f"{API_PREFIX}/subaccount/credit/remove"): "remove",
    ("GET", f"{API_PREFIX}/me"): "me",
    ("GET", f"{API_PREFIX}/subaccount/list"): "subaccount_list",
}
_ENDPOINT_NAMES = frozenset(_ENDPOINTS.values())
TRANSFER_ENDPOINTS = frozenset({"add", "remove"})


def _endpoint(request: RecordedRequest) -> str | None:
    return _ENDPOINTS.get((request.method, request.path))


def _query(request: RecordedRequest, name: str) -> str:
    values = parse_qs(request.query).get(name)
    return values[0] if values else ""


def _json_reply(answer: dict[str, Any]) -> _Reply:
    body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
    return _Reply(HTTPStatus.OK, body, "application/json; charset=utf-8")


def _amount(value: Any) -> Decimal | None:
    """The vendor's samples send credit as a string ("100") or a number (50): take both."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _three_decimals(value: Decimal) -> str:
    return format(value.quantize(THREE_DECIMALS), "f")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(entries: list[str]) -> bytes:
    lines = "".join(f"    <entry>{entry}</entry>\n" for entry in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<result>\n{lines}</result>\n'.encode()


def _json_failure(code: int, message: str) -> bytes:
    return json.dumps(
        {"success": False, "code": code, "message": message}, ensure_ascii=False
    ).encode("utf-8")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return None


def _make_handler(fake: FakeSMSPartner) -> type[BaseHTTPRequestHandler]:
    class SMSPartnerHandler(BaseHTTPRequestHandler):
        server_version = "FakeSMSPartner/1"
        timeout = 10

        def do_POST(self) -> None:
            self._dispatch()

        def do_GET(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parts.query,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                json=_parse_json(body),
            )
            reply = fake._receive(request)
            if reply.drop:
                self.close_connection = True
                return
            if reply.hold is not None:
                reply.hold.wait()
            if reply.delay > 0:
                fake._released.wait(reply.delay)
            if reply.trickle > 0:
                self._trickle(reply)
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                # The client gave up waiting (its timeout) and closed the socket.
                self.close_connection = True

        def _trickle(self, reply: _Reply) -> None:
            """The whole answer, status line first, one byte per `reply.trickle` seconds:
            every read the client makes gets a byte quickly, so no per-read timeout fires."""
            phrase = HTTPStatus(reply.status).phrase
            head = [f"HTTP/1.0 {reply.status} {phrase}", f"Content-Type: {reply.content_type}"]
            head.append(f"Content-Length: {len(reply.body)}")
            head += [f"{name}: {value}" for name, value in reply.headers.items()]
            raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
            self.close_connection = True
            released = fake._released
            for index in range(len(raw)):
                try:
                    self.wfile.write(raw[index : index + 1])
                except OSError:
                    return  # the client gave up: its deadline shut the connection
                if released.wait(reply.trickle):
                    return  # stop() or release(): end the trickle with the test

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests`; and an access log is where a key would leak."""

    return SMSPartnerHandler


class _Server(ThreadingHTTPServer):
    """http.server's listen backlog is 5: forty clicks answered at once overflow it and the
    kernel resets connections, which SMS Partner itself never does. A real server's backlog."""

    request_queue_size = 1024
