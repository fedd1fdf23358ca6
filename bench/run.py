"""Benchmark of issue 5: credit-bot's ack latency against a bare Bolt app (SPEC.md §5).

Run from the repository root, in one command (about 1 to 2 minutes):

    .venv/bin/python -m bench.run

(`--client requests` times with one requests.Session per worker instead of a bare
http.client connection; see bench/load.py for why that is not the default.)

It starts FakeSlack (kept-alive HTTP/1.1, as Slack's servers) and a FakeSMSPartner in
this process, and three servers, all on waitress with 16 threads: the real app
(`python -m bot run --http`, fresh SQLite file, approvers UAPP and UAPP2, the pooled
Slack client of bot/slack/web.py) and bench/bare_app.py (a Bolt app whose handlers only
`ack()`)
twice: with Bolt's defaults (process_before_response=False: the ack runs in Bolt's
5-thread pool and the request thread polls for it every 10 ms) and with
process_before_response=True, as our app runs.

Each figure is measured on the three servers back to back (the order turns from one
figure to the next), after the app's background work of the previous one has settled,
so a machine shared with other work treats them alike:
- signed `/credit add <token> 10` commands at concurrency 1, 20 and 100: response time
  p50/p99 and commands/s; then at a steady 50 commands/s; and the server's CPU per command,
  its background work (card, database) included;
- Confirm clicks, each on its own pending request, byte for byte the same for all three;
  for our app also the time from sending the click to SMS Partner receiving the transfer,
  in the burst and at a steady one click every 50 ms;
- our app only: the ack of clicks sent while SMS Partner holds transfers for 10 s.
Peak RSS is VmHWM from /proc/<pid>/status at the end. Then bench/tls.py: the app with
slack_sdk's stock client and with the pooled one, Slack over plain HTTP and over HTTPS
(`--tls-only` runs just that part). The table is printed and written to
bench/results/latest.md. Nothing is asserted: targets are reported as met or missed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.fakes import TOKEN_IN_CARD, TimedSlack, TimedSMSPartner, throwaway_tls
from bench.load import CLIENTS, LoadClient, LoadResult, Signed, click_body, command_body, sign_all
from bench.processes import start_bare_bolt, start_credit_bot
from bench.report import (
    Row,
    describe_machine,
    machine_busy_seconds,
    own_cpu_seconds,
    peak_rss_mb,
    percentile,
    process_cpu_seconds,
    render,
)
from bench.tls import COMMANDS as TLS_COMMANDS
from bench.tls import EVERY_SECONDS as TLS_EVERY_SECONDS
from bench.tls import Cell, measure_transports, tls_rows
from bot.slack.app import TRANSFER_THREADS
from tests.e2e import API_KEY, BOT_TOKEN, SIGNING_SECRET, AppProcess
from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackSender

COMMAND_LEVELS = (1, 20, 100)
COMMANDS_PER_LEVEL = 400
STEADY_COMMANDS = 300
STEADY_COMMANDS_PER_SECOND = 50
CLICK_LEVELS = (1, 20)
CLICKS_PER_LEVEL = 300
PACED_CLICKS = 100
PACED_EVERY_SECONDS = 0.05
# Transfers already held at SMS Partner before the delayed clicks are timed.
HELD_CLICKS = 40
DELAYED_CLICKS = 60
DELAYED_CONCURRENCY = 20
API_DELAY_SECONDS = 10.0
# Issue 13's targets for server CPU on loopback HTTP.
COMMAND_CPU_TARGET_MS = 1.2
CLICK_CPU_TARGET_MS = 3.0
AMOUNT = "10"
CHANNEL = "CFIN"
REQUESTER = "UREQ"
APPROVER = "UAPP"
SETUP_CONCURRENCY = 20
SETTLE_TIMEOUT_SECONDS = 120.0
RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"

APP, BARE_DEFAULT, BARE_PBR = "credit-bot", "bare defaults", "bare pbr"


@dataclass
class Figures:
    """Everything measured on one server process."""

    commands: dict[int, LoadResult] = field(default_factory=dict)
    steady_commands: LoadResult | None = None
    # Server CPU over the closed-loop command levels, background work included.
    command_cpu_seconds: float = 0.0
    clicks: dict[int, LoadResult] = field(default_factory=dict)
    # Server CPU over the click levels, the transfers and card updates they start included.
    click_cpu_seconds: float = 0.0
    click_to_api: dict[str, list[float]] = field(default_factory=dict)  # by phase name
    delayed: LoadResult | None = None
    held_during_delayed: tuple[int, int] = (0, 0)  # transfers held at start, at end
    rss_mb: float = float("nan")
    cpu_seconds: float = float("nan")

    def results(self) -> list[LoadResult]:
        optional = [r for r in (self.steady_commands, self.delayed) if r is not None]
        return [*self.commands.values(), *self.clicks.values(), *optional]

    @property
    def cpu_ms_per_command(self) -> float:
        sent = sum(len(result.latencies) for result in self.commands.values())
        return 1000 * self.command_cpu_seconds / sent if sent else float("nan")

    @property
    def cpu_ms_per_click(self) -> float:
        sent = sum(len(result.latencies) for result in self.clicks.values())
        return 1000 * self.click_cpu_seconds / sent if sent else float("nan")


@dataclass
class Rig:
    """The fakes, the load generator and the three servers under test."""

    slack: FakeSlack
    smspartner: TimedSMSPartner
    client: LoadClient
    servers: dict[str, AppProcess]
    figures: dict[str, Figures]

    @property
    def app(self) -> AppProcess:
        return self.servers[APP]

    def in_turn(self, turn: int) -> list[tuple[str, AppProcess]]:
        """The servers, starting with a different one each turn."""
        items = list(self.servers.items())
        shift = turn % len(items)
        return items[shift:] + items[:shift]


@dataclass(frozen=True)
class Card:
    """A confirmation card FakeSlack received: the request behind it and the message."""

    token: str
    request_id: str
    message: dict[str, Any]


# -- waiting for the app's background work ------------------------------------------------


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll (outside the fakes' locks, which their handlers need) until `condition`."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.02)


def settle(rig: Rig, quiet_seconds: float = 0.5) -> None:
    """Wait until neither fake has heard anything for `quiet_seconds`: the app's lazy work
    (cards, transfers, card updates) must not run into the next measurement."""
    last = (-1, -1)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds:
        now = (len(rig.slack.calls), rig.smspartner.received_count())
        if now != last:
            last, quiet_since = now, time.monotonic()
        time.sleep(0.05)


def cards_posted(slack: FakeSlack, prefix: str) -> dict[str, Card]:
    """The confirmation cards posted so far for sub-accounts starting with `prefix`."""
    cards = {}
    for call in slack.calls_to("chat.postMessage"):
        message = call.response.get("message") or {}
        found = TOKEN_IN_CARD.search(str(message.get("text", "")))
        if found and found.group(1).startswith(prefix):
            cards[found.group(1)] = Card(found.group(1), _confirm_value(message), message)
    return cards


def _confirm_value(message: dict[str, Any]) -> str:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and element.get("action_id") == "credit_confirm":
                return str(element["value"])
    raise ValueError("card without a Confirm button")


# -- building requests --------------------------------------------------------------------


def signed(bodies: list[bytes]) -> list[Signed]:
    return sign_all(bodies, SIGNING_SECRET)


def command_bodies(sender: SlackSender, tokens: list[str]) -> list[bytes]:
    return [
        command_body(
            sender.command_fields(f"add {token} {AMOUNT}", user_id=REQUESTER, channel_id=CHANNEL)
        )
        for token in tokens
    ]


def click_bodies(sender: SlackSender, slack: FakeSlack, cards: list[Card]) -> list[bytes]:
    """Confirm clicks by an approver on these cards, as Slack sends them (the message as
    the user saw it, a response_url bound to it)."""
    return [
        click_body(
            sender.click_payload(
                "credit_confirm",
                card.request_id,
                user_id=APPROVER,
                channel_id=CHANNEL,
                message=card.message,
                response_url=slack.response_url(channel=CHANNEL, message_ts=card.message["ts"]),
            )
        )
        for card in cards
    ]


def subaccount_tokens() -> list[str]:
    """Every sub-account the measurements use, in the order they use them."""
    tokens = [f"bench-cmd-c{level}" for level in COMMAND_LEVELS] + ["bench-steady"]
    prefixes = [(f"bench-click-c{level}-", CLICKS_PER_LEVEL) for level in CLICK_LEVELS]
    prefixes += [
        ("bench-paced-", PACED_CLICKS),
        ("bench-held-", HELD_CLICKS),
        ("bench-delayed-", DELAYED_CLICKS),
    ]
    for prefix, n in prefixes:
        tokens += [f"{prefix}{i:04d}" for i in range(n)]
    return tokens


def create_subaccounts(smspartner: TimedSMSPartner) -> None:
    """Every benchmark sub-account, made in the fake before any app's first command: the
    app reads SMS Partner's sub-account list before a card and re-reads it at most every
    few seconds, so a sub-account made later is refused and its card never comes."""
    for token in subaccount_tokens():
        smspartner.add_subaccount(token)


def open_requests(rig: Rig, prefix: str, n: int) -> list[Card]:
    """n pending requests on the app, each on its own sub-account (made by
    `create_subaccounts`), opened by commands; their cards once all are posted. Not timed."""
    tokens = [f"{prefix}{i:04d}" for i in range(n)]
    bodies = command_bodies(rig.app.sender(rig.slack), tokens)
    rig.client.run(rig.app.base_url, signed(bodies), SETUP_CONCURRENCY)
    try:
        wait_until(lambda: len(cards_posted(rig.slack, prefix)) >= n, f"{n} cards {prefix}*")
    except RuntimeError as error:
        warnings = [line for line in rig.app.logs().splitlines() if '"level": "info"' not in line]
        raise RuntimeError(
            f"{error}; the app's last warnings:\n" + "\n".join(warnings[-20:])
        ) from error
    cards = cards_posted(rig.slack, prefix)
    return [cards[token] for token in tokens]


# -- measuring ----------------------------------------------------------------------------


def measure_commands(rig: Rig) -> None:
    """/credit at each concurrency level, on each server in turn; and the server's CPU for
    them, its background work included (it runs until `settle` returns)."""
    sender = rig.app.sender(rig.slack)
    for turn, level in enumerate(COMMAND_LEVELS):
        for name, server in rig.in_turn(turn):
            assert server.process is not None
            tokens = [f"bench-cmd-c{level}"] * COMMANDS_PER_LEVEL
            batch = signed(command_bodies(sender, tokens))  # fresh timestamp each time
            cpu_before = process_cpu_seconds(server.process.pid)
            rig.figures[name].commands[level] = rig.client.run(server.base_url, batch, level)
            settle(rig)
            cpu = process_cpu_seconds(server.process.pid) - cpu_before
            rig.figures[name].command_cpu_seconds += cpu


def measure_steady_commands(rig: Rig) -> None:
    """/credit at a steady rate every server keeps up with: the ack's own latency, apart
    from the queueing that a closed loop at full speed adds."""
    sender = rig.app.sender(rig.slack)
    for name, server in rig.in_turn(len(COMMAND_LEVELS)):
        batch = signed(command_bodies(sender, ["bench-steady"] * STEADY_COMMANDS))
        rig.figures[name].steady_commands = rig.client.run(
            server.base_url, batch, 1, every_seconds=1 / STEADY_COMMANDS_PER_SECOND
        )
        settle(rig)


def measure_clicks(rig: Rig) -> None:
    """Confirm clicks at each level on each server in turn, the same bytes for all; on
    the app also click sent -> transfer received by SMS Partner, for the whole burst."""
    sender = rig.app.sender(rig.slack)
    for turn, level in enumerate(CLICK_LEVELS, start=len(COMMAND_LEVELS) + 1):
        cards = open_requests(rig, f"bench-click-c{level}-", CLICKS_PER_LEVEL)
        settle(rig)
        bodies = click_bodies(sender, rig.slack, cards)
        for name, server in rig.in_turn(turn):
            assert server.process is not None
            cpu_before = process_cpu_seconds(server.process.pid)
            result = rig.client.run(server.base_url, signed(bodies), level)
            rig.figures[name].clicks[level] = result
            if name == APP:
                delays = transfer_delays(rig, cards, result)
                rig.figures[APP].click_to_api[f"burst of {len(cards)}, concurrency {level}"] = (
                    delays
                )
            settle(rig)
            cpu = process_cpu_seconds(server.process.pid) - cpu_before
            rig.figures[name].click_cpu_seconds += cpu


def measure_paced_clicks(rig: Rig) -> None:
    """The app's click -> SMS Partner delay when clicks come at a steady rate the app can
    keep up with: the pipeline's own latency, without a burst's backlog."""
    cards = open_requests(rig, "bench-paced-", PACED_CLICKS)
    settle(rig)
    batch = signed(click_bodies(rig.app.sender(rig.slack), rig.slack, cards))
    result = rig.client.run(rig.app.base_url, batch, 1, every_seconds=PACED_EVERY_SECONDS)
    phase = f"one click every {PACED_EVERY_SECONDS * 1000:.0f} ms"
    rig.figures[APP].click_to_api[phase] = transfer_delays(rig, cards, result)
    settle(rig)


def transfer_delays(rig: Rig, cards: list[Card], result: LoadResult) -> list[float]:
    """For each click, from its sending to SMS Partner receiving its transfer."""
    tokens = [card.token for card in cards]
    received = rig.smspartner.received_at
    wait_until(lambda: all(t in received for t in tokens), f"{len(tokens)} transfers")
    return [received[token] - result.sent_at[index] for index, token in enumerate(tokens)]


def measure_delayed_clicks(rig: Rig) -> None:
    """With SMS Partner answering after 10 s: first get HELD_CLICKS transfers stuck there,
    then time DELAYED_CLICKS more clicks. An ack that waited for the API would take 10 s.
    HELD fills the app's transfer pool and queues more behind it on purpose: acks must not
    queue behind transfers either, nor wait for a transfer thread."""
    held = open_requests(rig, "bench-held-", HELD_CLICKS)
    timed = open_requests(rig, "bench-delayed-", DELAYED_CLICKS)
    settle(rig)
    sender = rig.app.sender(rig.slack)
    tokens = [card.token for card in held + timed]
    received = rig.smspartner.received_at

    def held_now() -> int:
        return sum(1 for token in tokens if token in received)

    rig.smspartner.delay_seconds = API_DELAY_SECONDS
    try:
        batch = signed(click_bodies(sender, rig.slack, held))
        rig.client.run(rig.app.base_url, batch, DELAYED_CONCURRENCY)
        # The pool holds TRANSFER_THREADS at SMS Partner; the rest wait for a thread.
        stuck = min(len(held), TRANSFER_THREADS)
        wait_until(lambda: held_now() >= stuck, "held transfers")
        before = held_now()
        batch = signed(click_bodies(sender, rig.slack, timed))
        rig.figures[APP].delayed = rig.client.run(rig.app.base_url, batch, DELAYED_CONCURRENCY)
        rig.figures[APP].held_during_delayed = (before, held_now())
    finally:
        # Answer the held transfers now rather than in 10 s: the acks are what is measured.
        rig.smspartner.delay_seconds = 0.0
        rig.smspartner.release()
    wait_until(lambda: held_now() == len(tokens), "delayed transfers")
    settle(rig)


def record_usage(rig: Rig) -> None:
    """Peak RSS and CPU time of each server, read before it stops."""
    for name, server in rig.servers.items():
        assert server.process is not None
        rig.figures[name].rss_mb = peak_rss_mb(server.process.pid)
        rig.figures[name].cpu_seconds = process_cpu_seconds(server.process.pid)


def start_servers(rig: Rig, workdir: Path) -> None:
    """The app and the two bare apps, into `rig.servers` as each one is up."""
    rig.servers[APP] = start_credit_bot(
        slack=rig.slack, smspartner=rig.smspartner, workdir=workdir / "app"
    )
    for name, pbr in ((BARE_DEFAULT, False), (BARE_PBR, True)):
        rig.servers[name] = start_bare_bolt(
            slack=rig.slack, workdir=workdir / "bare", process_before_response=pbr
        )
    rig.figures = {name: Figures() for name in rig.servers}


# -- the table ----------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def _latencies(result: LoadResult | None) -> list[float]:
    return list(result.latencies.values()) if result else []


def _verdict(met: bool, text: str) -> str:
    return f"{'met' if met else '**missed**'}: {text}"


def _three(
    figures: dict[str, Figures], pick: Callable[[Figures], list[float]], q: float
) -> tuple[float, float, float]:
    app, default, pbr = (_ms(pick(figures[name]), q) for name in (APP, BARE_DEFAULT, BARE_PBR))
    return app, default, pbr


def ack_target(level: int, app_p99: float, bare_pbr_p99: float) -> str:
    """The issue's target, judged at concurrency 20 only."""
    if level != 20:
        return ""
    return _verdict(
        app_p99 <= 1.2 * bare_pbr_p99 and app_p99 < 100,
        f"≤ 1.2 x bare pbr ({1.2 * bare_pbr_p99:.1f} ms) and < 100 ms",
    )


