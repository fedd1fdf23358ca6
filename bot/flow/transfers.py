"""The approval flow, without Slack: open a request, confirm it, cancel it, expire it.

Confirm is where money moves, so its order matters: policy, expiry, then the store's
atomic claim, and only the claimant calls SMS Partner, once, recording whatever came
back. Nothing here retries a transfer; an unanswered call ends `unknown`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from bot.domain import Action, CreditRequest, Status
from bot.flow import reasons
from bot.flow.commands import CreditCommand
from bot.flow.lookups import Seen
from bot.flow.policy import Policy
from bot.logs import log_event
from bot.smspartner.client import (
    APIError,
    BadAnswerError,
    NotSentError,
    OutcomeUnknownError,
    SMSPartnerClient,
    Transfer,
)
from bot.store import Store, utcnow
from bot.texts import Wording

logger = logging.getLogger(__name__)

CURRENCY = "EUR"
# A claim whose send has not started this long after it is abandoned, never sent: so a
# live transfer ends its call by claim + this + the API timeout, whatever else is slow.
SEND_DEADLINE_SECONDS = 5.0
# Past the send deadline and the API timeout, plus this margin (by the database's clock),
# an `executing` request cannot be in a live call any more: recovery may call it unknown.
CRASH_MARGIN_SECONDS = 30.0
# Writing an outcome SMS Partner gave: retried with this back-off until the database takes it.
RECORD_FIRST_RETRY_SECONDS = 0.05
RECORD_MAX_RETRY_SECONDS = 2.0
# What the store raises when the database is away (a refused connection, a full disk, a
# file gone): callers answer "nothing moved" instead of failing silently.
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError)


@dataclass(frozen=True)
class Refused:
    """The click is not allowed; the card stays as it is. `message` goes to the clicker."""

    wording: Wording


@dataclass(frozen=True)
class AlreadyHandled:
    """Somebody else took the request out of `pending` first."""

    request: CreditRequest


@dataclass(frozen=True)
class CardChanged:
    """The request moved on: the card must now show `request`."""

    request: CreditRequest


Outcome = Refused | AlreadyHandled | CardChanged


class DailyLimitReachedError(Exception):
    """The request would take its sub-account above CREDIT_DAILY_LIMIT: `left` euros remain."""

    def __init__(self, *, left: Decimal, limit: Decimal) -> None:
        super().__init__(f"daily limit reached: {left} of {limit} left")
        self.left = left
        self.limit = limit


def new_executor_id() -> str:
    """Who is executing: host, process, and a nonce that tells a restarted process apart."""
    return f"{_process_space()}/{os.getpid()}/{secrets.token_hex(4)}"


def _process_space() -> str:
    """Where our pids mean something: the host name, plus the pid namespace on Linux.

    Containers sharing a host name (`--network host`, a fixed `hostname:`) each have their
    own pids, often all 1: without the namespace, a replica would take a live sibling's
    pid for its own previous life, or for a dead process, and its transfer for crashed."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}:{namespace.removeprefix('pid:[').removesuffix(']')}"


