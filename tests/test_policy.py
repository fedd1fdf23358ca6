"""Unit tests for bot.flow.policy: who may ask, approve (once or twice) and cancel."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bot.config import load_settings
from bot.domain import Action, CreditRequest, Status
from bot.flow.policy import (
    CANNOT_CHECK_APPROVERS,
    CANNOT_CHECK_REQUESTERS,
    CanApprove,
    Policy,
)
from bot.texts import Texts, Wording

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
REQUEST = CreditRequest(
    id="req-1",
    action=Action.ADD,
    subaccount_token="sub-42",
    amount=Decimal("600.00"),
    currency="EUR",
    status=Status.PENDING,
    requester_id="UREQ",
    channel_id="CFIN",
    created_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=15),
)
FINANCE = frozenset({"UFIN1", "UFIN2"})

EN = Texts.for_language("en")


def said(wording: Wording | None) -> str | None:
    """A refusal as an English reader sees it."""
    return None if wording is None else EN.say(wording)


class Groups:
    """A membership source for the policy: known groups, and a record of what was asked."""

    def __init__(self, known: dict[str, frozenset[str]]) -> None:
        self.known = known
        self.asked: list[str] = []

    def __call__(self, group_id: str) -> frozenset[str] | None:
        self.asked.append(group_id)
        return self.known.get(group_id)


# -- asking ---------------------------------------------------------------------------


def test_anyone_may_ask_anywhere_when_nothing_is_configured() -> None:
    """No requesters and no channels: every user in every channel may ask."""
    assert Policy().refuse_request(user_id="UANY", channel_id="CANY") is None


def test_requesters_may_be_users_or_members_of_a_group() -> None:
    """A listed user, or a member of a listed group, may ask; anyone else is refused."""
    policy = Policy(
        requesters=frozenset({"UBOB", "SSALES"}), members_of=Groups({"SSALES": frozenset({"USAL"})})
    )
    assert said(policy.refuse_request(user_id="UBOB", channel_id="C1")) is None
    assert said(policy.refuse_request(user_id="USAL", channel_id="C1")) is None
    refusal = said(policy.refuse_request(user_id="UEVE", channel_id="C1"))
    assert refusal is not None and "not on the list" in refusal


def test_a_listed_requester_is_never_held_up_by_an_unknown_group() -> None:
    """A user listed by id is allowed without asking for any group's membership."""
    groups = Groups({})
    policy = Policy(requesters=frozenset({"UBOB", "SSALES"}), members_of=groups)
    assert said(policy.refuse_request(user_id="UBOB", channel_id="C1")) is None
    assert groups.asked == []


def test_an_unknown_requesters_group_refuses_with_a_clear_sentence() -> None:
    """A user not listed, whose group's membership was never known, is told why."""
    policy = Policy(requesters=frozenset({"SSALES"}), members_of=Groups({}))
    assert said(policy.refuse_request(user_id="USAL", channel_id="C1")) == said(
        CANNOT_CHECK_REQUESTERS
    )
    assert "cannot check membership" in said(CANNOT_CHECK_REQUESTERS)


def test_a_member_of_a_known_group_passes_even_if_another_group_is_unknown() -> None:
    """Membership found in one group is enough; an unknown other group does not block it."""
    groups = Groups({"SB": frozenset({"USAL"})})
    policy = Policy(requesters=frozenset({"SA", "SB"}), members_of=groups)
    assert said(policy.refuse_request(user_id="USAL", channel_id="C1")) is None


def test_channels_are_enforced() -> None:
    """With channels configured, /credit elsewhere is refused."""
    policy = Policy(channels=frozenset({"CFIN"}))
    assert said(policy.refuse_request(user_id="U1", channel_id="CFIN")) is None
    refusal = said(policy.refuse_request(user_id="U1", channel_id="CRANDOM"))
    assert refusal is not None and "cannot be used in this channel" in refusal


# -- approving ------------------------------------------------------------------------


def test_without_approvers_only_the_requester_confirms() -> None:
    """No approvers configured: the requester confirms their own request, nobody else."""
    policy = Policy()
    assert said(policy.refuse_approval(user_id="UREQ", request=REQUEST)) is None
    refusal = said(policy.refuse_approval(user_id="UOTHER", request=REQUEST))
    assert refusal == "Only the person who asked can confirm this request."


