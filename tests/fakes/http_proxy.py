"""A loopback forward HTTP proxy that counts what it forwards, for tests of proxy settings.

`HTTPProxy()` listens on 127.0.0.1 (`url`) and forwards plain-HTTP requests in absolute form
(`GET http://127.0.0.1:port/path HTTP/1.1`, what a client sends to an HTTP proxy) to
127.0.0.1 only, answer read whole then relayed. `forwarded` lists each request's method and
path, in order. No CONNECT: tests talk plain HTTP to the fakes.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers about one hop (RFC 9110, section 7.6.1), and the length, which the proxy sets itself.
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
UPSTREAM_TIMEOUT_SECONDS = 30.0


class HTTPProxy:
    def __init__(self) -> None:
        self.forwarded: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        handler = type("_BoundForward", (_Forward,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def note(self, method: str, path: str) -> None:
        with self._lock:
            self.forwarded.append((method, path))

    def start(self) -> HTTPProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HTTPProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections from the client, as requests uses
    proxy: HTTPProxy

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        target = urlsplit(self.path)
        if target.scheme != "http" or target.hostname != "127.0.0.1" or target.port is None:
            self.send_error(502, "this test proxy forwards to http://127.0.0.1 only")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = f"{target.path}?{target.query}" if target.query else target.path
        self.proxy.note(self.command, target.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
        upstream = http.client.HTTPConnection(
            target.hostname, target.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException):
            # The upstream hung up or was cut: the client hears of it as a gateway failure.
            self.close_connection = True
            return
        finally:
            upstream.close()
        try:
            self._relay(answer, content)
        except OSError:
            self.close_connection = True  # the client gave up waiting (a deadline cut it)

    def _relay(self, answer: http.client.HTTPResponse, content: bytes) -> None:
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in NOT_FORWARDED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        self.wfile.flush()
