"""bot.slack.usergroups against the loopback FakeSlack: membership, its cache, and outages.

FakeSlack has no `usergroups.users.list` yet; each test registers one for its duration
through the fake's method table (`monkeypatch.setitem`, undone after the test), so the
calls still go through the fake's token checks and `fail_next`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.slack.usergroups import UserGroups
from tests.fakes import slack as fake_slack_module
from tests.fakes.slack import FakeSlack

CACHE_SECONDS = 180.0
RETRY_SECONDS = 15.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """What the workspace's groups hold, served as Slack's usergroups.users.list answers."""

    def __init__(self) -> None:
        self.groups: dict[str, list[str]] = {}
        self.release = threading.Event()
        self.release.set()

    def handle(self, fake: FakeSlack, args: dict[str, Any]) -> dict[str, Any]:
        # Lets a test hold the answer back to pile up concurrent callers behind it.
        self.release.wait(timeout=5)
        group = args.get("usergroup")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.groups[group])}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> Directory:
    served = Directory()
    monkeypatch.setitem(fake_slack_module._METHODS, "usergroups.users.list", served.handle)
    return served


def _groups(url: str, token: str, clock: Clock) -> UserGroups:
    client = WebClient(token=token, base_url=url, timeout=5)
    return UserGroups(client, cache_seconds=CACHE_SECONDS, retry_seconds=RETRY_SECONDS, clock=clock)


def _calls(slack: FakeSlack) -> int:
    return len(slack.calls_to("usergroups.users.list"))


def test_members_come_from_slack_and_are_cached(slack: FakeSlack, directory: Directory) -> None:
    """The first look-up lists the group; later ones within the cache time ask nothing."""
    directory.groups["SFIN"] = ["UFIN1", "UFIN2"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    assert groups.members("SFIN") == {"UFIN1", "UFIN2"}
    clock.now += CACHE_SECONDS - 1
    assert groups.members("SFIN") == {"UFIN1", "UFIN2"}
    assert _calls(slack) == 1
    assert slack.calls_to("usergroups.users.list")[0].args["usergroup"] == "SFIN"


def test_a_membership_change_is_seen_once_the_cache_expires(
    slack: FakeSlack, directory: Directory
) -> None:
    """Someone added to the group counts after `cache_seconds`, not before."""
    directory.groups["SFIN"] = ["UFIN1"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    assert groups.members("SFIN") == {"UFIN1"}
    directory.groups["SFIN"] = ["UFIN1", "UNEW"]
    clock.now += CACHE_SECONDS - 1
    assert groups.members("SFIN") == {"UFIN1"}
    clock.now += 1
    assert groups.members("SFIN") == {"UFIN1", "UNEW"}
    assert _calls(slack) == 2


def test_the_last_known_membership_is_used_when_slack_fails(
    slack: FakeSlack, directory: Directory
) -> None:
    """An expired entry that Slack cannot refresh is used as last known, not dropped."""
    directory.groups["SFIN"] = ["UFIN1"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    assert groups.members("SFIN") == {"UFIN1"}
    clock.now += CACHE_SECONDS
    slack.fail_next("usergroups.users.list", "ratelimited")
    assert groups.members("SFIN") == {"UFIN1"}
    assert _calls(slack) == 2


def test_a_group_never_listed_is_unknown_while_slack_fails(
    slack: FakeSlack, directory: Directory
) -> None:
    """With no membership ever known and Slack failing, the answer is None (not empty)."""
    directory.groups["SFIN"] = ["UFIN1"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    slack.fail_next("usergroups.users.list", "missing_scope")
    assert groups.members("SFIN") is None


def test_after_a_failure_slack_is_asked_again_only_after_the_retry_delay(
    slack: FakeSlack, directory: Directory
) -> None:
    """A burst of look-ups during an outage makes one call, then one more after the delay."""
    directory.groups["SFIN"] = ["UFIN1"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    slack.fail_next("usergroups.users.list", "internal_error")
    for _ in range(5):
        assert groups.members("SFIN") is None
    assert _calls(slack) == 1
    clock.now += RETRY_SECONDS
    assert groups.members("SFIN") == {"UFIN1"}
    assert _calls(slack) == 2


def test_a_bad_token_is_a_failure_not_an_empty_group(
    slack: FakeSlack, directory: Directory
) -> None:
    """Slack refusing the token (invalid_auth) leaves the membership unknown."""
    directory.groups["SFIN"] = ["UFIN1"]
    groups = _groups(slack.api_url, "xoxb-wrong", Clock())
    assert groups.members("SFIN") is None


def test_a_group_slack_does_not_know_has_no_members(slack: FakeSlack, directory: Directory) -> None:
    """`no_such_subteam` (a deleted or mistyped group) is known and empty."""
    groups = _groups(slack.api_url, slack.bot_token, Clock())
    assert groups.members("SGONE") == frozenset()


def test_slack_unreachable_leaves_a_never_listed_group_unknown() -> None:
    """A closed port on 127.0.0.1: no exception, None when never known."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    groups = _groups(f"http://127.0.0.1:{port}/api/", "xoxb-test-token", Clock())
    assert groups.members("SFIN") is None


def test_refresh_lists_groups_ahead_of_the_first_look_up(
    slack: FakeSlack, directory: Directory
) -> None:
    """`refresh` warms the cache, so the first click asks Slack nothing."""
    directory.groups.update({"SFIN": ["UFIN1"], "SSALES": ["USAL"]})
    groups = _groups(slack.api_url, slack.bot_token, Clock())
    groups.refresh(["SFIN", "SSALES"])
    assert _calls(slack) == 2
    assert groups.members("SSALES") == {"USAL"}
    assert _calls(slack) == 2


def test_concurrent_look_ups_on_a_cold_cache_make_one_call(
    slack: FakeSlack, directory: Directory
) -> None:
    """Threads asking for the same group at once share one usergroups.users.list call."""
    directory.groups["SFIN"] = ["UFIN1"]
    directory.release.clear()
    groups = _groups(slack.api_url, slack.bot_token, Clock())
    start = threading.Barrier(8)
    answers: list[frozenset[str] | None] = []

    def look_up() -> None:
        start.wait(timeout=5)
        answers.append(groups.members("SFIN"))

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    directory.release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == [frozenset({"UFIN1"})] * 8
    assert _calls(slack) == 1


def test_known_members_never_asks_slack(slack: FakeSlack, directory: Directory) -> None:
    """`known_members` answers from the cache only: None before any listing, then the last
    listed members however old, with no call made."""
    directory.groups["SFIN"] = ["UFIN1"]
    clock = Clock()
    groups = _groups(slack.api_url, slack.bot_token, clock)
    assert groups.known_members("SFIN") is None
    assert _calls(slack) == 0
    groups.refresh(["SFIN"])
    clock.now += CACHE_SECONDS * 10
    assert groups.known_members("SFIN") == {"UFIN1"}
    assert _calls(slack) == 1