def test_listed_approvers_and_group_members_may_approve() -> None:
    """A listed approver or a member of the approvers' group may confirm; others may not."""
    policy = Policy(
        approvers=frozenset({"UFIN1", "SFIN"}), members_of=Groups({"SFIN": frozenset({"UFIN2"})})
    )
    assert said(policy.refuse_approval(user_id="UFIN1", request=REQUEST)) is None
    assert said(policy.refuse_approval(user_id="UFIN2", request=REQUEST)) is None
    refusal = said(policy.refuse_approval(user_id="UEVE", request=REQUEST))
    assert refusal == "You are not allowed to approve credit transfers."


def test_an_unknown_approvers_group_refuses_with_a_clear_sentence() -> None:
    """When the approvers' group was never listed, a click is refused, saying why."""
    policy = Policy(approvers=frozenset({"SFIN"}), members_of=Groups({}))
    assert said(policy.refuse_approval(user_id="UFIN2", request=REQUEST)) == said(
        CANNOT_CHECK_APPROVERS
    )
    assert said(CANNOT_CHECK_APPROVERS).startswith(
        "I cannot check membership of the approvers' group right now"
    )


def test_a_policy_without_membership_source_knows_no_group() -> None:
    """Built without `members_of`, a group's members are unknown: refused, not guessed."""
    policy = Policy(approvers=frozenset({"SFIN"}))
    assert said(policy.refuse_approval(user_id="UFIN2", request=REQUEST)) == said(
        CANNOT_CHECK_APPROVERS
    )


@pytest.mark.parametrize(
    ("approvers", "known"),
    [(frozenset({"UREQ", "UFIN1"}), {}), (frozenset({"SFIN"}), {"SFIN": frozenset({"UREQ"})})],
)
def test_an_approver_cannot_approve_their_own_request_unless_allowed(
    approvers: frozenset[str], known: dict[str, frozenset[str]]
) -> None:
    """The requester, listed or in the group, may confirm only with ALLOW_SELF_APPROVAL."""
    strict = Policy(approvers=approvers, members_of=Groups(known))
    refusal = said(strict.refuse_approval(user_id="UREQ", request=REQUEST))
    assert refusal is not None and "your own request" in refusal
    lenient = Policy(approvers=approvers, allow_self_approval=True, members_of=Groups(known))
    assert said(lenient.refuse_approval(user_id="UREQ", request=REQUEST)) is None


def test_a_requester_who_is_no_approver_is_told_so() -> None:
    """A requester outside the approvers hears they may not approve, not "your own request";
    with the group unknown, they are still refused as the requester."""
    policy = Policy(approvers=FINANCE)
    refusal = said(policy.refuse_approval(user_id="UREQ", request=REQUEST))
    assert refusal == "You are not allowed to approve credit transfers."
    unknown = Policy(approvers=frozenset({"SFIN"}), members_of=Groups({}))
    refusal = said(unknown.refuse_approval(user_id="UREQ", request=REQUEST))
    assert refusal is not None and "your own request" in refusal


def test_self_approval_does_not_make_a_requester_an_approver() -> None:
    """ALLOW_SELF_APPROVAL lets an approver confirm their own request, not anyone's."""
    policy = Policy(approvers=FINANCE, allow_self_approval=True)
    refusal = said(policy.refuse_approval(user_id="UREQ", request=REQUEST))
    assert refusal == "You are not allowed to approve credit transfers."


# -- second approval ------------------------------------------------------------------


def test_approvals_needed_is_two_only_above_the_threshold() -> None:
    """Strictly above CREDIT_SECOND_APPROVAL_ABOVE two approvals; at it or below, one."""
    policy = Policy(approvers=FINANCE, second_approval_above=Decimal("500"))
    assert policy.approvals_needed(Decimal("500.00")) == 1
    assert policy.approvals_needed(Decimal("500.01")) == 2
    assert policy.approvals_needed(Decimal("0.01")) == 1
    assert Policy(approvers=FINANCE).approvals_needed(Decimal("999999")) == 1


def test_the_second_approver_must_differ_from_the_first() -> None:
    """The first approver clicking again is told they already approved; another may confirm."""
    policy = Policy(approvers=FINANCE, second_approval_above=Decimal("500"))
    again = said(
        policy.refuse_approval(user_id="UFIN1", request=REQUEST, first_approver_id="UFIN1")
    )
    assert again == "You already approved this request: a second approver has to confirm it."
    assert (
        said(policy.refuse_approval(user_id="UFIN2", request=REQUEST, first_approver_id="UFIN1"))
        is None
    )


