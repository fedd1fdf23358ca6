"""The `credit-bot` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from bot.check import PLACEHOLDERS
from bot.domain import Action
from bot.store import Store, schema
from tests.e2e import free_port
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.test_startup import immutable

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


def test_check_offline_validates_settings_and_database(tmp_path: Path) -> None:
    """`check --offline` creates/upgrades the schema, says so, and prints no secret."""
    database_url = f"sqlite:///{tmp_path / 'c.db'}"
    result = _run(["check", "--offline"], tmp_path, **ENV, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    settings, database = result.stdout.strip().splitlines()
    assert settings.startswith("settings: ok (Socket Mode")
    assert database.startswith(f"database: ok (schema version {schema.LATEST_VERSION}")
    assert "Settings(" not in result.stdout
    for secret in ENV.values():
        assert secret not in result.stdout + result.stderr


def test_bad_setting_is_one_failed_check(tmp_path: Path) -> None:
    """A malformed variable: one line naming it, exit code 1."""
    result = _run(["check", "--offline"], tmp_path, **ENV, CREDIT_MAX_AMOUNT="lots")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("settings: FAILED")
    assert "CREDIT_MAX_AMOUNT" in lines[0]


def test_bad_setting_stops_run_with_one_line(tmp_path: Path) -> None:
    """A malformed variable stops `run` with one line naming it, exit code 2."""
    result = _run(["run", "--http"], tmp_path, **ENV, CREDIT_MAX_AMOUNT="lots")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CREDIT_MAX_AMOUNT" in lines[0]


def test_check_reports_env_example_placeholders(tmp_path: Path) -> None:
    """.env.example copied as is: check names the variables that still hold its placeholders."""
    example = Path(__file__).parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    result = _run(
        ["check", "--offline", "--http"],
        tmp_path,
        SLACK_SIGNING_SECRET="cli-signing-secret-123456",
        DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
    )
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("settings: FAILED")
    assert "SLACK_BOT_TOKEN" in first and "SMSPARTNER_API_KEY" in first
    assert "placeholder" in first


def test_placeholders_match_env_example() -> None:
    """The placeholders check knows are the ones .env.example holds."""
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    for name, value in PLACEHOLDERS.items():
        assert f"{name}={value}\n" in example


def test_check_of_a_read_only_database_fails_naming_database_url(tmp_path: Path) -> None:
    """A database that reads but cannot be written is a failed check, naming DATABASE_URL."""
    path = tmp_path / "ro.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    store.close()
    with immutable(path):
        result = _run(["check", "--offline"], tmp_path, **ENV, DATABASE_URL=f"sqlite:///{path}")
    assert result.returncode == 1
    database = result.stdout.strip().splitlines()[1]
    assert database.startswith("database: FAILED") and "DATABASE_URL" in database
    assert "sqlalche.me" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_check_of_a_closed_database_port_names_database_url(tmp_path: Path) -> None:
    """PostgreSQL on a closed port: the database line names DATABASE_URL and host:port."""
    port = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"
    result = _run(["check", "--offline"], tmp_path, **ENV, DATABASE_URL=url)
    assert result.returncode == 1
    database = result.stdout.strip().splitlines()[1]
    assert "DATABASE_URL" in database and f"127.0.0.1:{port}" in database
    assert "sqlalche.me" not in result.stdout


def test_check_asks_slack_and_names_its_error_code(tmp_path: Path) -> None:
    """Online check with a token Slack refuses: the slack line says invalid_auth."""
    with FakeSlack(bot_token="xoxb-the-real-one-000000") as slack:
        result = _run(
            ["check", "--http"],
            tmp_path,
            **ENV,
            SLACK_API_URL=slack.api_url,
            SMSPARTNER_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
            DATABASE_URL=f"sqlite:///{tmp_path / 's.db'}",
        )
        assert slack.calls_to("auth.test")
    assert result.returncode == 1
    slack_line = result.stdout.strip().splitlines()[2]
    assert slack_line.startswith("slack: FAILED")
    assert "invalid_auth" in slack_line and "SLACK_BOT_TOKEN" in slack_line


def test_check_against_the_fakes_prints_the_main_balance(tmp_path: Path) -> None:
    """Everything answering: every line ok, SMS Partner's GET /me gives the main balance, and
    nothing moved."""
    with (
        FakeSlack(bot_token=ENV["SLACK_BOT_TOKEN"]) as slack,
        FakeSMSPartner(
            api_key=ENV["SMSPARTNER_API_KEY"], main_balance=Decimal("4321.500")
        ) as smspartner,
    ):
        result = _run(
            ["check", "--http"],
            tmp_path,
            **ENV,
            SLACK_API_URL=slack.api_url,
            SMSPARTNER_BASE_URL=smspartner.base_url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}",
        )
        assert smspartner.main_balance == Decimal("4321.500")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["settings", "database", "slack", "smspartner"]
    assert "4321.5" in lines[3]


def test_invalid_port_threads_and_limit_are_refused(tmp_path: Path) -> None:
    """--port outside 1..65535, --threads 0, --metrics-port 0 and audit --limit 0: refused."""
    for args in (
        ["run", "--http", "--port", "99999"],
        ["run", "--http", "--port", "0"],
        ["run", "--http", "--threads", "0"],
        ["run", "--metrics-port", "0"],
        ["audit", "--limit", "0"],
        ["audit", "--limit", "-1"],
    ):
        result = _run(args, tmp_path, **ENV)
        assert result.returncode == 2, args
        assert "error: argument" in result.stderr


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    """--env-file naming a file that is not there: one line, exit 1."""
    result = _run(["--env-file", "nowhere.env", "check", "--offline"], tmp_path, **ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == "credit-bot: --env-file nowhere.env: no such file"


def test_audit_never_creates_a_database(tmp_path: Path) -> None:
    """audit on a fresh install says there is no database yet, and creates none."""
    path = tmp_path / "fresh.db"
    result = _run(["audit"], tmp_path, DATABASE_URL=f"sqlite:///{path}")
    assert result.returncode == 1
    assert "no database yet" in result.stderr and "DATABASE_URL" in result.stderr
    assert not path.exists()


def test_missing_secret_is_named(tmp_path: Path) -> None:
    """Running HTTP mode without a signing secret names the variable."""
    env = {k: v for k, v in ENV.items() if k != "SLACK_SIGNING_SECRET"}
    result = _run(["run", "--http"], tmp_path, **env)
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is required" in result.stderr


def test_env_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    """Settings come from .env when the environment does not have them."""
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in ENV.items()))
    result = _run(["check", "--offline"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'e.db'}")
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

    # No secret at all is needed to read the trail.
    listing = _run(["audit"], tmp_path, DATABASE_URL=database_url)
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


def test_demo_refuses_a_language_it_has_no_catalogue_for(tmp_path: Path) -> None:
    """`credit-bot demo --language de` stops at the flags (exit 2), before serving anything."""
    result = _run(["demo", "--language", "de", "--port", "1"], tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'de'" in result.stderr
