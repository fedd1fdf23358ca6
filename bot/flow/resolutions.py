"""Unknown outcomes (SPEC.md §2.4): look at the balances again, and settle the request by hand.

`unknown` means the transfer was sent and no answer came. Nothing here sends anything: a
person checks SMS Partner (Check balances shows the balances now beside those seen when the
card was posted) and says whether it went through; that is one conditional UPDATE
(`unknown -> succeeded | failed`), attributed to them in the audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from bot.domain import CreditRequest, Status
from bot.flow.policy import CANNOT_CHECK_APPROVERS, Policy
from bot.logs import log_event
from bot.smspartner.directory import SubaccountDirectory
from bot.smspartner.errors import SMSPartnerError
from bot.store import Store
from bot.texts import Wording

logger = logging.getLogger(__name__)

# The balances now: the directory reads again unless it read in the last few seconds.
NOW_MAX_AGE_SECONDS = 0.0


@dataclass(frozen=True)
class Refusal:
    """The click is not allowed, or there is nothing to do; `message` goes to the clicker."""

    wording: Wording


@dataclass(frozen=True)
class BalancesNow:
    """The request (with the balances seen before), and both balances now (None: unreadable)."""

    request: CreditRequest
    subaccount_balance: Decimal | None
    main_balance: Decimal | None


@dataclass(frozen=True)
class Resolved:
    """The request is settled; its card must now show `request`."""

    request: CreditRequest


class Resolutions:
    def __init__(self, *, store: Store, directory: SubaccountDirectory, policy: Policy) -> None:
        self.store = store
        self.directory = directory
        self.policy = policy

    def check_balances(
        self, request_id: str, *, user_id: str, channel_id: str
    ) -> BalancesNow | Refusal:
        """For the requester and the approvers: the balances now, beside those seen."""
        request = self._unknown(request_id, channel_id)
        if isinstance(request, Refusal):
            return request
        allowed = user_id == request.requester_id or self._is_approver(user_id)
        if allowed is None:
            return Refusal(CANNOT_CHECK_APPROVERS)
        if not allowed:
            return Refusal(Wording.of("refusal.check_not_allowed"))
        subaccount: Decimal | None = None
        main: Decimal | None = None
        try:
            found = self.directory.look_up(
                request.subaccount_token, max_age=NOW_MAX_AGE_SECONDS
            ).subaccount
            subaccount = found.balance if found else None
        except SMSPartnerError as error:
            log_event(
                logger, "directory.unreadable", level=logging.WARNING, error=type(error).__name__
            )
        try:
            main = self.directory.main_account(max_age=NOW_MAX_AGE_SECONDS).balance
        except SMSPartnerError as error:
            log_event(
                logger, "main_account.unreadable", level=logging.WARNING, error=type(error).__name__
            )
        return BalancesNow(request, subaccount, main)

    def resolve(
        self, request_id: str, *, user_id: str, channel_id: str, went_through: bool
    ) -> Resolved | Refusal:
        """For the approvers (the requester when none is configured): unknown -> succeeded
        or failed, once; a second click, or a late answer recorded first, wins nothing."""
        request = self._unknown(request_id, channel_id)
        if isinstance(request, Refusal):
            return request
        refusal = self._refuse_resolution(user_id, request)
        if refusal:
            return Refusal(refusal)
        resolved = self.store.resolve(
            request_id=request.id, resolver_id=user_id, went_through=went_through
        )
        if resolved is None:
            return self._settled(self.store.get(request.id) or request)
        log_event(
            logger,
            "credit.resolved",
            request_id=resolved.id,
            resolver_id=user_id,
            outcome=resolved.status.value,
            subaccount=resolved.subaccount_token,
            amount=resolved.amount,
        )
        return Resolved(resolved)

    def _unknown(self, request_id: str, channel_id: str) -> CreditRequest | Refusal:
        request = self.store.get(request_id)
        if request is None or request.channel_id != channel_id:
            # Same answer for both, so a click cannot probe other channels' request ids.
            return Refusal(Wording.of("refusal.no_such_request"))
        if request.status is not Status.UNKNOWN:
            return self._settled(request)
        return request

    @staticmethod
    def _settled(request: CreditRequest) -> Refusal:
        if request.resolver_id:
            return Refusal(
                Wording.of(
                    "refusal.settled_by_hand", status=Wording.of(f"status.{request.status.value}")
                )
            )
        return Refusal(
            Wording.of(
                "refusal.nothing_to_settle", status=Wording.of(f"status.{request.status.value}")
            )
        )

    def _refuse_resolution(self, user_id: str, request: CreditRequest) -> Wording | None:
        if not self.policy.approvers:
            if user_id == request.requester_id:
                return None
            return Wording.of("refusal.settle_requester_only")
        allowed = self._is_approver(user_id)
        if allowed is None:
            return CANNOT_CHECK_APPROVERS
        if not allowed:
            return Wording.of("refusal.settle_approver_only")
        return None

    def _is_approver(self, user_id: str) -> bool | None:
        """True, False, or None when an approvers' group could not be read."""
        if not self.policy.approvers:
            return False
        # The policy's own membership check (listed ids first, then groups), so both agree.
        return self.policy.is_approver(user_id)