def command_rows(figures: dict[str, Figures], level: int) -> list[Row]:
    def pick(f: Figures) -> list[float]:
        return _latencies(f.commands[level])

    p50, p99 = _three(figures, pick, 50), _three(figures, pick, 99)
    rows = [
        Row(f"`/credit` ack p50, concurrency {level}", "ms", *p50),
        Row(
            f"`/credit` ack p99, concurrency {level}",
            "ms",
            *p99,
            target=ack_target(level, p99[0], p99[2]),
        ),
    ]
    if level == max(COMMAND_LEVELS):  # where connections waitress did not accept show
        rows.append(
            Row(f"`/credit` ack max, concurrency {level}", "ms", *_three(figures, pick, 100))
        )
    per_second = (
        figures[name].commands[level].per_second for name in (APP, BARE_DEFAULT, BARE_PBR)
    )
    rows.append(Row(f"`/credit` commands/s, concurrency {level}", "/s", *per_second))
    return rows


def steady_rows(figures: dict[str, Figures]) -> list[Row]:
    def pick(f: Figures) -> list[float]:
        return _latencies(f.steady_commands)

    rate = STEADY_COMMANDS_PER_SECOND
    rows = [
        Row(f"`/credit` ack p{q}, steady {rate} commands/s", "ms", *_three(figures, pick, q))
        for q in (50, 99)
    ]
    app, *bare = (figures[name].cpu_ms_per_command for name in (APP, BARE_DEFAULT, BARE_PBR))
    target = _verdict(app <= COMMAND_CPU_TARGET_MS, f"≤ {COMMAND_CPU_TARGET_MS} ms")
    rows.append(
        Row("server CPU per `/credit`, background work included", "ms", app, *bare, target=target)
    )
    return rows


