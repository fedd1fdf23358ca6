"""Socket Mode end to end: `credit-bot run` against a loopback Socket Mode server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.slack.blocks import CONFIRM_ACTION_ID
from tests.e2e import API_KEY, BOT_TOKEN, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.fakes.socket_mode import FakeSocketMode
from tests.slack_requests import SlackSender

APP_TOKEN = "xapp-1-socket-mode-test-token"


@pytest.fixture
def socket_mode() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        yield fake


@pytest.fixture
def slack(socket_mode: FakeSocketMode) -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        fake.socket_mode_url = socket_mode.url
        yield fake


def test_command_and_click_over_socket_mode(
    socket_mode: FakeSocketMode, slack: FakeSlack, tmp_path: Path
) -> None:
    """Socket Mode: envelopes are acked, the card is posted, Confirm moves the credit once,
    and SIGTERM ends the process cleanly."""
    with FakeSMSPartner(api_key=API_KEY) as smspartner:
        smspartner.add_subaccount("sub-socket", Decimal("1.000"))
        env = app_env(
            slack=slack,
            smspartner=smspartner,
            database_url=f"sqlite:///{tmp_path / 'socket.db'}",
            SLACK_APP_TOKEN=APP_TOKEN,
        )
        del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
        log = (tmp_path / "app.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            socket_mode.wait_connected()
            # Only the payload builders of the HTTP sender are used: nothing is POSTed.
            builder = SlackSender("http://unused.invalid", "unused")
            fields = builder.command_fields("add sub-socket 2,50")
            command = socket_mode.send("slash_commands", fields)
            assert socket_mode.wait_ack(command).payload in (None, {})
            slack.wait_for(lambda f: bool(f.calls_to("chat.postMessage")))
            card = slack.calls_to("chat.postMessage")[0].args
            request_id = next(
                e["value"]
                for b in card["blocks"]
                for e in b.get("elements", [])
                if e.get("action_id") == CONFIRM_ACTION_ID
            )
            click = builder.click_payload(
                CONFIRM_ACTION_ID,
                request_id,
                user_id="UAPP",
                response_url=slack.response_url("socket-click"),
            )
            socket_mode.wait_ack(socket_mode.send("interactive", click))
            slack.wait_for(lambda f: any("Added" in json.dumps(m) for m in f.messages.values()))
            assert len(smspartner.transfers) == 1
            assert smspartner.subaccounts["sub-socket"] == Decimal("3.500")

            # Bad input over Socket Mode: the ack itself carries the ephemeral refusal.
            refused = socket_mode.wait_ack(
                socket_mode.send("slash_commands", builder.command_fields("add sub-socket 0"))
            )
            assert refused.payload is not None
            assert refused.payload["response_type"] == "ephemeral"
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
            log.close()
        logs = (tmp_path / "app.log").read_text()
        assert code == 0, logs
        assert "socket_mode.connected" in logs
        for secret in (APP_TOKEN, BOT_TOKEN, API_KEY):
            assert secret not in logs
