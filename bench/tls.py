"""Slack over HTTPS, as in production, against plain HTTP: what each Slack call costs.

For each Slack client (bench/slack_client.py: `stock` slack_sdk, `pooled` bot/slack/web.py)
and each transport, a fresh app and a fresh FakeSlack (kept-alive HTTP/1.1 as Slack's
servers; over HTTPS with a certificate from a CA made for this run). The app trusts that
CA the normal way: SSL_CERT_FILE names a bundle of the system's CAs plus it, so building a
default context costs what it costs in production (loading ~150 CAs). Each app gets
`/credit` commands at a steady rate it keeps up with; measured are the server's CPU per
command (until its cards are all posted) and the time from sending a command to FakeSlack
receiving its card.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from bench.fakes import ThrowawayTLS, TimedSlack
from bench.load import LoadClient, command_body, sign_all
from bench.processes import start_credit_bot
from bench.report import Row, percentile, process_cpu_seconds
from tests.e2e import BOT_TOKEN, SIGNING_SECRET
from tests.fakes.smspartner import FakeSMSPartner

COMMANDS = 150
EVERY_SECONDS = 0.05  # 20 commands/s: even a client paying 20 ms a call keeps up
CLIENTS = ("stock", "pooled")
TRANSPORTS = ("http", "https")
SYSTEM_CAS = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


@dataclass
class Cell:
    """One client on one transport."""

    client: str
    transport: str
    commands: int = 0
    slack_calls: int = 0
    cpu_seconds: float = 0.0
    command_to_card: list[float] = field(default_factory=list)

    @property
    def cpu_ms_per_command(self) -> float:
        return 1000 * self.cpu_seconds / self.commands

    @property
    def calls_per_command(self) -> float:
        return self.slack_calls / self.commands


def trust_bundle(tls: ThrowawayTLS, directory: Path) -> Path:
    """The system's CAs and the run's CA in one file, for SSL_CERT_FILE."""
    bundle = directory / "ca-bundle.pem"
    system = SYSTEM_CAS.read_bytes() if SYSTEM_CAS.exists() else b""
    bundle.write_bytes(system + b"\n" + tls.ca_file.read_bytes())
    return bundle


def measure_cell(
    cell: Cell,
    *,
    tls: ThrowawayTLS,
    bundle: Path,
    smspartner: FakeSMSPartner,
    load: LoadClient,
    workdir: Path,
) -> Cell:
    context = tls.server_context if cell.transport == "https" else None
    tokens = [f"tls-{cell.client}-{cell.transport}-{i:04d}" for i in range(COMMANDS)]
    # Before the app starts: it reads SMS Partner's sub-account list before a card and
    # refuses a sub-account the list it read did not have.
    for token in tokens:
        smspartner.add_subaccount(token)
    with TimedSlack(bot_token=BOT_TOKEN, ssl_context=context) as slack:
        app = start_credit_bot(
            slack=slack,
            smspartner=smspartner,
            workdir=workdir / f"{cell.client}-{cell.transport}",
            slack_client=cell.client,
            SSL_CERT_FILE=str(bundle),
        )
        try:
            assert app.process is not None
            sender = app.sender(slack)
            bodies = [
                command_body(
                    sender.command_fields(f"add {token} 10", user_id="UREQ", channel_id="CFIN")
                )
                for token in tokens
            ]
            batch = sign_all(bodies, SIGNING_SECRET)
            calls_before = len(slack.calls)
            cpu_before = process_cpu_seconds(app.process.pid)
            result = load.run(app.base_url, batch, 1, every_seconds=EVERY_SECONDS)
            slack.wait_for(lambda fake: len(fake.card_at) >= len(tokens), timeout=120)
            settle_calls(slack)
            cell.cpu_seconds = process_cpu_seconds(app.process.pid) - cpu_before
            cell.slack_calls = len(slack.calls) - calls_before
            cell.commands = len(tokens)
            cell.command_to_card = [
                slack.card_at[token] - result.sent_at[index] for index, token in enumerate(tokens)
            ]
        finally:
            app.stop()
    return cell


def settle_calls(slack: TimedSlack, quiet_seconds: float = 0.5) -> None:
    """Until FakeSlack has heard nothing for `quiet_seconds` (late ephemerals, updates)."""
    heard = -1
    while heard != len(slack.calls):
        heard = len(slack.calls)
        try:
            slack.wait_for(lambda fake: len(fake.calls) > heard, timeout=quiet_seconds)  # noqa: B023
        except AssertionError:  # quiet for that long
            return


def measure_transports(
    *, tls: ThrowawayTLS, smspartner: FakeSMSPartner, load: LoadClient, workdir: Path
) -> list[Cell]:
    bundle = trust_bundle(tls, workdir)
    return [
        measure_cell(
            Cell(client, transport),
            tls=tls,
            bundle=bundle,
            smspartner=smspartner,
            load=load,
            workdir=workdir,
        )
        for client in CLIENTS
        for transport in TRANSPORTS
    ]


def tls_rows(cells: list[Cell]) -> list[Row]:
    """Per client: CPU per command on each transport, what HTTPS adds per Slack call, and
    command → card p50 / p99 on each transport. Values go in the credit-bot column."""
    rows: list[Row] = []
    by = {(cell.client, cell.transport): cell for cell in cells}
    for client in CLIENTS:
        http, https = by[(client, "http")], by[(client, "https")]
        for cell in (http, https):
            rows.append(
                Row(
                    f"{client} client, Slack over {cell.transport}: server CPU per `/credit` "
                    f"({cell.calls_per_command:.2f} Slack calls each)",
                    "ms",
                    cell.cpu_ms_per_command,
                )
            )
        extra = (https.cpu_ms_per_command - http.cpu_ms_per_command) / max(
            https.calls_per_command, 1e-9
        )
        target = ""
        if client == "pooled":
            target = f"{'met' if extra <= 0.5 else '**missed**'}: ≤ 0.5 ms more than over HTTP"
        rows.append(
            Row(f"{client} client: CPU HTTPS adds per Slack call", "ms", extra, target=target)
        )
        for cell in (http, https):
            for q in (50, 99):
                rows.append(
                    Row(
                        f"{client} client, Slack over {cell.transport}: command → card p{q}",
                        "ms",
                        percentile(cell.command_to_card, q) * 1000,
                    )
                )
    return rows
