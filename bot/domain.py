"""The domain's values: what a credit request is and the states it goes through.

No I/O here; every layer imports it (the flow, the store, Slack's Block Kit builders).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Action(StrEnum):
    ADD = "add"
    REMOVE = "remove"


class Status(StrEnum):
    PENDING = "pending"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self not in (Status.PENDING, Status.EXECUTING)

    @property
    def card_rank(self) -> int:
        """How far along a card showing this status is; a card never goes back to a lower
        rank. `unknown` is below the other ends: a real answer recorded late replaces it."""
        if self is Status.PENDING:
            return 0
        if self is Status.EXECUTING:
            return 1
        if self is Status.UNKNOWN:
            return 2
        return 3


@dataclass(frozen=True)
class CreditRequest:
    """One `/credit` request, as stored."""

    id: str
    action: Action
    subaccount_token: str
    amount: Decimal
    currency: str
    status: Status
    requester_id: str
    channel_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    response_url: str | None = None
    message_ts: str | None = None
    approver_id: str | None = None
    executing_at: dt.datetime | None = None
    canceller_id: str | None = None
    finished_at: dt.datetime | None = None
    main_balance: Decimal | None = None
    subaccount_balance: Decimal | None = None
    error_code: int | None = None
    error_message: str | None = None
    executor: str | None = None
    card_status: Status | None = None
    trigger_id: str | None = None
    card_attempts: int = 0
    card_retry_at: dt.datetime | None = None
    card_given_up_at: dt.datetime | None = None
    # What the card showed before money moved (None: SMS Partner could not be read).
    subaccount_email: str | None = None
    main_balance_before: Decimal | None = None
    subaccount_balance_before: Decimal | None = None
    balances_seen_at: dt.datetime | None = None
    reason: str | None = None
    # 2 above CREDIT_SECOND_APPROVAL_ABOVE, fixed when the request is opened.
    approvals_needed: int = 1
    first_approver_id: str | None = None
    first_approved_at: dt.datetime | None = None
    reminded_at: dt.datetime | None = None
    # Who settled an unknown outcome by hand (It went through / It did not), and when.
    resolver_id: str | None = None
    resolved_at: dt.datetime | None = None

    @property
    def handled_by(self) -> str | None:
        """Who took the request out of `pending`: the approver, or the canceller."""
        return self.approver_id or self.canceller_id
