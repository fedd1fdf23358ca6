"""Pre-signed Slack requests and a load generator, in a process of its own, that times each.

Requests are signed before the clock starts, so HMAC cost on our side is not counted;
they are signed with one timestamp per level because Bolt refuses a timestamp more than
5 minutes old, and a whole run can take longer than that.

The generator runs in its own process (`LoadClient`): the fakes answer the app's cards and
transfers in the bench process, and under one GIL that work would slow the client timing
the app, and only the app. Send times are `time.perf_counter()`, CLOCK_MONOTONIC on Linux,
which the bench process can compare with its own.

Each worker keeps one connection alive, as Slack does. By default it is a bare
`http.client.HTTPConnection`: `requests` spends about 0.65 ms of CPU per request on this
machine, twice what a bare Bolt ack costs the server, so with it the client's own GIL queue
becomes most of what is measured at concurrency 20 and pulls every ratio towards 1.
`client="requests"` (one `requests.Session` per worker) is kept to show that effect.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import queue
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests

from tests.slack_requests import FORM, USER_AGENT, sign

REQUEST_TIMEOUT_SECONDS = 30
# A connection the server has not accepted by then is counted, and the worker goes on.
WARM_UP_TIMEOUT_SECONDS = 2
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
CLIENTS = ("http.client", "requests")


@dataclass(frozen=True)
class Signed:
    """One request ready to go: its body and the headers Slack would send with it."""

    body: bytes
    headers: dict[str, str]


def command_body(fields: dict[str, str]) -> bytes:
    """A slash command as Slack posts it: the fields, form-encoded."""
    return urlencode(fields).encode("utf-8")


def click_body(payload: dict[str, Any]) -> bytes:
    """An interaction as Slack posts it: `payload=<url-encoded JSON>`."""
    return urlencode({"payload": json.dumps(payload)}).encode("utf-8")


def sign_all(bodies: list[bytes], signing_secret: str) -> list[Signed]:
    """Sign every body now, with one fresh timestamp (valid for Bolt's 5 minutes)."""
    timestamp = int(time.time())
    return [
        Signed(
            body=body,
            headers={
                "Content-Type": FORM,
                "User-Agent": USER_AGENT,
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": sign(signing_secret, timestamp, body),
            },
        )
        for body in bodies
    ]


@dataclass
class LoadResult:
    """Per request (by index): when it was sent and how long its response took."""

    sent_at: dict[int, float] = field(default_factory=dict)
    latencies: dict[int, float] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    # Workers whose connection the server did not accept before the start (see run_load).
    refused_connections: int = 0
    client_cpu_seconds: float = 0.0  # what the generating process spent, for the notes

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")


# -- one worker's keep-alive connection ---------------------------------------------------


class Connection(Protocol):
    def warm_up(self) -> bool: ...
    def post(self, signed: Signed) -> str: ...
    def close(self) -> None: ...


class HttpClientConnection:
    """One `http.client` connection: the least client work per request."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=WARM_UP_TIMEOUT_SECONDS
        )

    def warm_up(self) -> bool:
        """Open the connection; False if the server did not answer in time."""
        try:
            self._conn.request("GET", HEALTH_PATH)
            self._conn.getresponse().read()
        except OSError:
            self._reset()
            return False
        finally:
            self._conn.timeout = REQUEST_TIMEOUT_SECONDS  # for the connections to come
        if self._conn.sock is not None:
            self._conn.sock.settimeout(REQUEST_TIMEOUT_SECONDS)
        return True

    def post(self, signed: Signed) -> str:
        """POST one request; its HTTP status, or the exception's name."""
        try:
            self._conn.request("POST", EVENTS_PATH, body=signed.body, headers=signed.headers)
            response = self._conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            self._reset()  # the next request opens a new connection
            return type(error).__name__
        return str(response.status)

    def _reset(self) -> None:
        self._conn.close()

    def close(self) -> None:
        self._conn.close()


class RequestsConnection:
    """One `requests.Session`: what an app's own client code would typically use."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._session = requests.Session()

    def warm_up(self) -> bool:
        try:
            self._session.get(self._base_url + HEALTH_PATH, timeout=WARM_UP_TIMEOUT_SECONDS)
        except requests.RequestException:
            return False
        return True

    def post(self, signed: Signed) -> str:
        try:
            response = self._session.post(
                self._base_url + EVENTS_PATH,
                data=signed.body,
                headers=signed.headers,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            return type(error).__name__
        return str(response.status_code)

    def close(self) -> None:
        self._session.close()


def connect(base_url: str, client: str) -> Connection:
    if client == "requests":
        return RequestsConnection(base_url)
    return HttpClientConnection(base_url)


# -- the generator ------------------------------------------------------------------------


def run_load(
    base_url: str,
    batch: list[Signed],
    concurrency: int,
    *,
    every_seconds: float = 0.0,
    client: str = "http.client",
) -> LoadResult:
    """Send `batch` to POST /slack/events from `concurrency` workers, each with its own
    keep-alive connection, and time every response.

    By default each worker sends its next request as soon as the previous one is answered
    (closed loop: the server runs flat out). With `every_seconds`, request i leaves no
    sooner than i x every_seconds after the start: a steady rate, as people clicking make.

    Each worker opens its connection (GET /healthz) before the common start, so connection
    set-up is not in the figures. A server may not accept them all (waitress stops accepting
    at its `connection_limit`): such a worker is counted in `refused_connections` and sends
    anyway; its requests then wait in the listen backlog, and their latency shows it."""
    cpu_before = time.process_time()
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(batch)):
        todo.put(index)
    result = LoadResult()
    lock = threading.Lock()
    started: list[float] = []
    start = threading.Barrier(concurrency + 1, action=lambda: started.append(time.perf_counter()))
    finished: list[float] = []

    def worker() -> None:
        connection = connect(base_url, client)
        try:
            if not connection.warm_up():
                with lock:
                    result.refused_connections += 1
            start.wait()
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    break
                if every_seconds:
                    _sleep_until(started[0] + index * every_seconds)
                sent = time.perf_counter()
                status = connection.post(batch[index])
                done = time.perf_counter()
                with lock:
                    result.sent_at[index] = sent
                    result.latencies[index] = done - sent
                    result.statuses[status] += 1
        finally:
            connection.close()
            with lock:
                finished.append(time.perf_counter())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    result.wall_seconds = max(finished) - started[0]
    result.client_cpu_seconds = time.process_time() - cpu_before
    return result


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


class LoadClient:
    """`run_load` in one long-lived child process (spawned: the bench process has threads)."""

    def __init__(self, client: str = "http.client") -> None:
        self.client = client
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self.cpu_seconds = 0.0  # spent generating load, all runs together

    def run(
        self, base_url: str, batch: list[Signed], concurrency: int, *, every_seconds: float = 0.0
    ) -> LoadResult:
        future = self._pool.submit(
            run_load,
            base_url,
            batch,
            concurrency,
            every_seconds=every_seconds,
            client=self.client,
        )
        result = future.result()
        self.cpu_seconds += result.client_cpu_seconds
        return result

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