def executor_is_gone(executor: str | None, me: str) -> bool:
    """True when `executor` is known to be dead: a previous life of this process, or a
    process of this host and pid namespace that no longer exists. Other hosts and other
    namespaces are judged by time only."""
    if not executor or executor == me:
        return False
    host, _, rest = executor.partition("/")
    pid_text, _, _nonce = rest.partition("/")
    my_host, _, my_rest = me.partition("/")
    if host != my_host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if str(pid) == my_rest.partition("/")[0]:
        return True  # same host, namespace and pid, other nonce: this process restarted
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Transfers:
    def __init__(
        self,
        *,
        store: Store,
        client: SMSPartnerClient,
        policy: Policy,
        ttl_seconds: float,
        api_timeout_seconds: float,
        executor_id: str | None = None,
        daily_limit: Decimal | None = None,
    ) -> None:
        self.store = store
        # CREDIT_DAILY_LIMIT: most euros added to one sub-account in any 24 hours.
        self.daily_limit = daily_limit
        self.client = client
        self.policy = policy
        self.ttl_seconds = ttl_seconds
        self.api_timeout_seconds = api_timeout_seconds
        self.executor_id = executor_id or new_executor_id()
        self._accepting = True
        self._in_flight = 0
        self._idle = threading.Condition()
        # Requests this process is sending or recording: its own recovery never touches them.
        self._sending: set[str] = set()
        self._stopped = threading.Event()

    # -- opening --------------------------------------------------------------------

    def open(
        self,
        command: CreditCommand,
        *,
        requester_id: str,
        channel_id: str,
        response_url: str | None,
        trigger_id: str | None = None,
        seen: Seen | None = None,
    ) -> CreditRequest:
        """Store the request, for `seen.token` (the e-mail's token) with what the card shows
        when the sub-account was looked up. Raises DuplicateCommandError when this command (its
        trigger_id) already opened one, DailyLimitReachedError when it would break the daily
        limit, and a DATABASE_ERRORS error when the database is away."""
        self._check_daily_limit(command, seen.token if seen else command.subaccount)
        request = self.store.create(
            action=command.action,
            subaccount_token=seen.token if seen else command.subaccount,
            amount=command.amount,
            currency=CURRENCY,
            requester_id=requester_id,
            channel_id=channel_id,
            response_url=response_url,
            ttl_seconds=self.ttl_seconds,
            trigger_id=trigger_id,
            reason=command.reason,
            # Fixed now: a later change of the threshold does not change what was asked.
            approvals_needed=self.policy.approvals_needed(command.amount),
            subaccount_email=seen.email if seen else None,
            main_balance_before=seen.main_balance if seen else None,
            subaccount_balance_before=seen.subaccount_balance if seen else None,
            balances_seen_at=seen.at if seen else None,
        )
        _log(request, "credit.requested", user_id=requester_id, reason=request.reason)
        return request

    def _check_daily_limit(self, command: CreditCommand, token: str) -> None:
        """The first check, for a quick answer; the claim checks again, atomically."""
        if self.daily_limit is None or command.action is not Action.ADD:
            return
        left = self.daily_limit - self.store.added_in_last_day(token)
        if command.amount > left:
            raise DailyLimitReachedError(left=max(left, Decimal(0)), limit=self.daily_limit)

    # -- clicks ---------------------------------------------------------------------

    def confirm(
        self,
        request_id: str,
        *,
        user_id: str,
        channel_id: str | None,
        on_executing: Callable[[CreditRequest], object] | None = None,
        on_outcome: Callable[[CreditRequest], object] | None = None,
    ) -> Outcome:
        """Claim the request and send its transfer. `on_executing` and `on_outcome` hand
        the card's updates to another thread and must not block: nothing may wait between
        the claim and the send, and the outcome is shown before it is recorded.

        `channel_id` None: the click came from the Home tab, which has no channel; the
        request's own channel is used. A request needing two approvals is first approved
        (the card changes, nothing is sent), then claimed by a second, different approver."""
        found = self._pending(request_id, channel_id)
        if not isinstance(found, CreditRequest):
            return found
        if found.approvals_needed >= 2 and found.first_approver_id is None:
            first = self._approve_first(found, user_id)
            if not isinstance(first, CreditRequest):
                return first
            found = first
        refusal = self.policy.refuse_approval(
            user_id=user_id, request=found, first_approver_id=found.first_approver_id
        )
        if refusal:
            _log(found, "credit.confirm_refused", user_id=user_id, reason=refusal)
            return Refused(refusal)
        with self._idle:
            # Checked and counted under one lock, so a drain never misses a starting transfer.
            if not self._accepting:
                return Refused(Wording.of("refusal.restarting"))
            self._in_flight += 1
        try:
            # Taken before the claim's UPDATE, so the deadline errs on the early side.
            claim_started = time.monotonic()
            claimed = self.store.claim(
                request_id=request_id,
                approver_id=user_id,
                executor=self.executor_id,
                daily_limit=self.daily_limit,
            )
            if claimed is None:
                return self._lost_race(request_id)
            if claimed.status is Status.FAILED:  # the daily limit, checked in the claim
                _log(claimed, "credit.daily_limit_reached", user_id=user_id)
                return CardChanged(claimed)
            with self._idle:
                self._sending.add(claimed.id)
            try:
                return CardChanged(self._execute(claimed, claim_started, on_executing, on_outcome))
            finally:
                with self._idle:
                    self._sending.discard(claimed.id)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _approve_first(self, request: CreditRequest, user_id: str) -> CreditRequest | Outcome:
        """Record `user_id` as the first of two approvers: CardChanged when they are; the
        request as it now is when another approver was first, to be confirmed as second."""
        refusal = self.policy.refuse_approval(user_id=user_id, request=request)
        if refusal:
            _log(request, "credit.confirm_refused", user_id=user_id, reason=refusal)
            return Refused(refusal)
        first = self.store.approve_first(request_id=request.id, approver_id=user_id)
        if first is not None:
            _log(first, "credit.first_approval", user_id=user_id)
            return CardChanged(first)
        # Another approver was first a moment ago, or the request moved on.
        current = self.store.get(request.id)
        if current is None or current.status is not Status.PENDING:
            return self._lost_race(request.id)
        if current.first_approver_id is None:  # still unapproved: its time ran out
            return self._expire(current)
        return current

    def cancel(self, request_id: str, *, user_id: str, channel_id: str | None) -> Outcome:
        found = self._pending(request_id, channel_id)
        if not isinstance(found, CreditRequest):
            return found
        refusal = self.policy.refuse_cancel(user_id=user_id, request=found)
        if refusal:
            return Refused(refusal)
        cancelled = self.store.cancel(request_id=request_id, canceller_id=user_id)
        if cancelled is None:
            return self._lost_race(request_id)
        _log(cancelled, "credit.cancelled", user_id=user_id)
        return CardChanged(cancelled)

    def _pending(self, request_id: str, channel_id: str | None) -> CreditRequest | Outcome:
        """The request if it is still pending and in time; otherwise what to answer.
        `channel_id` None (the Home tab): whichever channel the request is in."""
        request = self.store.get(request_id)
        if request is None or (channel_id is not None and request.channel_id != channel_id):
            # Same answer for both, so a click cannot probe other channels' request ids.
            return Refused(Wording.of("refusal.no_such_request"))
        if request.status is not Status.PENDING:
            return AlreadyHandled(request)
        if request.expires_at <= utcnow():
            return self._expire(request)
        return request

    def _lost_race(self, request_id: str) -> Outcome:
        request = self.store.get(request_id)
        if request is None:
            return Refused(Wording.of("refusal.no_such_request"))
        if request.status is Status.PENDING:  # the claim failed only because time ran out
            return self._expire(request)
        return AlreadyHandled(request)

    def _expire(self, request: CreditRequest) -> Outcome:
        expired = self.store.expire(request_id=request.id)
        if expired is None:
            return self._lost_race(request.id)
        _log(expired, "credit.expired")
        return CardChanged(expired)

    # -- the one call that moves money ------------------------------------------------

    def _execute(
        self,
        request: CreditRequest,
        claim_started: float,
        on_executing: Callable[[CreditRequest], object] | None,
        on_outcome: Callable[[CreditRequest], object] | None,
    ) -> CreditRequest:
        if time.monotonic() - claim_started > SEND_DEADLINE_SECONDS:
            # Recovery elsewhere counts from the claim: a send starting this late could still
            # be running when it gives up on it. Not sending is the only safe answer.
            outcome = self._failure(
                request,
                None,
                reasons.english(reasons.NOT_STARTED),
            )
        else:
            if on_executing is not None:
                on_executing(request)
            outcome = self._send(request)
            # Logged once the call is over: even a log write (a blocked stderr pipe) must
            # not stand between the claim and the send.
            _log(request, "credit.executing", user_id=request.approver_id)
        # The answer in hand is logged at once; then one try to record it, so the card
        # shows what is stored. If the database is away, the card shows the answer in
        # hand while the write is retried: a database away delays the record, not the card.
        _log(
            outcome,
            f"credit.{outcome.status.value}",
            user_id=request.approver_id,
            main_balance=outcome.main_balance,
            subaccount_balance=outcome.subaccount_balance,
            reason=outcome.error_message,
        )
        try:
            recorded = self._write(outcome)
        except DATABASE_ERRORS:
            if on_outcome is not None:
                on_outcome(outcome)
            recorded = self._record(outcome)
        else:
            if on_outcome is not None:
                on_outcome(recorded or outcome)
        if recorded is not None and recorded.status is not outcome.status:
            _log(recorded, "credit.recorded_differently", level=logging.WARNING)
        return recorded or outcome

    def _send(self, request: CreditRequest) -> CreditRequest:
        """The one call that moves money, and what it says, as the request it leaves."""
        send = self.client.add_credit if request.action is Action.ADD else self.client.remove_credit
        try:
            transfer = send(request.subaccount_token, request.amount)
        except APIError as error:
            return self._failure(request, error.code, error.user_message)
        except NotSentError:
            return self._failure(request, None, reasons.english(reasons.NOT_REACHED))
        except OutcomeUnknownError as error:
            return self._unknown(request, str(error))
        except BadAnswerError as error:
            return self._failure(
                request,
                None,
                reasons.english(reasons.BAD_ANSWER, detail=str(error)),
            )
        except Exception:
            # A bug of ours after the request may have left: the only honest state is unknown.
            logger.exception("unexpected error while sending request %s", request.id)
            return self._unknown(request, reasons.english(reasons.BOT_FAILED))
        return self._success(request, transfer)

    @staticmethod
    def _success(request: CreditRequest, transfer: Transfer) -> CreditRequest:
        return dataclasses.replace(
            request,
            status=Status.SUCCEEDED,
            main_balance=transfer.main_balance,
            subaccount_balance=transfer.subaccount_balance,
            currency=transfer.currency,
            finished_at=utcnow(),
        )

    @staticmethod
    def _failure(request: CreditRequest, code: int | None, message: str) -> CreditRequest:
        return dataclasses.replace(
            request,
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
        )

    @staticmethod
    def _unknown(request: CreditRequest, reason: str) -> CreditRequest:
        return dataclasses.replace(
            request, status=Status.UNKNOWN, error_message=reason, finished_at=utcnow()
        )

    def _record(self, outcome: CreditRequest) -> CreditRequest | None:
        """Write the outcome, retrying with back-off until the database takes it.

        None when the store had moved on (a recovery's `unknown` overruled by nothing: the
        outcome is unknown too). Gives up only when the process is stopping for good."""
        delay = RECORD_FIRST_RETRY_SECONDS
        while True:
            try:
                return self._write(outcome)
            except DATABASE_ERRORS as error:
                log_event(
                    logger,
                    "credit.record_retry",
                    level=logging.WARNING,
                    request_id=outcome.id,
                    outcome=outcome.status.value,
                    error=type(error).__name__,
                    retry_in=delay,
                )
            if self._stopped.wait(delay):
                log_event(
                    logger,
                    "credit.record_abandoned",
                    level=logging.ERROR,
                    request_id=outcome.id,
                    outcome=outcome.status.value,
                )
                return None
            delay = min(delay * 2, RECORD_MAX_RETRY_SECONDS)

    def _write(self, outcome: CreditRequest) -> CreditRequest | None:
        main, sub = outcome.main_balance, outcome.subaccount_balance
        if outcome.status is Status.SUCCEEDED and main is not None and sub is not None:
            return self.store.record_success(
                request_id=outcome.id,
                main_balance=main,
                subaccount_balance=sub,
                currency=outcome.currency,
                executor=self.executor_id,
            )
        if outcome.status is Status.FAILED:
            return self.store.record_failure(
                request_id=outcome.id,
                error_code=outcome.error_code,
                error_message=outcome.error_message or "",
                executor=self.executor_id,
            )
        return self.store.record_unknown(request_id=outcome.id, reason=outcome.error_message or "")

    # -- sweeps and shutdown ------------------------------------------------------------

    def expire_due(self) -> list[CreditRequest]:
        """Expire every pending request whose time ran out; return those this caller expired."""
        expired = []
        for request_id in self.store.expired_pending():
            request = self.store.expire(request_id=request_id)
            if request is not None:
                _log(request, "credit.expired")
                expired.append(request)
        return expired

    @property
    def crash_after_seconds(self) -> float:
        """How long after its claim (by the database's clock) no live call can be running."""
        return SEND_DEADLINE_SECONDS + self.api_timeout_seconds + CRASH_MARGIN_SECONDS

    def recover_crashed(self) -> list[CreditRequest]:
        """executing -> unknown for transfers whose replica is known gone, or claimed longer
        ago than any live call can last, by the database's clock. Never this process's own
        transfers in flight: it knows they are alive."""
        with self._idle:
            mine = set(self._sending)
        gone = [
            r.id
            for r in self.store.executing()
            if r.id not in mine and executor_is_gone(r.executor, self.executor_id)
        ]
        recovered = self.store.mark_unknown(
            request_ids=gone,
            reason=reasons.english(reasons.REPLICA_STOPPED),
        )
        overdue = [
            r.id
            for r in self.store.overdue_executing(older_than_seconds=self.crash_after_seconds)
            if r.id not in mine
        ]
        recovered += self.store.mark_unknown(
            request_ids=overdue,
            reason=reasons.english(reasons.NOT_RECORDED, seconds=f"{self.crash_after_seconds:g}"),
        )
        for request in recovered:
            _log(request, "credit.recovered_unknown", level=logging.WARNING)
        return recovered

    def stop_accepting(self) -> None:
        self._accepting = False

    def stop_recording(self) -> None:
        """The process is going for good: outcomes still waiting for the database are left
        to the log line that already recorded them."""
        self._stopped.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no transfer is in flight; False if some still are after `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def in_flight(self) -> int:
        return self._in_flight


def _log(
    request: CreditRequest, event: str, *, level: int = logging.INFO, **fields: object
) -> None:
    log_event(
        logger,
        event,
        level=level,
        request_id=request.id,
        requester_id=request.requester_id,
        first_approver_id=request.first_approver_id,
        approver_id=request.approver_id,
        canceller_id=request.canceller_id,
        channel_id=request.channel_id,
        action=request.action.value,
        amount=request.amount,
        subaccount=request.subaccount_token,
        outcome=request.status.value,
        error_code=request.error_code,
        **fields,
    )
