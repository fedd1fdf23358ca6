"""A loopback fake of SMS Partner's sub-account credit API, for tests.

`FakeSMSPartner` is a real HTTP server on 127.0.0.1 (port chosen by the OS) that answers
`POST /v1/subaccount/credit/add` and `/remove` as the vendor page describes: a JSON body in,
`{"success": true, "code": 200, "credit": ..., "subaccountCredit": ..., "currency": "EUR"}`
or `{"success": false, "code": N, "message": "..."}` out, or the positional `<result>` XML
when the request says `"_format": "xml"`. Balances are Decimals and go out with 3 decimals
as raw JSON numbers (`990.000`), never through float. It records every request and lets a
test block until some arrived with `wait_for_requests`, without sleeping.

Switches, cleared by `reset()`, in the order they win:
- `rate_limited` (429), `http_500`, `force_error(...)`, `force_body(...)`, `garbage_body`:
  the request never reaches the transfer logic, so no balance moves.
- `close_connection_after_request`, `hang`, `delay_seconds`: the transfer is done, only the
  answer is lost (socket dropped), held back until `release()` / `stop()`, or late. This is
  the case that makes an outcome unknown: the vendor moved the credit, the client never heard.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_KEY = "test-smspartner-key"
API_PREFIX = "/v1"
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


class FakeSMSPartner:
    """A loopback SMS Partner that moves Decimal balances and records what it receives."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        main_balance: Decimal = Decimal("1000.000"),
        currency: str = "EUR",
    ) -> None:
        self.api_key = api_key
        self.main_balance = main_balance
        self.currency = currency
        self.subaccounts: dict[str, Decimal] = {}
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
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
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

    def add_subaccount(self, token: str, balance: Decimal = Decimal("0")) -> None:
        with self._changed:
            self.subaccounts[token] = balance

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

    # -- what was recorded -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

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
        if request.method != "POST" or request.path not in _ACTIONS:
            return _Reply(
                HTTPStatus.NOT_FOUND,
                _json_failure(404, "Page introuvable"),
                "application/json; charset=utf-8",
            )
        reply = self._transfer(_ACTIONS[request.path], fields, as_xml)
        if self.close_connection_after_request:
            return _Reply(0, b"", "", drop=True)
        return _Reply(
            reply.status,
            reply.body,
            reply.content_type,
            hold=self._released if self.hang else None,
            delay=self.delay_seconds,
        )

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


_ACTIONS = {
    f"{API_PREFIX}/subaccount/credit/add": "add",
    f"{API_PREFIX}/subaccount/credit/remove": "remove",
}


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

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests`; and an access log is where a key would leak."""

    return SMSPartnerHandler
