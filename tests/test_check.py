"""`credit-bot check`'s Slack checks in Socket Mode: the app token is asked too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.slack import FakeSlack

BOT_TOKEN = "xoxb-check-bot-token-0123456789"
APP_TOKEN = "xapp-check-app-token-0123456789"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        # apps.connections.open only hands out a URL; check never connects to it.
        fake.socket_mode_url = "ws://127.0.0.1:9/socket"
        yield fake


def _check(slack: FakeSlack, tmp_path: Path, app_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMSPARTNER_"))}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=app_token,
        SLACK_API_URL=slack.api_url,
        SMSPARTNER_API_KEY="check-smspartner-key-0123456789",
        SMSPARTNER_BASE_URL="http://127.0.0.1:9/v1",
        SMSPARTNER_TIMEOUT_SECONDS="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'check.db'}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1  # SMS Partner is a closed port here
    assert app_token not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.startswith("slack"))


def test_socket_mode_check_asks_for_a_connection_with_the_app_token(
    slack: FakeSlack, tmp_path: Path
) -> None:
    """Both Slack tokens accepted: two ok lines, and apps.connections.open was called."""
    lines = _check(slack, tmp_path, APP_TOKEN)
    assert lines["slack"].startswith("ok (auth.test: team Credit Bot Test")
    assert lines["slack app token"].startswith("ok (apps.connections.open")
    assert slack.calls_to("apps.connections.open")


def test_refused_app_token_is_a_failed_check(slack: FakeSlack, tmp_path: Path) -> None:
    """An app token Slack does not know: its line fails with Slack's code and the variable."""
    lines = _check(slack, tmp_path, "xapp-someone-elses-token-000")
    assert lines["slack"].startswith("ok")
    assert lines["slack app token"].startswith("FAILED")
    assert "SLACK_APP_TOKEN" in lines["slack app token"]
    assert "invalid_auth" in lines["slack app token"]
