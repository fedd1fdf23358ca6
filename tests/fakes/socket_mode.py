"""A loopback fake of Slack's Socket Mode: a real WebSocket server speaking its envelopes.

Slack's side of the protocol: on connect it sends `hello`; each event arrives as an
envelope `{"envelope_id", "type", "payload", "accepts_response_payload"}`; the app answers
with `{"envelope_id", "payload"?}` within 3 seconds. FakeSlack.socket_mode_url points
apps.connections.open here.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None


class FakeSocketMode:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, Ack] = {}
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeSocketMode:
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket={secrets.token_hex(8)}"

    def wait_connected(self, timeout: float = 15.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._connections), timeout):
                raise AssertionError("no Socket Mode client connected")

    @property
    def connected(self) -> int:
        with self._changed:
            return len(self._connections)

    def send(self, envelope_type: str, payload: dict[str, Any]) -> str:
        """Hand one payload to a connected client, as Slack does; return its envelope id."""
        envelope_id = secrets.token_hex(8)
        message = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
        }
        with self._changed:
            connection = self._connections[0]
        connection.send(json.dumps(message))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self._acks, timeout):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged")
            return self._acks[envelope_id]

    def _handle(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A0TEST"},
                }
            )
        )
        with self._changed:
            self._connections.append(connection)
            self._changed.notify_all()
        try:
            for raw in connection:
                message = json.loads(raw)
                if "envelope_id" in message:
                    with self._changed:
                        self._acks[message["envelope_id"]] = Ack(
                            message["envelope_id"], message.get("payload")
                        )
                        self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._changed.notify_all()
