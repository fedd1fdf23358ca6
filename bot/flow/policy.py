"""Who may ask, where, and who may approve or cancel (SPEC.md §3).

Each check returns None when allowed, or the sentence to show the user when refused.
The user ids checked here always come from Slack's signed payload, never from text
a user typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.domain import CreditRequest


@dataclass(frozen=True)
class Policy:
    approvers: frozenset[str] = frozenset()
    requesters: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    allow_self_approval: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            approvers=settings.credit_approvers,
            requesters=settings.credit_requesters,
            channels=settings.credit_channels,
            allow_self_approval=settings.allow_self_approval,
        )

    def refuse_request(self, *, user_id: str, channel_id: str) -> str | None:
        if self.requesters and user_id not in self.requesters:
            return "You are not on the list of people allowed to ask for credit transfers."
        if self.channels and channel_id not in self.channels:
            return "`/credit` cannot be used in this channel; ask in one of the finance channels."
        return None

    def refuse_approval(self, *, user_id: str, request: CreditRequest) -> str | None:
        is_requester = user_id == request.requester_id
        if not self.approvers:
            # No approvers configured: the requester confirms their own request, nobody else.
            if is_requester:
                return None
            return "Only the person who asked can confirm this request."
        if user_id not in self.approvers:
            return "You are not allowed to approve credit transfers."
        if is_requester and not self.allow_self_approval:
            return "You cannot approve your own request: another approver has to confirm it."
        return None

    def refuse_cancel(self, *, user_id: str, request: CreditRequest) -> str | None:
        if user_id == request.requester_id or user_id in self.approvers:
            return None
        return "Only the person who asked or an approver can cancel this request."