def click_cpu_rows(figures: dict[str, Figures]) -> list[Row]:
    app, *bare = (figures[name].cpu_ms_per_click for name in (APP, BARE_DEFAULT, BARE_PBR))
    target = _verdict(app <= CLICK_CPU_TARGET_MS, f"≤ {CLICK_CPU_TARGET_MS} ms")
    name = "server CPU per Confirm click, its transfer and card updates included"
    return [Row(name, "ms", app, *bare, target=target)]


def click_rows(figures: dict[str, Figures], level: int) -> list[Row]:
    def pick(f: Figures) -> list[float]:
        return _latencies(f.clicks[level])

    p50, p99 = _three(figures, pick, 50), _three(figures, pick, 99)
    return [
        Row(f"Confirm click ack p50, concurrency {level}", "ms", *p50),
        Row(
            f"Confirm click ack p99, concurrency {level}",
            "ms",
            *p99,
            target=ack_target(level, p99[0], p99[2]),
        ),
    ]


def transfer_rows(app: Figures) -> list[Row]:
    return [
        Row(f"click sent → SMS Partner receives it, p{q}: {phase}", "ms", _ms(delays, q))
        for phase, delays in app.click_to_api.items()
        for q in (50, 99)
    ]


def delay_rows(figures: dict[str, Figures]) -> list[Row]:
    """The delayed clicks, against the same concurrency without delay."""
    app = figures[APP]
    delayed = _latencies(app.delayed)
    level = DELAYED_CONCURRENCY
    undelayed_p99 = _ms(_latencies(app.clicks[level]), 99)
    slowest = max(delayed) * 1000 if delayed else float("nan")
    held_start, held_end = app.held_during_delayed
    bare = [_ms(_latencies(figures[name].clicks[level]), 99) for name in (BARE_DEFAULT, BARE_PBR)]
    return [
        Row(
            f"ack p99 with a {API_DELAY_SECONDS:.0f} s API delay, concurrency {level}",
            "ms",
            _ms(delayed, 99),
            *bare,
            target=f"without delay: {undelayed_p99:.1f} ms; transfers held at SMS Partner "
            f"while timed: {held_start} at the start, {held_end} at the end",
        ),
        Row(
            f"slowest ack with a {API_DELAY_SECONDS:.0f} s API delay ({len(delayed)} clicks)",
            "ms",
            slowest,
            target=_verdict(
                slowest < 1000,
                f"no ack waited for the API (one that did would take ≥ {API_DELAY_SECONDS:.0f} s)",
            ),
        ),
    ]


