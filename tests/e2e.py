"""Run the real app (`python -m bot run --http`) as a process against the loopback fakes."""

from __future__ import annotations

import json
import os
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bot.slack.blocks import CONFIRM_ACTION_ID
from bot.texts import Texts
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-e2e-bot-token-0123456789"
API_KEY = "e2e-smspartner-api-key-0123456789"
STARTUP_SECONDS = 20.0
# The end-to-end suites run once per language (CREDIT_LANGUAGE), through a module fixture.
LANGUAGES = ("en", "fr")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_env(
    *, slack: FakeSlack, smspartner: FakeSMSPartner, database_url: str, **overrides: str
) -> dict[str, str]:
    """The environment of an app process wired to the fakes; overrides win."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "SMSPARTNER_", "CREDIT_", "DATABASE_URL"))
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        SMSPARTNER_API_KEY=API_KEY,
        SMSPARTNER_BASE_URL=smspartner.base_url,
        SMSPARTNER_TIMEOUT_SECONDS="2",
        DATABASE_URL=database_url,
        CREDIT_APPROVERS="UAPP,UAPP2",
        SWEEP_INTERVAL_SECONDS="0.2",
    )
    env.update(overrides)
    return env


@dataclass
class AppProcess:
    """One running app; `logs()` is everything it wrote to stderr."""

    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Runs the app through another program, e.g. `unshare --pid --fork` for a new pid space.
    command_prefix: tuple[str, ...] = ()
    # The module run with `python -m`: e.g. tests.skewed_clock, a launcher that shifts time.
    module: str = "bot"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    def sender(self, slack: FakeSlack) -> SlackSender:
        return SlackSender(self.events_url, SIGNING_SECRET, response_url_factory=slack.response_url)

    def start(self) -> AppProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"app-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *self.command_prefix,
                    sys.executable,
                    "-m",
                    self.module,
                    "run",
                    "--http",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                cwd=self.workdir,  # no stray .env is read
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"app exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"app not ready after {STARTUP_SECONDS} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self) -> int:
        """SIGKILL, as a crash would, and reap it: an unreaped child still answers
        `kill(pid, 0)`, so a restarted app would take the dead one for alive."""
        assert self.process is not None
        self.process.kill()
        return self.process.wait(timeout=30)

    def health(self) -> int:
        """The HTTP status of GET /healthz (0 when nothing answers)."""
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code
        except requests.ConnectionError:
            return 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- what the app writes, in its language ---------------------------------------------------


def shown(text: str) -> str:
    """`text` as it appears inside `json.dumps` of a message (non-ASCII escaped), for
    `card_now`'s predicates and `ephemeral_to`'s answers."""
    return json.dumps(text)[1:-1]


def lead(texts: Texts, message_id: str) -> str:
    """The fixed words a message starts with, before its first value (JSON-escaped)."""
    return shown(
        next(literal for literal, *_ in string.Formatter().parse(texts.messages[message_id]))
    )


def tail(texts: Texts, message_id: str) -> str:
    """The fixed words a message ends with, after its last value (JSON-escaped)."""
    pieces = list(string.Formatter().parse(texts.messages[message_id]))
    return shown(pieces[-1][0] if pieces[-1][1] is None else "")


# -- reading what the app sent to Slack -----------------------------------------------------


def cards_about(slack: FakeSlack, token: str) -> list[dict[str, Any]]:
    return [c.args for c in slack.calls_to("chat.postMessage") if token in json.dumps(c.args)]


def card_posted(slack: FakeSlack, token: str, already: int = 0) -> dict[str, Any]:
    """Wait for a new confirmation card about `token`; return its chat.postMessage args."""
    slack.wait_for(lambda fake: len(cards_about(fake, token)) > already)
    return cards_about(slack, token)[-1]


def request_id_of(card: dict[str, Any]) -> str:
    for block in card["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == CONFIRM_ACTION_ID:
                return str(element["value"])
    raise AssertionError(f"no Confirm button in {card}")


def card_now(slack: FakeSlack, token: str, predicate: str, timeout: float = 5.0) -> dict[str, Any]:
    """Wait until the card about `token` shows `predicate`; return it as users see it."""

    def shows(fake: FakeSlack) -> bool:
        return any(
            token in json.dumps(m) and predicate in json.dumps(m) for m in fake.messages.values()
        )

    slack.wait_for(shows, timeout=timeout)
    return next(
        m for m in slack.messages.values() if token in json.dumps(m) and predicate in json.dumps(m)
    )


def ephemeral_to(slack: FakeSlack, response_url_fragment: str) -> list[str]:
    return [
        json.dumps(r.body)
        for r in slack.responses
        if r.body.get("response_type") == "ephemeral" and response_url_fragment in r.url_id
    ]


def open_request(sender: SlackSender, slack: FakeSlack, text: str, user: str = "UREQ") -> str:
    token = text.split()[1]
    already = len(cards_about(slack, token))
    response = sender.command(text, user_id=user)
    assert response.status_code == 200
    assert response.text == ""  # a valid command is acknowledged silently; the card follows
    return request_id_of(card_posted(slack, token, already))
