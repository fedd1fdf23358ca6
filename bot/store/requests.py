"""Credit requests and their audit trail, on SQLite (one process) or PostgreSQL (replicas).

Every change of status is a conditional UPDATE (`... WHERE status = 'pending'`) checked
by its row count, written in the same transaction as its audit event. That makes each
transition a claim: among any number of threads, processes or replicas, exactly one
caller moves a request out of `pending`, so a transfer is sent at most once.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Interval, Update, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.domain import Action, CreditRequest, Status
from bot.store import schema
from bot.store.engine import create_store_engine, reader
from bot.store.prepared import OnConnection, Runner, Statements

_requests = schema.credit_requests
_events = schema.credit_request_events
_approvals = schema.credit_request_approvals

# The statements of every request and click, built once: SQLAlchemy memoizes a built
# statement's cache key, so executing one again skips building it and keying its compiled
# form (a third of the store's CPU per click when they were rebuilt each time).
_GET = select(_requests).where(_requests.c.id == bindparam("request_id"))
_INSERT_REQUEST = insert(_requests)
_INSERT_EVENT = insert(_events)
_INSERT_APPROVAL = insert(_approvals)
_ATTACH_CARD = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"))
    .values(message_ts=bindparam("v_message_ts"))
)
_MARK_CARD = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"))
    .values(card_status=bindparam("v_card_status"))
)
_CARD_FAILED = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"))
    .values(
        card_attempts=_requests.c.card_attempts + 1,
        card_retry_at=bindparam("v_card_retry_at"),
        card_given_up_at=bindparam("v_card_given_up_at"),
    )
    .returning(_requests.c.card_attempts)
)
_APPROVE_FIRST = (
    update(_requests)
    .where(
        _requests.c.id == bindparam("request_id"),
        _requests.c.status == Status.PENDING.value,
        _requests.c.approvals_needed >= 2,
        _requests.c.first_approver_id.is_(None),
        _requests.c.expires_at > bindparam("now"),
    )
    .values(first_approver_id=bindparam("v_approver_id"), first_approved_at=bindparam("now"))
    .returning(*_requests.c)
)
_CLAIM_REMINDER = (
    update(_requests)
    .where(
        _requests.c.id == bindparam("request_id"),
        _requests.c.status == Status.PENDING.value,
        _requests.c.reminded_at.is_(None),
    )
    .values(reminded_at=bindparam("now"))
    .returning(*_requests.c)
)


class Guard(enum.Enum):
    """What a transition checks besides the request's status."""

    NONE = "none"
    IN_TIME = "in_time"  # before expiry (:now)
    DUE = "due"  # at or after expiry (:now)
    SECOND_APPROVER = "second_approver"  # in time, and a claim a second approver may make
    SENDER = "sender"  # made by the replica that sent the transfer (:executor)


def _guard(guard: Guard) -> Any:
    now: Any = bindparam("now")
    if guard is Guard.IN_TIME:
        return _requests.c.expires_at > now
    if guard is Guard.DUE:
        return _requests.c.expires_at <= now
    if guard is Guard.SECOND_APPROVER:
        # Two approvals: only a second, different approver may claim.
        approver: Any = bindparam("g_approver_id")
        return (_requests.c.expires_at > now) & (
            (_requests.c.approvals_needed < 2)
            | (
                _requests.c.first_approver_id.is_not(None)
                & (_requests.c.first_approver_id != approver)
            )
        )
    if guard is Guard.SENDER:
        return _requests.c.executor == bindparam("g_executor")
    return None


@functools.cache
def _transition_statement(
    frm: tuple[Status, ...],
    to: Status,
    columns: tuple[str, ...],
    guard: Guard,
    db_clock_columns: tuple[str, ...],
) -> Update:
    """One conditional UPDATE ... RETURNING the row, built once per kind of transition.
    `columns` take the bound values `v_<column>`; `db_clock_columns` take the database's
    clock: PostgreSQL's `clock_timestamp()`, as replicas may run on other hosts whose clocks
    disagree (SQLite is one host, so its processes share one clock)."""
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in columns}
    values.update({name: func.clock_timestamp() for name in db_clock_columns})
    statement = (
        update(_requests)
        .where(
            _requests.c.id == bindparam("request_id"),
            _requests.c.status.in_([s.value for s in frm]),
        )
        .values(status=to.value, **values)
        .returning(*_requests.c)
    )
    where = _guard(guard)
    return statement if where is None else statement.where(where)


