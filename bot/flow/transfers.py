"""The approval flow, without Slack: open a request, confirm it, cancel it, expire it.

Confirm is where money moves, so its order matters: policy, expiry, then the store's
atomic claim, and only the claimant calls SMS Partner, once, recording whatever came
back. Nothing here retries a transfer; an unanswered call ends `unknown`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot.domain import Action, CreditRequest, Status
from bot.flow.commands import CreditCommand
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

logger = logging.getLogger(__name__)

CURRENCY = "EUR"
# A live call cannot outlast the API timeout; past it plus this margin, an `executing`
# request whose replica says nothing is taken for crashed.
CRASH_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Refused:
    """The click is not allowed; the card stays as it is. `message` goes to the clicker."""

    message: str


@dataclass(frozen=True)
class AlreadyHandled:
    """Somebody else took the request out of `pending` first."""

    request: CreditRequest


@dataclass(frozen=True)
class CardChanged:
    """The request moved on: the card must now show `request`."""

    request: CreditRequest


Outcome = Refused | AlreadyHandled | CardChanged


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
    ) -> None:
        self.store = store
        self.client = client
        self.policy = policy
        self.ttl_seconds = ttl_seconds
        self.api_timeout_seconds = api_timeout_seconds
        self.executor_id = executor_id or new_executor_id()
        self._accepting = True
        self._in_flight = 0
        self._idle = threading.Condition()

    # -- opening --------------------------------------------------------------------

    def open(
        self,
        command: CreditCommand,
        *,
        requester_id: str,
        channel_id: str,
        response_url: str | None,
    ) -> CreditRequest:
        request = self.store.create(
            action=command.action,
            subaccount_token=command.subaccount,
            amount=command.amount,
            currency=CURRENCY,
            requester_id=requester_id,
            channel_id=channel_id,
            response_url=response_url,
            ttl_seconds=self.ttl_seconds,
        )
        _log(request, "credit.requested", user_id=requester_id)
        return request

    # -- clicks ---------------------------------------------------------------------

    def confirm(
        self,
        request_id: str,
        *,
        user_id: str,
        channel_id: str,
        on_executing: Callable[[CreditRequest], object] | None = None,
    ) -> Outcome:
        found = self._pending(request_id, channel_id)
        if not isinstance(found, CreditRequest):
            return found
        refusal = self.policy.refuse_approval(user_id=user_id, request=found)
        if refusal:
            _log(found, "credit.confirm_refused", user_id=user_id, reason=refusal)
            return Refused(refusal)
        with self._idle:
            # Checked and counted under one lock, so a drain never misses a starting transfer.
            if not self._accepting:
                return Refused("The bot is restarting: nothing was sent. Click Confirm again.")
            self._in_flight += 1
        try:
            claimed = self.store.claim(
                request_id=request_id, approver_id=user_id, executor=self.executor_id
            )
            if claimed is None:
                return self._lost_race(request_id)
            _log(claimed, "credit.executing", user_id=user_id)
            if on_executing is not None:
                on_executing(claimed)
            return CardChanged(self._execute(claimed))
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def cancel(self, request_id: str, *, user_id: str, channel_id: str) -> Outcome:
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

    def _pending(self, request_id: str, channel_id: str) -> CreditRequest | Outcome:
        """The request if it is still pending and in time; otherwise what to answer."""
        request = self.store.get(request_id)
        if request is None or request.channel_id != channel_id:
            # Same answer for both, so a click cannot probe other channels' request ids.
            return Refused("This request does not exist in this channel.")
        if request.status is not Status.PENDING:
            return AlreadyHandled(request)
        if request.expires_at <= utcnow():
            return self._expire(request)
        return request

    def _lost_race(self, request_id: str) -> Outcome:
        request = self.store.get(request_id)
        if request is None:
            return Refused("This request does not exist in this channel.")
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

    def _execute(self, request: CreditRequest) -> CreditRequest:
        send = self.client.add_credit if request.action is Action.ADD else self.client.remove_credit
        try:
            transfer = send(request.subaccount_token, request.amount)
        except APIError as error:
            recorded = self.store.record_failure(
                request_id=request.id, error_code=error.code, error_message=error.user_message
            )
        except NotSentError:
            recorded = self.store.record_failure(
                request_id=request.id,
                error_code=None,
                error_message="Could not reach SMS Partner: nothing moved. Safe to ask again.",
            )
        except OutcomeUnknownError as error:
            recorded = self.store.record_unknown(request_id=request.id, reason=str(error))
        except BadAnswerError as error:
            recorded = self.store.record_failure(
                request_id=request.id,
                error_code=None,
                error_message=(
                    f"SMS Partner sent an answer the bot cannot read ({error}). It most likely "
                    "did not move the credit, but check the balances before asking again."
                ),
            )
        except Exception:
            # A bug of ours after the request may have left: the only honest state is unknown.
            logger.exception("unexpected error while sending request %s", request.id)
            recorded = self.store.record_unknown(
                request_id=request.id, reason="The bot failed while sending the transfer."
            )
        else:
            recorded = self._record_success(request, transfer)
        final = recorded or self.store.get(request.id) or request
        _log(final, f"credit.{final.status.value}", user_id=request.approver_id)
        return final

    def _record_success(self, request: CreditRequest, transfer: Transfer) -> CreditRequest | None:
        return self.store.record_success(
            request_id=request.id,
            main_balance=transfer.main_balance,
            subaccount_balance=transfer.subaccount_balance,
            currency=transfer.currency,
        )

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

    def recover_crashed(self, *, now: dt.datetime | None = None) -> list[CreditRequest]:
        """executing -> unknown for transfers whose replica is gone or that no live call
        could still be running (older than the API timeout plus a margin)."""
        now = now or utcnow()
        deadline = now - dt.timedelta(seconds=self.api_timeout_seconds + CRASH_MARGIN_SECONDS)
        crashed = [
            r.id
            for r in self.store.executing()
            if executor_is_gone(r.executor, self.executor_id)
            or (r.executing_at is not None and r.executing_at < deadline)
        ]
        recovered = self.store.mark_unknown(
            request_ids=crashed,
            reason="The bot stopped while this transfer was being sent, before any answer.",
        )
        for request in recovered:
            _log(request, "credit.recovered_unknown", level=logging.WARNING)
        return recovered

    def stop_accepting(self) -> None:
        self._accepting = False

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