def build_rows(figures: dict[str, Figures]) -> list[Row]:
    rows: list[Row] = []
    for level in COMMAND_LEVELS:
        rows += command_rows(figures, level)
    rows += steady_rows(figures)
    for level in CLICK_LEVELS:
        rows += click_rows(figures, level)
    rows += click_cpu_rows(figures)
    rows += transfer_rows(figures[APP])
    rows += delay_rows(figures)
    rss = [figures[name].rss_mb for name in (APP, BARE_DEFAULT, BARE_PBR)]
    rows.append(Row("peak RSS (VmHWM)", "MB", *rss, target=_verdict(rss[0] < 100, "< 100 MB")))
    cpu = [figures[name].cpu_seconds for name in (APP, BARE_DEFAULT, BARE_PBR)]
    rows.append(Row("CPU time used by the server over the whole run", "s", *cpu))
    return rows


def notes(
    figures: dict[str, Figures], *, client: str, elapsed: float, others_cpu: float
) -> list[str]:
    """How to read the table, and anything that went wrong."""
    results = [result for f in figures.values() for result in f.results()]
    requests_sent = sum(len(result.latencies) for result in results)
    client_ms = 1000 * sum(r.client_cpu_seconds for r in results) / max(requests_sent, 1)
    lines = [
        f"{COMMANDS_PER_LEVEL} signed `/credit add <token> {AMOUNT}` per level and server; "
        f"{CLICKS_PER_LEVEL} Confirm clicks per level, each on its own pending request, the "
        "same bytes to all three servers. Every client worker has its own keep-alive connection; "
        "requests are signed before timing with a fresh timestamp per level. Latency: request "
        "sent → whole HTTP response, as the client sees it. Closed loop: each worker sends "
        "its next request when the previous one is answered, so every server runs flat out "
        "and its latency is about concurrency / throughput; the steady rows send one request "
        f"every {1000 / STEADY_COMMANDS_PER_SECOND:.0f} ms instead "
        f"({STEADY_COMMANDS} per server).",
        f"Delayed phase: SMS Partner holds every answer {API_DELAY_SECONDS:.0f} s; "
        f"{HELD_CLICKS} transfers are made to hang first, then {DELAYED_CLICKS} clicks are "
        f"timed ({HELD_CLICKS + DELAYED_CLICKS} transfers for the app's {TRANSFER_THREADS} "
        "transfer threads).",
        "Ratios are app / bare: above 1 the app is slower (latency) or, for commands/s, faster. "
        "The 1.2 x target is checked against bare Bolt with process_before_response, the mode "
        "our app runs in (Bolt's defaults add the 10 ms polling step to every ack).",
        f"Client: {client}, one keep-alive connection per worker. "
        "Same machine for everything: the fakes run in the bench process, the load generator "
        "in a process of its own (so the fakes' work for the app does not slow the client "
        f"timing it), all on the same cores as the servers. The client spent {client_ms:.2f} "
        "ms of CPU per timed request. CPU used meanwhile by processes outside this bench: "
        f"{others_cpu:.0f} s over {elapsed:.0f} s of run (a busy machine slows every figure).",
    ]
    for name, server_figures in figures.items():
        lines += _trouble(name, server_figures)
    return lines