def test_the_second_approval_follows_the_same_rules() -> None:
    """As second approver, a stranger and the requester are refused as for the first."""
    policy = Policy(approvers=FINANCE | {"UREQ"}, second_approval_above=Decimal("500"))
    stranger = said(
        policy.refuse_approval(user_id="UEVE", request=REQUEST, first_approver_id="UFIN1")
    )
    assert stranger == "You are not allowed to approve credit transfers."
    own = said(policy.refuse_approval(user_id="UREQ", request=REQUEST, first_approver_id="UFIN1"))
    assert own is not None and "your own request" in own


def test_a_second_approval_without_approvers_is_refused_at_construction() -> None:
    """A threshold nobody could pass (the requester alone) is a programming error."""
    with pytest.raises(ValueError, match="second approval needs approvers"):
        Policy(second_approval_above=Decimal("500"))


# -- cancelling -----------------------------------------------------------------------


def test_the_requester_or_an_approver_may_cancel() -> None:
    """The requester, a listed approver and a group member cancel; a stranger cannot."""
    groups = Groups({"SFIN": frozenset({"UFIN2"})})
    policy = Policy(approvers=frozenset({"UFIN1", "SFIN"}), members_of=groups)
    for user_id in ("UREQ", "UFIN1", "UFIN2"):
        assert said(policy.refuse_cancel(user_id=user_id, request=REQUEST)) is None
    refusal = said(policy.refuse_cancel(user_id="UEVE", request=REQUEST))
    assert refusal == "Only the person who asked or an approver can cancel this request."


def test_without_approvers_only_the_requester_cancels() -> None:
    """No approvers configured: the requester alone may cancel."""
    assert Policy().refuse_cancel(user_id="UREQ", request=REQUEST) is None
    assert Policy().refuse_cancel(user_id="UEVE", request=REQUEST) is not None


def test_cancel_by_a_non_requester_with_an_unknown_group_says_why() -> None:
    """When the approvers' group is unknown, a cancel by someone else is refused clearly;
    the requester still cancels without any membership being asked."""
    groups = Groups({})
    policy = Policy(approvers=frozenset({"SFIN"}), members_of=groups)
    assert said(policy.refuse_cancel(user_id="UREQ", request=REQUEST)) is None
    assert groups.asked == []
    assert said(policy.refuse_cancel(user_id="UFIN2", request=REQUEST)) == said(
        CANNOT_CHECK_APPROVERS
    )


# -- what the card shows --------------------------------------------------------------


def test_can_approve_lists_users_and_groups_or_the_requester() -> None:
    """The card's "Can approve" line gets user ids and group ids, sorted; with no approvers,
    the requester."""
    policy = Policy(approvers=frozenset({"UFIN2", "SFIN", "UFIN1"}))
    assert policy.can_approve() == CanApprove(user_ids=("UFIN1", "UFIN2"), group_ids=("SFIN",))
    assert Policy().can_approve() == CanApprove(requester_only=True)
    assert policy.groups == {"SFIN"}


def test_from_settings_carries_every_rule() -> None:
    """Policy.from_settings reads approvers, requesters, channels, self-approval, the second
    approval threshold, and keeps the membership source it is given."""
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-x",
            "SLACK_SIGNING_SECRET": "s",
            "SMSPARTNER_API_KEY": "k",
            "CREDIT_APPROVERS": "UFIN1,SFIN",
            "CREDIT_REQUESTERS": "SSALES",
            "CREDIT_CHANNELS": "CFIN",
            "ALLOW_SELF_APPROVAL": "true",
            "CREDIT_SECOND_APPROVAL_ABOVE": "500",
        },
        env_file=None,
    )
    groups = Groups({"SFIN": frozenset({"UFIN2"}), "SSALES": frozenset({"UREQ"})})
    policy = Policy.from_settings(settings, members_of=groups)
    assert policy.approvers == {"UFIN1", "SFIN"}
    assert policy.requesters == {"SSALES"}
    assert policy.channels == {"CFIN"}
    assert policy.allow_self_approval is True
    assert policy.approvals_needed(Decimal("600")) == 2
    assert said(policy.refuse_request(user_id="UREQ", channel_id="CFIN")) is None
    assert said(policy.refuse_approval(user_id="UFIN2", request=REQUEST)) is None
    assert policy.groups == {"SFIN", "SSALES"}
