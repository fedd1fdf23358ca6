"""CallDeadline and its one watchdog thread, on real socket pairs: at expiry every socket of
that call is shut down and `expired` set; a call that finished is never touched."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from bot.smspartner.client import SMSPartnerClient
from bot.smspartner.deadline import CallDeadline
from tests.fakes.smspartner import FakeSMSPartner

# Only a bound on how long a broken test can block; no assertion is about time.
Pairs = list[tuple[socket.socket, socket.socket]]

SAFETY_SECONDS = 10.0
LONG_SECONDS = 60.0


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    made: Pairs = []
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def _pair(pairs: Pairs) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.settimeout(SAFETY_SECONDS)
    theirs.settimeout(SAFETY_SECONDS)
    pairs.append((ours, theirs))
    return ours, theirs


def _still_open(ours: socket.socket, theirs: socket.socket) -> bool:
    theirs.sendall(b"x")
    return ours.recv(1) == b"x"


def test_at_expiry_every_socket_of_the_call_is_shut(pairs: Pairs) -> None:
    """Two sockets watched by one call: a read blocked on each returns at the deadline."""
    first, second = _pair(pairs), _pair(pairs)
    with CallDeadline(0.05) as deadline:
        deadline.watch(first[0])
        deadline.watch(second[0])
        assert first[0].recv(1) == b""  # blocks until the watchdog shuts it
        assert second[0].recv(1) == b""
    assert deadline.expired


def test_a_finished_call_is_never_touched(pairs: Pairs) -> None:
    """A call that ended before its deadline: its socket stays usable after that deadline
    passed (a later deadline's expiry proves the watchdog got that far)."""
    ours, theirs = _pair(pairs)
    with CallDeadline(0.02) as finished:
        finished.watch(ours)
    later, _ = _pair(pairs)
    with CallDeadline(0.1) as deadline:
        deadline.watch(later)
        assert later.recv(1) == b""
    assert not finished.expired
    assert _still_open(ours, theirs)


def test_an_earlier_deadline_entered_later_expires_first(pairs: Pairs) -> None:
    """The watchdog waiting for a long deadline is woken for a shorter one, and the long one
    is left alone."""
    slow, slow_peer = _pair(pairs)
    quick, _ = _pair(pairs)
    with CallDeadline(LONG_SECONDS) as long_deadline:
        long_deadline.watch(slow)
        with CallDeadline(0.05) as short_deadline:
            short_deadline.watch(quick)
            assert quick.recv(1) == b""
        assert short_deadline.expired
        assert not long_deadline.expired
        assert _still_open(slow, slow_peer)


def test_concurrent_calls_each_expire_on_their_own_deadline(pairs: Pairs) -> None:
    """Calls in several threads, deadlines in no particular order: each read returns, each
    deadline expired, whichever came first."""
    sockets = [_pair(pairs)[0] for _ in range(8)]
    results: list[tuple[bool, bytes]] = []
    lock = threading.Lock()

    def call(sock: socket.socket, seconds: float) -> None:
        with CallDeadline(seconds) as deadline:
            deadline.watch(sock)
            data = sock.recv(1)
        with lock:
            results.append((deadline.expired, data))

    threads = [
        threading.Thread(target=call, args=(sock, 0.02 * ((index * 5) % 8 + 1)))
        for index, sock in enumerate(sockets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY_SECONDS)
    assert results == [(True, b"")] * len(sockets)


def test_a_socket_watched_after_expiry_is_shut_at_once(pairs: Pairs) -> None:
    """A connection that registers once the call has expired cannot hold it either."""
    early, _ = _pair(pairs)
    late, _ = _pair(pairs)
    with CallDeadline(0.02) as deadline:
        deadline.watch(early)
        assert early.recv(1) == b""
        deadline.watch(late)
        assert late.recv(1) == b""


def test_the_deadline_keeps_no_descriptor_after_the_call(pairs: Pairs) -> None:
    """The watched duplicates are closed when the call ends: closing ours closes the
    connection (the peer reads EOF), so nothing of the call was left open."""
    ours, theirs = _pair(pairs)
    with CallDeadline(LONG_SECONDS) as deadline:
        deadline.watch(ours)
    ours.close()
    assert theirs.recv(1) == b""


def test_calls_share_one_watchdog_thread() -> None:
    """Many calls through the client, one watchdog thread in all (not a thread per call)."""
    with FakeSMSPartner(api_key="watchdog-key") as fake, requests.Session() as session:
        fake.add_subaccount("sub-w", Decimal("0"))
        client = SMSPartnerClient(api_key="watchdog-key", base_url=fake.base_url, session=session)
        for _ in range(20):
            client.add_credit("sub-w", Decimal("1"))
        names = [thread.name for thread in threading.enumerate()]
    assert names.count("call-deadlines") == 1
