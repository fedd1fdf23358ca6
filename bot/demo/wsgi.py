"""The little WSGI the demo's stand-ins and page need: read a request, answer JSON or a file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The page and the app send small bodies; anything bigger is not theirs.
MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True))

    def json(self, *, exact_numbers: bool = False) -> Any:
        """The body as JSON, or None when it is not JSON; numbers as Decimals if asked."""
        number = Decimal if exact_numbers else None
        try:
            return json.loads(self.body.decode("utf-8"), parse_float=number, parse_int=number)
        except (UnicodeDecodeError, ValueError):
            return None


def read_request(environ: dict[str, Any]) -> Request:
    length = str(environ.get("CONTENT_LENGTH") or "")
    size = min(int(length), MAX_BODY_BYTES) if length.isdigit() else 0
    body = environ["wsgi.input"].read(size) if size else b""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return Request(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        path=str(environ.get("PATH_INFO", "")),
        query=dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)),
        content_type=str(environ.get("CONTENT_TYPE", "")),
        headers=headers,
        body=body,
    )


def respond(
    start_response: StartResponse,
    body: bytes,
    content_type: str,
    status: str = "200 OK",
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def respond_json(
    start_response: StartResponse, payload: Any, status: str = "200 OK"
) -> list[bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return respond(start_response, body, "application/json; charset=utf-8", status)


def respond_raw_json(
    start_response: StartResponse, text: str, status: str = "200 OK"
) -> list[bytes]:
    """JSON already written out, e.g. with balances as exact numbers no float ever held."""
    return respond(start_response, text.encode("utf-8"), "application/json; charset=utf-8", status)


def not_found(start_response: StartResponse) -> list[bytes]:
    return respond_json(start_response, {"error": "not found"}, "404 Not Found")
