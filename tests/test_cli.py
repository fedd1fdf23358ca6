"""The `credit-bot` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from bot.domain import Action
from bot.store import Store

ENV = {
    "SLACK_BOT_TOKEN": "xoxb-cli-test-token-123456",
    "SLACK_SIGNING_SECRET": "cli-signing-secret-123456",
    "SLACK_APP_TOKEN": "xapp-cli-app-token-123456",
    "SMSPARTNER_API_KEY": "cli-smspartner-key-123456",
}


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMSPARTNER_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    """`credit-bot --help` runs and names run and check."""
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0
    assert "run" in result.stdout and "check" in result.stdout


def test_check_validates_settings_and_database(tmp_path: Path) -> None:
    """`check` creates/upgrades the schema, says so, and prints no secret."""
    result = _run(["check"], tmp_path, **ENV, DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}")
    assert result.returncode == 0, result.stderr
    assert "database: ok (schema version 2" in result.stdout
    for secret in ENV.values():
        assert secret not in result.stdout + result.stderr


def test_bad_setting_stops_with_one_line(tmp_path: Path) -> None:
    """A malformed variable stops start-up with one line naming it, exit code 2."""
    result = _run(["check"], tmp_path, **ENV, CREDIT_MAX_AMOUNT="lots")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CREDIT_MAX_AMOUNT" in lines[0]


def test_missing_secret_is_named(tmp_path: Path) -> None:
    """Running HTTP mode without a signing secret names the variable."""
    env = {k: v for k, v in ENV.items() if k != "SLACK_SIGNING_SECRET"}
    result = _run(["run", "--http"], tmp_path, **env)
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is required" in result.stderr


def test_env_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    """Settings come from .env when the environment does not have them."""
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in ENV.items()))
    result = _run(["check"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'e.db'}")
    assert result.returncode == 0, result.stderr


def test_audit_lists_requests_and_shows_a_trail(tmp_path: Path) -> None:
    """`audit` lists requests newest first; `audit ID` shows every status change with its actor."""
    database_url = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store.from_url(database_url)
    store.migrate()
    request = store.create(
        action=Action.REMOVE,
        subaccount_token="sub-audit",
        amount=Decimal("12.30"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url=None,
        ttl_seconds=60,
    )
    store.claim(request_id=request.id, approver_id="UAPP", executor="h/1/x")
    store.record_failure(request_id=request.id, error_code=8, error_message="Insufficient\tcredit")
    store.close()

    # Neither Slack secret is needed to read the trail.
    env = {k: v for k, v in ENV.items() if k not in ("SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")}
    listing = _run(["audit"], tmp_path, **env, DATABASE_URL=database_url)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.strip().splitlines()
    assert header.startswith("created_at\tid\tstatus")
    assert row.split("\t")[1:9] == [
        request.id,
        "failed",
        "remove",
        "12.30",
        "EUR",
        "sub-audit",
        "UREQ",
        "UAPP",
    ]
    assert row.endswith("Insufficient credit")

    shown = _run(["audit", request.id], tmp_path, **ENV, DATABASE_URL=database_url)
    events = [line.split("\t")[1:3] for line in shown.stdout.strip().splitlines()[-3:]]
    assert events == [["pending", "UREQ"], ["executing", "UAPP"], ["failed", ""]]
    missing = _run(["audit", "cr_nope"], tmp_path, **ENV, DATABASE_URL=database_url)
    assert missing.returncode == 1 and "no request cr_nope" in missing.stderr
