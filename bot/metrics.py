"""Prometheus metrics at GET /metrics (`--metrics-port`), in Prometheus's text format.

Requests by state are counted in the database at scrape time, not in this process: every
replica then reports the same figures, and a restart resets nothing. SMS Partner calls are
counted here, as the client reports them (`observe_call`), one series per replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.domain import Status
from bot.store import schema

# SMS Partner calls last from tens of milliseconds to SMSPARTNER_TIMEOUT_SECONDS (10 s).
CALL_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CallRecord(Protocol):
    """What the SMS Partner client reports after each call."""

    @property
    def operation(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def code(self) -> int | None: ...
    @property
    def seconds(self) -> float: ...


class Metrics:
    """The registry behind GET /metrics. Build it before the bot, so the SMS Partner client
    gets `observe_call`; give it the store's engine with `count_requests_in`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "credit_bot_smspartner_calls",
            "SMS Partner calls by operation, outcome and SMS Partner's error code",
            ["operation", "outcome", "code"],
            registry=self.registry,
        )
        self.call_seconds = Histogram(
            "credit_bot_smspartner_call_seconds",
            "How long SMS Partner calls took, answer or not",
            ["operation"],
            buckets=CALL_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._server: object | None = None

    def count_requests_in(self, engine: Engine) -> None:
        """Report requests by state, counted in this database at each scrape."""
        self.registry.register(RequestsCollector(engine))

    def observe_call(self, record: CallRecord) -> None:
        """The SMS Partner client's observer: one call, counted and timed."""
        code = "" if record.code is None else str(record.code)
        self.calls.labels(record.operation, record.outcome, code).inc()
        self.call_seconds.labels(record.operation).observe(record.seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, *, host: str, port: int) -> None:
        """Serve GET /metrics on host:port from a daemon thread. Raises OSError (port taken)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]
            self._server = None


class RequestsCollector(Collector):
    """Requests by state, read from the database at each scrape."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "credit_bot_database_up", "1 if the database answered this scrape, else 0"
        )
        try:
            counts = self._counts()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        finished = CounterMetricFamily(
            "credit_bot_requests_finished",
            "Requests that reached a final state, by state (all replicas, from the database)",
            labels=["state"],
        )
        for status in Status:
            if status.is_final:
                finished.add_metric([status.value], counts.get(status.value, 0))
        yield finished
        pending = GaugeMetricFamily(
            "credit_bot_requests_pending", "Requests waiting for an approval"
        )
        pending.add_metric([], counts.get(Status.PENDING.value, 0))
        yield pending
        executing = GaugeMetricFamily(
            "credit_bot_requests_executing", "Requests being sent to SMS Partner now"
        )
        executing.add_metric([], counts.get(Status.EXECUTING.value, 0))
        yield executing

    def _counts(self) -> dict[str, int]:
        table = schema.credit_requests
        query = select(table.c.status, func.count()).group_by(table.c.status)
        with self._engine.connect() as conn:
            return {str(status): int(count) for status, count in conn.execute(query)}
