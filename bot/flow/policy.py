"""Who may ask, where, and who may approve or cancel; how many approvals a request needs.

Each `refuse_*` check returns None when allowed, or the sentence to show the user when
refused. The user ids checked here always come from Slack's signed payload, never from
text a user typed. Approvers and requesters are Slack user ids (`U…`, `W…`) and user group
ids (`S…`); a group's members come from the injected `members_of`, so this module knows
nothing of Slack: `members_of(group_id)` gives the members, or None when they were never
known (Slack could not be asked), in which case a check that depends on them refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from bot.config import Settings
from bot.domain import CreditRequest
from bot.texts import Wording

MembersOf = Callable[[str], frozenset[str] | None]

CANNOT_CHECK_APPROVERS = Wording.of("refusal.cannot_check_approvers")
CANNOT_CHECK_REQUESTERS = Wording.of("refusal.cannot_check_requesters")


def no_groups(group_id: str) -> frozenset[str] | None:
    """For a policy built without Slack: no group's membership is ever known."""
    return None


def is_group(slack_id: str) -> bool:
    """User group ids start with S; user ids with U or W."""
    return slack_id.startswith("S")


@dataclass(frozen=True)
class CanApprove:
    """Who may confirm a request, for the card's "Can approve" line and for reminders.

    `requester_only`: no approvers are configured, so the requester confirms their own.
    Otherwise `user_ids` and `group_ids` are mentioned as they are configured (sorted);
    a group is mentioned as a group, not expanded, so Slack notifies its current members.
    """

    user_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    requester_only: bool = False


@dataclass(frozen=True)
class Policy:
    approvers: frozenset[str] = frozenset()
    requesters: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    allow_self_approval: bool = False
    # Above this amount two different approvers must confirm; None: one is always enough.
    second_approval_above: Decimal | None = None
    members_of: MembersOf = field(default=no_groups, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.second_approval_above is not None and not self.approvers:
            # Load_settings says so in one line first; this guards policies built by hand.
            raise ValueError("a second approval needs approvers: the requester is only one")

    @classmethod
    def from_settings(cls, settings: Settings, *, members_of: MembersOf = no_groups) -> Policy:
        return cls(
            approvers=settings.credit_approvers,
            requesters=settings.credit_requesters,
            channels=settings.credit_channels,
            allow_self_approval=settings.allow_self_approval,
            second_approval_above=settings.credit_second_approval_above,
            members_of=members_of,
        )

    @property
    def groups(self) -> frozenset[str]:
        """Every user group the policy refers to, for warming a membership cache at start."""
        return frozenset(i for i in self.approvers | self.requesters if is_group(i))

    # -- asking ---------------------------------------------------------------------

    def refuse_request(self, *, user_id: str, channel_id: str) -> Wording | None:
        if self.requesters:
            allowed = self._is_among(user_id, self.requesters)
            if allowed is None:
                return CANNOT_CHECK_REQUESTERS
            if not allowed:
                return Wording.of("refusal.not_a_requester")
        if self.channels and channel_id not in self.channels:
            return Wording.of("refusal.channel")
        return None

    # -- approving ------------------------------------------------------------------

    def approvals_needed(self, amount: Decimal) -> int:
        """2 above CREDIT_SECOND_APPROVAL_ABOVE, else 1."""
        if self.second_approval_above is not None and amount > self.second_approval_above:
            return 2
        return 1

    def refuse_approval(
        self, *, user_id: str, request: CreditRequest, first_approver_id: str | None = None
    ) -> Wording | None:
        """May `user_id` confirm `request`? With `first_approver_id`, as its second approver."""
        if first_approver_id is not None and user_id == first_approver_id:
            return Wording.of("refusal.already_approved")
        is_requester = user_id == request.requester_id
        if not self.approvers:
            # No approvers configured: the requester confirms their own request, nobody else.
            if is_requester:
                return None
            return Wording.of("refusal.only_requester_confirms")
        allowed = self._is_among(user_id, self.approvers)
        if allowed is False:
            return Wording.of("refusal.not_an_approver")
        # Before the unknown-membership answer: the requester is refused whatever it says.
        if is_requester and not self.allow_self_approval:
            return Wording.of("refusal.own_request")
        if allowed is None:
            return CANNOT_CHECK_APPROVERS
        return None

    def can_approve(self) -> CanApprove:
        """Who the card names on its "Can approve" line (the requester when nobody is set)."""
        if not self.approvers:
            return CanApprove(requester_only=True)
        return CanApprove(
            user_ids=tuple(sorted(i for i in self.approvers if not is_group(i))),
            group_ids=tuple(sorted(i for i in self.approvers if is_group(i))),
        )

    # -- cancelling -----------------------------------------------------------------

    def refuse_cancel(self, *, user_id: str, request: CreditRequest) -> Wording | None:
        if user_id == request.requester_id:
            return None
        allowed = self._is_among(user_id, self.approvers) if self.approvers else False
        if allowed is None:
            return CANNOT_CHECK_APPROVERS
        if not allowed:
            return Wording.of("refusal.cancel_not_allowed")
        return None

    # -- membership -----------------------------------------------------------------

    def is_approver(self, user_id: str) -> bool | None:
        """Whether `user_id` is one of the approvers (directly or through a group); None when
        a group's membership cannot be known right now."""
        return self._is_among(user_id, self.approvers)

    def _is_among(self, user_id: str, allowed: Iterable[str]) -> bool | None:
        """True if listed or in a listed group; None if not found and a group is unknown.

        Listed user ids are checked before any group, so a listed user is never held up by
        Slack being unreachable.
        """
        allowed = frozenset(allowed)
        if user_id in allowed:
            return True
        unknown = False
        for group_id in sorted(i for i in allowed if is_group(i)):
            members = self.members_of(group_id)
            if members is None:
                unknown = True
            elif user_id in members:
                return True
        return None if unknown else False
