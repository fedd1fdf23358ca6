"""The database schema: the tables the store queries, and the migrations that build them.

Migrations are plain, portable SQL (SQLite and PostgreSQL both run it as written) and
are history: a step is never edited once released; a change of schema is a new step.
`migrate()` runs in one transaction, under a lock, so replicas starting together
upgrade the database once and a failed step leaves it as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Text, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


class DecimalText(TypeDecorator[Decimal]):
    """Money as text: exact on every backend (SQLite has no exact numeric type)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out; SQLite stores them naive, PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(dt.UTC)
        # SQLite compares datetimes as text: one naive UTC format keeps the order right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


metadata = MetaData()

credit_requests = Table(
    "credit_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("action", String(16), nullable=False),
    Column("subaccount_token", String(128), nullable=False),
    Column("amount", DecimalText, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requester_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("response_url", Text),
    Column("message_ts", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("approver_id", String(32)),
    Column("executing_at", UTCDateTime),
    Column("canceller_id", String(32)),
    Column("finished_at", UTCDateTime),
    Column("main_balance", DecimalText),
    Column("subaccount_balance", DecimalText),
    Column("error_code", Integer),
    Column("error_message", Text),
    # Schema 2: which replica is executing the transfer, and what the card last showed.
    Column("executor", String(200)),
    Column("card_status", String(16)),
    # Schema 3: the command a request came from (one command, one request), and how the
    # sweep is doing at closing its card (attempts, next try, given up).
    Column("trigger_id", String(255), unique=True),
    Column("card_attempts", Integer, nullable=False, default=0),
    Column("card_retry_at", UTCDateTime),
    Column("card_given_up_at", UTCDateTime),
    # Schema 4: what was seen before money moved (the sub-account's e-mail, both balances and
    # when they were read), why it moves, the approval rounds, the reminder, and a person's
    # resolution of an unknown outcome.
    Column("subaccount_email", String(320)),
    Column("main_balance_before", DecimalText),
    Column("subaccount_balance_before", DecimalText),
    Column("balances_seen_at", UTCDateTime),
    Column("reason", Text),
    Column("approvals_needed", Integer, nullable=False, default=1),
    Column("first_approver_id", String(32)),
    Column("first_approved_at", UTCDateTime),
    Column("reminded_at", UTCDateTime),
    Column("resolver_id", String(32)),
    Column("resolved_at", UTCDateTime),
)

# Schema 4: one row per approval given (a request above the second-approval threshold gets
# two), so the trail keeps every approver, also those whose click did not change the status.
credit_request_approvals = Table(
    "credit_request_approvals",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("approver_id", String(32), primary_key=True),
    Column("approved_at", UTCDateTime, nullable=False),
)

credit_request_events = Table(
    "credit_request_events",
    metadata,
    Column("request_id", String(64), primary_key=True),
    # The state machine never revisits a status, so (request, status) is unique.
    Column("status", String(16), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", String(32)),
    Column("detail", Text),
)


def _v1_requests_and_events(conn: Connection) -> None:
    conn.execute(
        text(
            """
            CREATE TABLE credit_requests (
                id VARCHAR(64) PRIMARY KEY,
                action VARCHAR(16) NOT NULL,
                subaccount_token VARCHAR(128) NOT NULL,
                amount VARCHAR(40) NOT NULL,
                currency VARCHAR(8) NOT NULL,
                status VARCHAR(16) NOT NULL,
                requester_id VARCHAR(32) NOT NULL,
                channel_id VARCHAR(32) NOT NULL,
                response_url TEXT,
                message_ts VARCHAR(32),
                created_at TIMESTAMP WITH TIME ZONE NOT NULL,
                expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
                approver_id VARCHAR(32),
                executing_at TIMESTAMP WITH TIME ZONE,
                canceller_id VARCHAR(32),
                finished_at TIMESTAMP WITH TIME ZONE,
                main_balance VARCHAR(40),
                subaccount_balance VARCHAR(40),
                error_code INTEGER,
                error_message TEXT
            )
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TABLE credit_request_events (
                request_id VARCHAR(64) NOT NULL REFERENCES credit_requests (id),
                status VARCHAR(16) NOT NULL,
                at TIMESTAMP WITH TIME ZONE NOT NULL,
                actor_id VARCHAR(32),
                detail TEXT,
                PRIMARY KEY (request_id, status)
            )
            """
        )
    )


def _v2_replicas(conn: Connection) -> None:
    """Several replicas: record who executes a transfer and which cards still need closing."""
    conn.execute(text("ALTER TABLE credit_requests ADD COLUMN executor VARCHAR(200)"))
    conn.execute(text("ALTER TABLE credit_requests ADD COLUMN card_status VARCHAR(16)"))
    # Cards of requests that ended before schema 2 already show their outcome.
    conn.execute(text("UPDATE credit_requests SET card_status = status WHERE status <> 'pending'"))
    conn.execute(text("CREATE INDEX ix_credit_requests_status ON credit_requests (status)"))


def _v3_at_most_once(conn: Connection) -> None:
    """One request per command (a UNIQUE trigger_id: NULLs, from older rows, never clash)
    and the sweep's per-card back-off, so a card Slack refuses for good is given up."""
    conn.execute(text("ALTER TABLE credit_requests ADD COLUMN trigger_id VARCHAR(255)"))
    conn.execute(
        text("CREATE UNIQUE INDEX ux_credit_requests_trigger_id ON credit_requests (trigger_id)")
    )
    conn.execute(
        text("ALTER TABLE credit_requests ADD COLUMN card_attempts INTEGER NOT NULL DEFAULT 0")
    )
    conn.execute(
        text("ALTER TABLE credit_requests ADD COLUMN card_retry_at TIMESTAMP WITH TIME ZONE")
    )
    conn.execute(
        text("ALTER TABLE credit_requests ADD COLUMN card_given_up_at TIMESTAMP WITH TIME ZONE")
    )


def _v4_reads_and_approvals(conn: Connection) -> None:
    """What the card showed before the move, the reason, approval rounds, reminders, and
    resolutions of unknown outcomes; indexes for the daily limit, history and the Home tab."""
    for column in (
        "subaccount_email VARCHAR(320)",
        "main_balance_before VARCHAR(40)",
        "subaccount_balance_before VARCHAR(40)",
        "balances_seen_at TIMESTAMP WITH TIME ZONE",
        "reason TEXT",
        "approvals_needed INTEGER NOT NULL DEFAULT 1",
        "first_approver_id VARCHAR(32)",
        "first_approved_at TIMESTAMP WITH TIME ZONE",
        "reminded_at TIMESTAMP WITH TIME ZONE",
        "resolver_id VARCHAR(32)",
        "resolved_at TIMESTAMP WITH TIME ZONE",
    ):
        conn.execute(text(f"ALTER TABLE credit_requests ADD COLUMN {column}"))
    conn.execute(
        text(
            """
            CREATE TABLE credit_request_approvals (
                request_id VARCHAR(64) NOT NULL REFERENCES credit_requests (id),
                approver_id VARCHAR(32) NOT NULL,
                approved_at TIMESTAMP WITH TIME ZONE NOT NULL,
                PRIMARY KEY (request_id, approver_id)
            )
            """
        )
    )
    conn.execute(
        text(
            "CREATE INDEX ix_credit_requests_subaccount ON credit_requests "
            "(subaccount_token, created_at)"
        )
    )
    conn.execute(
        text(
            "CREATE INDEX ix_credit_requests_requester ON credit_requests "
            "(requester_id, created_at)"
        )
    )


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_requests_and_events,
    _v2_replicas,
    _v3_at_most_once,
    _v4_reads_and_approvals,
]
LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database, 0 for an empty one."""
    conn.execute(text("CREATE TABLE IF NOT EXISTS credit_bot_schema (version INTEGER NOT NULL)"))
    row = conn.execute(text("SELECT MAX(version) FROM credit_bot_schema")).scalar()
    return int(row or 0)


def migrate(conn: Connection, *, target: int = LATEST_VERSION) -> int:
    """Bring the schema up to `target` inside the caller's transaction; return the old version."""
    if conn.dialect.name == "postgresql":
        # Replicas starting together: the first migrates, the others wait, then see it done.
        conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
    version = current_version(conn)
    for step in range(version, target):
        MIGRATIONS[step](conn)
        conn.execute(text("INSERT INTO credit_bot_schema (version) VALUES (:v)"), {"v": step + 1})
    return version
