"""Who is in a Slack user group (`S…`), through `usergroups.users.list`, cached.

`UserGroups.members(group_id)` is the policy's `members_of`: the members as Slack last
listed them, asked again once the cache is older than `cache_seconds`. When Slack cannot
be asked (network, rate limit, a missing `usergroups:read` scope), the last known
membership is used, and None is returned for a group never listed; after a failure Slack
is not asked about that group again for `retry_seconds`, so a burst of clicks during an
outage does not wait on one timeout each. A group Slack says does not exist
(`no_such_subteam`) has no members. `known_members` never asks Slack, for the ack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.logs import log_event

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SECONDS = 180.0
DEFAULT_RETRY_SECONDS = 15.0
# Slack's answer for a deleted or mistyped group: known, and empty.
NO_SUCH_GROUP_ERRORS = frozenset({"no_such_subteam"})


@dataclass(frozen=True)
class _Entry:
    members: frozenset[str] | None
    listed_at: float | None  # when Slack last listed it; None: never
    failed_at: float | None = None  # when Slack last failed to answer; None: it did not


class UserGroups:
    def __init__(
        self,
        client: WebClient,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()
        # One lock per group: concurrent clicks on a cold cache make one call, not one each.
        self._group_locks: dict[str, threading.Lock] = {}

    def members(self, group_id: str) -> frozenset[str] | None:
        """The group's members (fresh or last known), or None when never known."""
        entry = self._fresh(group_id)
        if entry is not None:
            return entry.members
        with self._lock_for(group_id):
            # Another thread may have listed it while this one waited.
            entry = self._fresh(group_id)
            if entry is not None:
                return entry.members
            return self._list(group_id).members

    def known_members(self, group_id: str) -> frozenset[str] | None:
        """The last known members, however old, without ever asking Slack.

        For checks that must not wait on the network (a command's ack, inside Slack's
        3 seconds); the full check after the ack uses `members`.
        """
        with self._entries_lock:
            entry = self._entries.get(group_id)
        return None if entry is None else entry.members

    def refresh(self, group_ids: Iterable[str]) -> None:
        """List each group now (at start-up, so the first command does not wait on Slack)."""
        for group_id in group_ids:
            with self._lock_for(group_id):
                self._list(group_id)

    def _fresh(self, group_id: str) -> _Entry | None:
        """The entry if it may be used without asking Slack, else None."""
        with self._entries_lock:
            entry = self._entries.get(group_id)
        if entry is None:
            return None
        now = self._clock()
        if entry.failed_at is not None and now - entry.failed_at < self._retry_seconds:
            return entry
        if entry.listed_at is not None and now - entry.listed_at < self._cache_seconds:
            return entry
        return None

    def _lock_for(self, group_id: str) -> threading.Lock:
        with self._entries_lock:
            return self._group_locks.setdefault(group_id, threading.Lock())

    def _list(self, group_id: str) -> _Entry:
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
            members = frozenset(str(user) for user in response.get("users") or ())
        except SlackApiError as error:
            code = str(error.response.get("error"))
            if code in NO_SUCH_GROUP_ERRORS:
                log_event(logger, "usergroup.not_found", level=logging.WARNING, group_id=group_id)
                return self._store(group_id, _Entry(frozenset(), self._clock()))
            return self._failed(group_id, slack_error=code)
        except (SlackClientError, OSError) as error:
            # Network trouble: the error's class says enough; its text may carry a URL.
            return self._failed(group_id, slack_error=type(error).__name__)
        return self._store(group_id, _Entry(members, self._clock()))

    def _failed(self, group_id: str, *, slack_error: str) -> _Entry:
        with self._entries_lock:
            last = self._entries.get(group_id, _Entry(None, None))
        log_event(
            logger,
            "usergroup.list_failed",
            level=logging.WARNING,
            group_id=group_id,
            slack_error=slack_error,
            last_known=last.members is not None,
        )
        return self._store(group_id, _Entry(last.members, last.listed_at, self._clock()))

    def _store(self, group_id: str, entry: _Entry) -> _Entry:
        with self._entries_lock:
            self._entries[group_id] = entry
        return entry
