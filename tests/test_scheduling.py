"""When card work runs: after the transfers waiting to be sent, and "Sending…" only later."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.slack.scheduling import AcksFirst, Batch, Later, Priorities, SendsFirst


def test_a_card_waits_while_a_click_waits_to_be_sent() -> None:
    """Accepted, not yet sending: a card's turn waits; once it is sending, the turn comes."""
    gate = SendsFirst(patience_seconds=30)
    run = gate.accepted()
    card_drawn = threading.Event()

    def card() -> None:
        gate.wait_turn(time.monotonic())
        card_drawn.set()

    sending = threading.Event()
    may_finish = threading.Event()

    def transfer() -> None:
        assert not card_drawn.wait(0.2)  # the click still waits to be sent: no card yet
        gate.started()
        sending.set()
        may_finish.wait()  # SMS Partner slow: the card need not wait for its answer

    with ThreadPoolExecutor(2) as pool:
        pool.submit(card)
        done = pool.submit(run, transfer)
        assert sending.wait(5)
        assert card_drawn.wait(5)
        may_finish.set()
        done.result()
    assert gate.waiting == 0


def test_work_that_never_sends_stops_counting_when_it_ends() -> None:
    """A refused click never reaches `started`: its end releases the cards all the same."""
    gate = SendsFirst(patience_seconds=30)
    run = gate.accepted()
    assert gate.waiting == 1
    assert run(lambda value: value * 2, 21) == 42
    assert gate.waiting == 0
    gate.started()  # outside any click's work: nothing to release, nothing breaks
    assert gate.waiting == 0


def test_a_card_waits_no_longer_than_its_patience() -> None:
    """Clicks queued behind hung transfers never send: a card goes ahead after patience."""
    gate = SendsFirst(patience_seconds=0.2)
    gate.accepted()  # never run: stays waiting
    asked = time.monotonic()
    gate.wait_turn(asked)
    assert time.monotonic() - asked >= 0.2
    assert gate.waiting == 1


def test_later_runs_work_in_order_of_due_time_not_of_asking() -> None:
    ran: list[str] = []
    all_ran = threading.Event()

    def note(name: str) -> None:
        ran.append(name)
        if len(ran) == 3:
            all_ran.set()

    with ThreadPoolExecutor(1) as pool:
        later = Later(pool)
        later.call_after(0.4, lambda: note("last"))
        later.call_after(0.2, lambda: note("second"))
        later.call_after(0, lambda: note("now"))
        assert all_ran.wait(5)
        later.close()
    assert ran == ["now", "second", "last"]


def test_later_drops_what_is_not_due_when_closed() -> None:
    ran = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        later = Later(pool)
        later.call_after(0.3, ran.set)
        later.close()
        later.call_after(0.01, ran.set)  # after close: dropped too
        assert not ran.wait(0.6)


def test_a_batch_writes_what_came_meanwhile_together_and_the_last_value_wins() -> None:
    writes: list[dict[str, str]] = []
    written = threading.Event()

    def write(values: dict[str, str]) -> None:
        writes.append(values)
        written.set()

    with ThreadPoolExecutor(1) as pool:
        later = Later(pool)
        batch = Batch[str, str](later, seconds=0.2, write=write)
        batch.add("cr_1", "executing")
        batch.add("cr_2", "succeeded")
        batch.add("cr_1", "failed")
        assert written.wait(5)
        batch.flush()  # nothing left: no empty write
        later.close()
    assert writes == [{"cr_1": "failed", "cr_2": "succeeded"}]


def test_a_batch_flushed_at_shutdown_writes_what_is_not_due_yet() -> None:
    writes: list[dict[str, int]] = []
    with ThreadPoolExecutor(1) as pool:
        later = Later(pool)
        batch = Batch[str, int](later, seconds=60, write=writes.append)
        batch.add("cr_1", 1)
        later.close()
        batch.flush()
    assert writes == [{"cr_1": 1}]


def test_card_work_waits_for_the_acks_being_answered() -> None:
    """While a request is being answered the card waits; when it is answered, it goes."""
    priorities = Priorities.with_patience(30)
    drawn = threading.Event()

    def card(asked_at: float) -> None:
        priorities.wait_turn(asked_at)
        drawn.set()

    with ThreadPoolExecutor(1) as pool:
        with priorities.acks.answering():
            pool.submit(card, time.monotonic())
            assert not drawn.wait(0.2)
        assert drawn.wait(5)
    assert priorities.acks.waiting == 0


def test_an_ack_that_raises_still_stops_counting() -> None:
    priorities = Priorities.with_patience(30)
    try:
        with priorities.acks.answering():
            raise ValueError("a listener's bug")
    except ValueError:
        pass
    assert priorities.acks.waiting == 0


def test_every_waiting_card_goes_once_the_acks_are_answered() -> None:
    """Waiters are woken one by one, each passing the turn on: all of them go long before
    their patience is out."""
    priorities = Priorities.with_patience(30)
    waiting = 6
    with ThreadPoolExecutor(waiting) as pool:
        with priorities.acks.answering():
            asked = time.monotonic()
            done = [pool.submit(priorities.wait_turn, asked) for _ in range(waiting)]
            time.sleep(0.1)  # all of them waiting now
            assert not any(future.done() for future in done)
        for future in done:
            future.result(timeout=5)


def test_card_work_waits_for_a_quiet_moment_between_acks() -> None:
    """Acks one right after another keep card work back; once none came for the quiet
    time, it goes."""
    acks = AcksFirst(patience_seconds=30, quiet_seconds=0.3)
    with acks.answering():
        pass
    answered = time.monotonic()
    acks.wait_turn(answered)
    assert time.monotonic() - answered >= 0.3


def test_later_drops_work_no_longer_needed_when_it_falls_due() -> None:
    ran: list[str] = []
    done = threading.Event()
    needed = {"sending": True}
    with ThreadPoolExecutor(1) as pool:
        later = Later(pool)
        later.call_after(0.2, lambda: ran.append("sending"), unless=lambda: not needed["sending"])
        later.call_after(0.3, done.set)
        needed["sending"] = False  # the outcome came first
        assert done.wait(5)
        later.close()
    assert ran == []