# The daily limit's window.
DAY_SECONDS = 24 * 60 * 60.0


@dataclass(frozen=True)
class AuditEvent:
    request_id: str
    status: Status
    at: dt.datetime
    actor_id: str | None
    detail: str | None


class DuplicateCommandError(Exception):
    """This command (its trigger_id) already opened a request: `request`."""

    def __init__(self, request: CreditRequest) -> None:
        super().__init__(f"command already opened request {request.id}")
        self.request = request


def new_request_id() -> str:
    """128 random bits: a request id cannot be guessed from another one."""
    return "cr_" + secrets.token_urlsafe(16)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """The only place that reads or writes requests. Methods are keyword-only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Read-only work: never the write lock on SQLite (see `reader`).
        self._reader = reader(engine)
        # The hot statements (a /credit, a click), without SQLAlchemy's per-execution work.
        self._fast = Statements(engine)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(create_store_engine(url))

    def migrate(self) -> int:
        """Create or upgrade the schema; return the version found before."""
        with self.engine.begin() as conn:
            return schema.migrate(conn)

    def schema_version(self) -> int:
        with self.engine.begin() as conn:
            return schema.current_version(conn)

    def close(self) -> None:
        self.engine.dispose()

    # -- creating and reading -------------------------------------------------------

    def create(
        self,
        *,
        action: Action,
        subaccount_token: str,
        amount: Decimal,
        currency: str,
        requester_id: str,
        channel_id: str,
        response_url: str | None,
        ttl_seconds: float,
        trigger_id: str | None = None,
        subaccount_email: str | None = None,
        main_balance_before: Decimal | None = None,
        subaccount_balance_before: Decimal | None = None,
        balances_seen_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
        reason: str | None = None,
        approvals_needed: int = 1,
    ) -> CreditRequest:
        """Store a new pending request, with what the card shows before money moves.

        Raises DuplicateCommandError when `trigger_id` already opened one (a replay, a
        redelivery): the UNIQUE constraint decides, so two deliveries racing on two replicas
        still open one request."""
        now = now or utcnow()
        request = CreditRequest(
            id=new_request_id(),
            action=action,
            subaccount_token=subaccount_token,
            amount=amount,
            currency=currency,
            status=Status.PENDING,
            requester_id=requester_id,
            channel_id=channel_id,
            response_url=response_url,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl_seconds),
            trigger_id=trigger_id,
            reason=reason,
            approvals_needed=approvals_needed,
            subaccount_email=subaccount_email,
            main_balance_before=main_balance_before,
            subaccount_balance_before=subaccount_balance_before,
            balances_seen_at=balances_seen_at,
        )
        try:
            self._insert(request)
        except IntegrityError:
            existing = self._by_trigger(trigger_id) if trigger_id else None
            if existing is None:
                raise
            raise DuplicateCommandError(existing) from None
        return request

    def _insert(self, request: CreditRequest) -> None:
        with self._fast.transaction(write=True) as conn:
            conn.execute(
                _INSERT_REQUEST,
                dict(
                    id=request.id,
                    action=request.action.value,
                    subaccount_token=request.subaccount_token,
                    amount=request.amount,
                    currency=request.currency,
                    status=Status.PENDING.value,
                    requester_id=request.requester_id,
                    channel_id=request.channel_id,
                    response_url=request.response_url,
                    created_at=request.created_at,
                    expires_at=request.expires_at,
                    trigger_id=request.trigger_id,
                    card_attempts=0,
                    reason=request.reason,
                    approvals_needed=request.approvals_needed,
                    subaccount_email=request.subaccount_email,
                    main_balance_before=request.main_balance_before,
                    subaccount_balance_before=request.subaccount_balance_before,
                    balances_seen_at=request.balances_seen_at,
                ),
            )
            self._audit(
                conn,
                request_id=request.id,
                status=Status.PENDING,
                at=request.created_at,
                actor_id=request.requester_id,
                detail=request.reason,
            )

    def _by_trigger(self, trigger_id: str) -> CreditRequest | None:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(_requests).where(_requests.c.trigger_id == trigger_id)
            ).first()
        return None if row is None else _to_request(row._mapping)

    def get(self, request_id: str) -> CreditRequest | None:
        with self._fast.transaction(write=False) as conn:
            row = conn.first(_GET, {"request_id": request_id})
        return None if row is None else _to_request(row)

    def events(self, request_id: str) -> list[AuditEvent]:
        """The audit trail of one request, oldest first."""
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_events).where(_events.c.request_id == request_id).order_by(_events.c.at)
            ).all()
        return [
            AuditEvent(
                request_id=r.request_id,
                status=Status(r.status),
                at=r.at,
                actor_id=r.actor_id,
                detail=r.detail,
            )
            for r in rows
        ]

    def recent(self, *, limit: int = 50, status: Status | None = None) -> list[CreditRequest]:
        """The newest requests first, for the audit listing."""
        query = select(_requests).order_by(_requests.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(_requests.c.status == status.value)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [_to_request(r._mapping) for r in rows]

    def history(
        self, *, limit: int = 10, subaccount_token: str | None = None
    ) -> list[CreditRequest]:
        """The newest requests first, of one sub-account when given (`/credit history`)."""
        query = select(_requests).order_by(_requests.c.created_at.desc()).limit(limit)
        if subaccount_token is not None:
            query = query.where(_requests.c.subaccount_token == subaccount_token)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [_to_request(r._mapping) for r in rows]

    def attach_card(self, *, request_id: str, message_ts: str) -> None:
        """Remember where the confirmation card is, so any replica can replace it later."""
        with self._fast.transaction(write=True) as conn:
            conn.execute(_ATTACH_CARD, {"request_id": request_id, "v_message_ts": message_ts})

    # -- transitions: each one a claim, checked by row count ----------------------------

    def claim(
        self,
        *,
        request_id: str,
        approver_id: str,
        executor: str,
        now: dt.datetime | None = None,
        daily_limit: Decimal | None = None,
    ) -> CreditRequest | None:
        """pending -> executing, for exactly one caller, and only before expiry.

        A request needing two approvals is claimed only by an approver other than the one
        `approve_first` recorded. With `daily_limit`, an `add` that would take its
        sub-account's last 24 hours above it goes pending -> failed instead, nothing sent:
        checked in the claim's own transaction under a per-sub-account lock (PostgreSQL's
        advisory lock; SQLite's BEGIN IMMEDIATE serialises writers), so two claims racing
        on two replicas cannot both pass it.

        On PostgreSQL the claim time is the server's clock, the one recovery compares it
        with: replicas' own clocks may disagree by any amount."""
        now = now or utcnow()
        if daily_limit is not None:
            with self.engine.begin() as conn:
                return self._claim_within_limit(
                    conn,
                    request_id=request_id,
                    approver_id=approver_id,
                    executor=executor,
                    now=now,
                    daily_limit=daily_limit,
                )
        with self._fast.transaction(write=True) as transaction:
            return self._claim_in(transaction, request_id, approver_id, executor, now)

    def _claim_within_limit(
        self,
        conn: Connection,
        *,
        request_id: str,
        approver_id: str,
        executor: str,
        now: dt.datetime,
        daily_limit: Decimal,
    ) -> CreditRequest | None:
        """`claim` with a daily limit, in the caller's transaction (on SQLAlchemy: this path
        reads the sub-account's day first, and is not the common one)."""
        row = conn.execute(_GET, {"request_id": request_id}).first()
        if row is None:
            return None
        request = _to_request(row._mapping)
        refusal = (
            self._over_daily_limit(conn, request, daily_limit)
            if request.action is Action.ADD
            else None
        )
        if refusal is not None:
            return self._transition_in(
                OnConnection(conn),
                request_id,
                frm=(Status.PENDING,),
                to=Status.FAILED,
                now=now,
                actor_id=approver_id,
                detail=refusal,
                guard=Guard.IN_TIME,
                values={
                    "approver_id": approver_id,
                    "error_message": refusal,
                    "finished_at": now,
                },
            )
        return self._claim_in(OnConnection(conn), request_id, approver_id, executor, now)

    def _claim_in(
        self,
        runner: Runner,
        request_id: str,
        approver_id: str,
        executor: str,
        now: dt.datetime,
    ) -> CreditRequest | None:
        """pending -> executing in the caller's transaction, with its approval."""
        # Nothing is read first: the UPDATE returns the row, and the audit line takes the
        # first approver from it (the claim leaves it as is).
        claimed = self._transition_in(
            runner,
            request_id,
            frm=(Status.PENDING,),
            to=Status.EXECUTING,
            now=now,
            actor_id=approver_id,
            detail=_second_approval,
            guard=Guard.SECOND_APPROVER,
            guard_params={"g_approver_id": approver_id},
            values={"approver_id": approver_id, "executor": executor},
            # The claim time recovery compares with the database's clock.
            db_clock_values={"executing_at": now},
        )
        if claimed is not None:
            runner.execute(
                _INSERT_APPROVAL,
                {"request_id": request_id, "approver_id": approver_id, "approved_at": now},
            )
        return claimed

    def approve_first(
        self, *, request_id: str, approver_id: str, now: dt.datetime | None = None
    ) -> CreditRequest | None:
        """Record the first of two approvals; None if another approver was first (or the
        request moved on). One conditional UPDATE: of two approvers clicking at once,
        exactly one is first."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                _APPROVE_FIRST,
                {"request_id": request_id, "v_approver_id": approver_id, "now": now},
            ).first()
            if row is None:
                return None
            conn.execute(
                _INSERT_APPROVAL,
                {"request_id": request_id, "approver_id": approver_id, "approved_at": now},
            )
        return _to_request(row._mapping)

    def approvals(self, request_id: str) -> list[tuple[str, dt.datetime]]:
        """Who approved the request and when, first approval first."""
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_approvals.c.approver_id, _approvals.c.approved_at)
                .where(_approvals.c.request_id == request_id)
                .order_by(_approvals.c.approved_at)
            ).all()
        return [(r.approver_id, r.approved_at) for r in rows]

    def added_in_last_day(self, subaccount_token: str) -> Decimal:
        """Euros added to the sub-account in the last 24 hours (executing, succeeded or
        unknown), by the database's clock: for the daily limit at the command."""
        with self._reader.connect() as conn:
            return self._added_since(conn, subaccount_token, exclude=None)

    def _over_daily_limit(
        self, conn: Connection, request: CreditRequest, daily_limit: Decimal
    ) -> str | None:
        """Why `request` would break the daily limit, or None. Takes the sub-account's lock."""
        if conn.dialect.name == "postgresql":
            # Held to the end of the claim's transaction: the next claim for this
            # sub-account counts this one.
            conn.execute(
                text("SELECT pg_advisory_xact_lock(4242002, hashtext(:token))"),
                {"token": request.subaccount_token},
            )
        left = daily_limit - self._added_since(conn, request.subaccount_token, exclude=request.id)
        if request.amount <= left:
            return None
        return (
            f"Daily limit reached: {max(left, Decimal(0)):.2f} {request.currency} of the "
            f"{daily_limit:.2f} {request.currency} daily limit is left for this sub-account. "
            "Nothing was sent."
        )

    def _added_since(
        self, conn: Connection, subaccount_token: str, *, exclude: str | None
    ) -> Decimal:
        query = select(_requests.c.amount).where(
            _requests.c.subaccount_token == subaccount_token,
            _requests.c.action == Action.ADD.value,
            _requests.c.status.in_(
                [Status.EXECUTING.value, Status.SUCCEEDED.value, Status.UNKNOWN.value]
            ),
            _requests.c.executing_at >= self._db_ago(DAY_SECONDS),
        )
        if exclude is not None:
            query = query.where(_requests.c.id != exclude)
        return sum(conn.execute(query).scalars(), Decimal(0))

    # -- reminders and the Home tab -------------------------------------------------

    def due_reminders(self, *, older_than_seconds: float, limit: int = 100) -> list[str]:
        """Pending requests with a posted card, opened more than `older_than_seconds` ago
        (by the database's clock) and not reminded yet."""
        return self._ids(
            (_requests.c.status == Status.PENDING.value)
            & _requests.c.message_ts.is_not(None)
            & _requests.c.reminded_at.is_(None)
            & (_requests.c.created_at < self._db_ago(older_than_seconds)),
            limit,
        )

    def claim_reminder(
        self, *, request_id: str, now: dt.datetime | None = None
    ) -> CreditRequest | None:
        """Take the one reminder of a pending request; None if a replica took it first."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(_CLAIM_REMINDER, {"request_id": request_id, "now": now}).first()
        return None if row is None else _to_request(row._mapping)

    def pending(self, *, limit: int = 50, now: dt.datetime | None = None) -> list[CreditRequest]:
        """Requests still waiting for approval and in time, oldest first."""
        now = now or utcnow()
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_requests)
                .where(_requests.c.status == Status.PENDING.value, _requests.c.expires_at > now)
                .order_by(_requests.c.created_at)
                .limit(limit)
            ).all()
        return [_to_request(r._mapping) for r in rows]

    def requested_by(self, requester_id: str, *, limit: int = 10) -> list[CreditRequest]:
        """One person's latest requests, newest first."""
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_requests)
                .where(_requests.c.requester_id == requester_id)
                .order_by(_requests.c.created_at.desc())
                .limit(limit)
            ).all()
        return [_to_request(r._mapping) for r in rows]

    def record_success(
        self,
        *,
        request_id: str,
        main_balance: Decimal,
        subaccount_balance: Decimal,
        currency: str,
        executor: str | None = None,
        now: dt.datetime | None = None,
    ) -> CreditRequest | None:
        """executing -> succeeded. With `executor` (the replica that sent it), also
        unknown -> succeeded: a recovery that gave up on the answer is overruled by it."""
        return self._finish(
            request_id,
            Status.SUCCEEDED,
            now,
            f"main {main_balance} {currency}, sub-account {subaccount_balance} {currency}",
            {
                "main_balance": main_balance,
                "subaccount_balance": subaccount_balance,
                "currency": currency,
            },
            executor=executor,
        )

    def record_failure(
        self,
        *,
        request_id: str,
        error_code: int | None,
        error_message: str,
        executor: str | None = None,
        now: dt.datetime | None = None,
    ) -> CreditRequest | None:
        """executing -> failed; with `executor`, also unknown -> failed (see record_success)."""
        return self._finish(
            request_id,
            Status.FAILED,
            now,
            error_message,
            {"error_code": error_code, "error_message": error_message},
            executor=executor,
        )

    def record_unknown(
        self, *, request_id: str, reason: str, now: dt.datetime | None = None
    ) -> CreditRequest | None:
        return self._finish(request_id, Status.UNKNOWN, now, reason, {"error_message": reason})

    def resolve(
        self,
        *,
        request_id: str,
        resolver_id: str,
        went_through: bool,
        now: dt.datetime | None = None,
    ) -> CreditRequest | None:
        """unknown -> succeeded | failed, settled by a person who checked SMS Partner."""
        now = now or utcnow()
        detail = (
            "resolved by hand: it went through" if went_through else "resolved by hand: it did not"
        )
        return self._transition(
            request_id,
            frm=(Status.UNKNOWN,),
            to=Status.SUCCEEDED if went_through else Status.FAILED,
            now=now,
            actor_id=resolver_id,
            detail=detail,
            # finished_at moves to the resolution, so the sweep leaves its card to the clicker.
            values={"resolver_id": resolver_id, "resolved_at": now, "finished_at": now},
        )

    def cancel(
        self, *, request_id: str, canceller_id: str, now: dt.datetime | None = None
    ) -> CreditRequest | None:
        """pending -> cancelled, before expiry."""
        now = now or utcnow()
        return self._transition(
            request_id,
            frm=(Status.PENDING,),
            to=Status.CANCELLED,
            now=now,
            actor_id=canceller_id,
            guard=Guard.IN_TIME,
            values={"canceller_id": canceller_id, "finished_at": now},
        )

    def abandon(self, *, request_id: str, reason: str) -> CreditRequest | None:
        """pending -> cancelled by the app itself, when its card could not be posted."""
        return self._transition(
            request_id,
            frm=(Status.PENDING,),
            to=Status.CANCELLED,
            now=utcnow(),
            actor_id=None,
            detail=reason,
            values={"finished_at": utcnow(), "error_message": reason},
        )

    def expire(self, *, request_id: str, now: dt.datetime | None = None) -> CreditRequest | None:
        """pending -> expired, once its time has run out."""
        now = now or utcnow()
        return self._transition(
            request_id,
            frm=(Status.PENDING,),
            to=Status.EXPIRED,
            now=now,
            actor_id=None,
            guard=Guard.DUE,
            values={"finished_at": now},
        )

    def mark_card(self, *, request_id: str, status: Status) -> None:
        """Record that the card now shows `status`, so no sweep replaces it again."""
        self.mark_cards({request_id: status})

    def mark_cards(self, shown: Mapping[str, Status]) -> None:
        """`mark_card` for many cards, in one transaction."""
        if not shown:
            return
        with self._fast.transaction(write=True) as transaction:
            transaction.execute_many(
                _MARK_CARD,
                [
                    {"request_id": request_id, "v_card_status": status.value}
                    for request_id, status in shown.items()
                ],
            )

    # -- sweeps ---------------------------------------------------------------------

    def expired_pending(self, *, now: dt.datetime | None = None, limit: int = 100) -> list[str]:
        """Ids of pending requests whose time has run out."""
        now = now or utcnow()
        return self._ids(
            (_requests.c.status == Status.PENDING.value) & (_requests.c.expires_at <= now), limit
        )

    def overdue_executing(self, *, older_than_seconds: float) -> list[CreditRequest]:
        """Requests claimed more than `older_than_seconds` ago by the database's clock
        (PostgreSQL's own, as the claim was; one host's for SQLite)."""
        cutoff = self._db_ago(older_than_seconds)
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_requests).where(
                    _requests.c.status == Status.EXECUTING.value,
                    _requests.c.executing_at < cutoff,
                )
            ).all()
        return [_to_request(r._mapping) for r in rows]

    def unposted_cards(self, *, older_than_seconds: float, limit: int = 100) -> list[str]:
        """Pending requests whose card ts was never stored (the post timed out, or the
        process died while posting), created more than `older_than_seconds` ago by the
        database's clock: a replica whose clock is ahead must not close a card being posted."""
        return self._ids(
            (_requests.c.status == Status.PENDING.value)
            & _requests.c.message_ts.is_(None)
            & (_requests.c.created_at < self._db_ago(older_than_seconds)),
            limit,
        )

    def _db_ago(self, seconds: float) -> Any:
        """That many seconds ago, by the database's clock (see `_transition_statement`)."""
        age = dt.timedelta(seconds=seconds)
        if self.engine.dialect.name == "postgresql":
            return func.clock_timestamp() - bindparam("age", age, type_=Interval)
        return utcnow() - age

    def card_failed(self, *, request_id: str, retry_at: dt.datetime | None) -> int:
        """Count a failed card update; retry it at `retry_at`, or never (None: given up).
        Returns the attempts made so far."""
        params = {
            "request_id": request_id,
            "v_card_retry_at": retry_at,
            "v_card_given_up_at": None if retry_at is not None else utcnow(),
        }
        with self.engine.begin() as conn:
            attempts = conn.execute(_CARD_FAILED, params).scalar()
        return int(attempts or 0)

    def executing(self) -> list[CreditRequest]:
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_requests).where(_requests.c.status == Status.EXECUTING.value)
            ).all()
        return [_to_request(r._mapping) for r in rows]

    def mark_unknown(self, *, request_ids: Iterable[str], reason: str) -> list[CreditRequest]:
        """executing -> unknown for requests whose executor is gone; returns those moved."""
        moved = []
        for request_id in request_ids:
            request = self.record_unknown(request_id=request_id, reason=reason)
            if request is not None:
                moved.append(request)
        return moved

    def stale_cards(
        self, *, settled_before: dt.datetime, now: dt.datetime | None = None, limit: int = 100
    ) -> list[CreditRequest]:
        """Ended requests whose card still shows something else (a replica died before
        replacing it), oldest first. `settled_before` leaves the live handler time to do it
        itself; a card that failed before waits for its next try instead, and a card given
        up is left out, so cards Slack refuses can never crowd out the others."""
        now = now or utcnow()
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(_requests)
                .where(
                    _requests.c.status.notin_([Status.PENDING.value, Status.EXECUTING.value]),
                    _requests.c.message_ts.is_not(None),
                    (_requests.c.card_status.is_(None))
                    | (_requests.c.card_status != _requests.c.status),
                    _requests.c.card_given_up_at.is_(None),
                    # Untried cards wait for the live handler; tried ones for their back-off.
                    ((_requests.c.card_attempts == 0) & (_requests.c.finished_at < settled_before))
                    | ((_requests.c.card_attempts > 0) & (_requests.c.card_retry_at <= now)),
                )
                .order_by(_requests.c.finished_at)
                .limit(limit)
            ).all()
        return [_to_request(r._mapping) for r in rows]

    # -- internals ------------------------------------------------------------------

    def _ids(self, where: Any, limit: int) -> list[str]:
        with self._reader.connect() as conn:
            return list(conn.execute(select(_requests.c.id).where(where).limit(limit)).scalars())

    def _finish(
        self,
        request_id: str,
        to: Status,
        now: dt.datetime | None,
        detail: str,
        values: dict[str, Any],
        *,
        executor: str | None = None,
    ) -> CreditRequest | None:
        now = now or utcnow()
        finished = self._transition(
            request_id,
            frm=(Status.EXECUTING,),
            to=to,
            now=now,
            actor_id=None,
            detail=detail,
            values={**values, "finished_at": now},
        )
        if finished is not None or executor is None:
            return finished
        return self._transition(
            request_id,
            frm=(Status.UNKNOWN,),
            to=to,
            now=now,
            actor_id=None,
            detail=f"{detail} (recorded late: a recovery had marked it unknown meanwhile)",
            values={**values, "finished_at": now},
            guard=Guard.SENDER,
            guard_params={"g_executor": executor},
        )

    def _transition(
        self,
        request_id: str,
        *,
        frm: tuple[Status, ...],
        to: Status,
        now: dt.datetime,
        actor_id: str | None,
        values: Mapping[str, Any],
        guard: Guard = Guard.NONE,
        guard_params: Mapping[str, Any] | None = None,
        detail: str | None = None,
    ) -> CreditRequest | None:
        """Move one request from one of `frm` to `to`; None if another caller got there first."""
        with self._fast.transaction(write=True) as transaction:
            return self._transition_in(
                transaction,
                request_id,
                frm=frm,
                to=to,
                now=now,
                actor_id=actor_id,
                values=values,
                guard=guard,
                guard_params=guard_params,
                detail=detail,
            )

    def _transition_in(
        self,
        runner: Runner,
        request_id: str,
        *,
        frm: tuple[Status, ...],
        to: Status,
        now: dt.datetime,
        actor_id: str | None,
        values: Mapping[str, Any],
        guard: Guard = Guard.NONE,
        guard_params: Mapping[str, Any] | None = None,
        db_clock_values: Mapping[str, dt.datetime] | None = None,
        detail: str | Callable[[CreditRequest], str | None] | None = None,
    ) -> CreditRequest | None:
        """`_transition` inside the caller's transaction: one conditional UPDATE that
        returns the row it moved (none: another caller got there first), and its audit
        event. `db_clock_values` are set to the database's clock where replicas may run on
        other hosts (PostgreSQL), else to the value given."""
        clocked = dict(db_clock_values or {})
        on_db_clock = tuple(sorted(clocked)) if self.engine.dialect.name == "postgresql" else ()
        bound = {**values, **{k: v for k, v in clocked.items() if k not in on_db_clock}}
        statement = _transition_statement(frm, to, tuple(sorted(bound)), guard, on_db_clock)
        params = {f"v_{name}": value for name, value in bound.items()}
        params.update(guard_params or {}, request_id=request_id, now=now)
        row = runner.first(statement, params)
        if row is None:
            return None
        moved = _to_request(row)
        self._audit(
            runner,
            request_id=request_id,
            status=to,
            at=now,
            actor_id=actor_id,
            detail=detail(moved) if callable(detail) else detail,
        )
        return moved

    @staticmethod
    def _audit(
        runner: Runner,
        *,
        request_id: str,
        status: Status,
        at: dt.datetime,
        actor_id: str | None,
        detail: str | None = None,
    ) -> None:
        runner.execute(
            _INSERT_EVENT,
            {
                "request_id": request_id,
                "status": status.value,
                "at": at,
                "actor_id": actor_id,
                "detail": detail,
            },
        )


def _second_approval(claimed: CreditRequest) -> str | None:
    """The audit line of a claim that was a request's second approval."""
    first = claimed.first_approver_id
    return None if first is None else f"second approval; first by {first}"


def _to_request(row: Mapping[Any, Any]) -> CreditRequest:
    values = dict(row)
    values["action"] = Action(values["action"])
    values["status"] = Status(values["status"])
    if values.get("card_status") is not None:
        values["card_status"] = Status(values["card_status"])
    return CreditRequest(**values)
