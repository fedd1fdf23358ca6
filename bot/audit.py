"""`credit-bot audit`: what was asked, by whom, who approved, and what happened.

Reads the store only; prints tab-separated lines (one per request) or, for one request,
its whole trail. Amounts and balances are printed exactly as stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain import CreditRequest, Status
from bot.store import Store

COLUMNS = (
    "created_at",
    "id",
    "status",
    "action",
    "amount",
    "currency",
    "subaccount",
    "requester",
    "approver_or_canceller",
    "resolver",
    "subaccount_balance",
    "main_balance",
    "error",
    # Appended, so scripts reading the columns above by position keep working.
    "reason",
    "first_approver",
)


def _cell(value: object) -> str:
    # Tabs and newlines inside a vendor message would break the columns.
    return "" if value is None else " ".join(str(value).split())


def request_row(request: CreditRequest) -> str:
    cells = (
        request.created_at.isoformat(timespec="seconds"),
        request.id,
        request.status.value,
        request.action.value,
        format(request.amount, "f"),
        request.currency,
        request.subaccount_token,
        request.requester_id,
        request.handled_by,
        request.resolver_id,  # who settled an unknown outcome by hand
        request.subaccount_balance,
        request.main_balance,
        request.error_message,
        request.reason,
        request.first_approver_id,
    )
    return "\t".join(_cell(c) for c in cells)


def list_requests(store: Store, *, limit: int, status: Status | None) -> Iterable[str]:
    yield "\t".join(COLUMNS)
    for request in store.recent(limit=limit, status=status):
        yield request_row(request)


def trail(store: Store, request_id: str) -> Iterable[str]:
    """One request and every change of its status, oldest first."""
    request = store.get(request_id)
    if request is None:
        raise LookupError(f"no request {request_id}")
    yield "\t".join(COLUMNS)
    yield request_row(request)
    yield ""
    yield "approved_at\tapprover"
    for approver_id, approved_at in store.approvals(request_id):
        yield f"{approved_at.isoformat(timespec='milliseconds')}\t{_cell(approver_id)}"
    yield ""
    yield "at\tstatus\tactor\tdetail"
    for event in store.events(request_id):
        yield "\t".join(
            _cell(c)
            for c in (
                event.at.isoformat(timespec="milliseconds"),
                event.status.value,
                event.actor_id,
                event.detail,
            )
        )