def _trouble(name: str, figures: Figures) -> list[str]:
    """Requests not answered 200, and connections the server did not accept."""
    lines = []
    statuses = sum((result.statuses for result in figures.results()), start=Counter[str]())
    errors = sum(n for status, n in statuses.items() if status != "200")
    if errors:
        lines.append(f"{name}: {errors} request(s) not answered 200: {dict(statuses)}")
    refused = {
        level: result.refused_connections
        for level, result in figures.commands.items()
        if result.refused_connections
    }
    if refused:
        lines.append(
            f"{name}: client connections not accepted within 2 s, by concurrency: {refused}. "
            "waitress stops accepting at connection_limit (100 by default), which counts its "
            "listening socket and its trigger: at most 98 clients at once."
        )
    return lines


def tls_notes(cells: list[Cell]) -> list[str]:
    if not cells:
        return []
    return [
        f"Slack over HTTPS rows (bench/tls.py): per client and transport a fresh app and "
        f"FakeSlack, {TLS_COMMANDS} `/credit` at one every {TLS_EVERY_SECONDS * 1000:.0f} ms; "
        "CPU from the first command until the last card is posted and Slack goes quiet; "
        "'stock' is slack_sdk's WebClient as bot/slack/app.py built it (urllib, a new "
        "connection per call, over HTTPS a new default SSLContext per call), 'pooled' is "
        "bot/slack/web.py. The app trusts the run's CA through SSL_CERT_FILE (the system's "
        "CAs plus it). 'CPU HTTPS adds per Slack call' is the HTTPS minus HTTP CPU per "
        "command, divided by the Slack calls per command."
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=CLIENTS, default=CLIENTS[0], help="HTTP client")
    parser.add_argument("--tls-only", action="store_true", help="only Slack over HTTPS vs HTTP")
    args = parser.parse_args(argv)
    machine = describe_machine()
    started, busy_before, own_before = time.monotonic(), machine_busy_seconds(), own_cpu_seconds()
    with (
        tempfile.TemporaryDirectory(prefix="credit-bot-bench-") as tmp,
        TimedSlack(bot_token=BOT_TOKEN) as slack,
        TimedSMSPartner(api_key=API_KEY, main_balance=Decimal("100000000.000")) as smspartner,
        LoadClient(args.client) as client,
    ):
        rig = Rig(slack, smspartner, client, servers={}, figures={})
        if not args.tls_only:
            try:
                create_subaccounts(smspartner)
                start_servers(rig, Path(tmp))
                measure_commands(rig)
                measure_steady_commands(rig)
                measure_clicks(rig)
                measure_paced_clicks(rig)
                measure_delayed_clicks(rig)
                record_usage(rig)
            finally:
                for server in rig.servers.values():
                    server.stop()
        cells = measure_transports(
            tls=throwaway_tls(Path(tmp)), smspartner=smspartner, load=client, workdir=Path(tmp)
        )
    elapsed = time.monotonic() - started
    servers_cpu = sum(f.cpu_seconds for f in rig.figures.values())
    servers_cpu += sum(cell.cpu_seconds for cell in cells)
    ours = own_cpu_seconds() - own_before + servers_cpu + rig.client.cpu_seconds
    others = machine_busy_seconds() - busy_before - ours
    rows = [] if args.tls_only else build_rows(rig.figures)
    lines = (
        []
        if args.tls_only
        else notes(rig.figures, client=args.client, elapsed=elapsed, others_cpu=max(others, 0.0))
    )
    table = render(rows + tls_rows(cells), machine=machine, notes=lines + tls_notes(cells))
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = RESULTS.with_name("tls-only.md") if args.tls_only else RESULTS
    results.write_text(table, encoding="utf-8")
    print(f"(written to {results})")


if __name__ == "__main__":
    main()
