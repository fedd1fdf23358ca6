"""Every failure before the bot serves: one line on stderr saying what and where, exit 1,
no traceback (unless --log-level DEBUG). Slack and the database are real loopback servers
or closed ports on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.store import Store
from tests.e2e import BOT_TOKEN, app_env, free_port
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner

APP_TOKEN = "xapp-startup-app-token-0123456789"


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def smspartner() -> Iterator[FakeSMSPartner]:
    with FakeSMSPartner() as fake:
        yield fake


def _start(
    env: dict[str, str], cwd: Path, *args: str, log_level: str = "INFO"
) -> subprocess.CompletedProcess[str]:
    mode = list(args) or ["--http", "--host", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(
        [sys.executable, "-m", "bot", "--log-level", log_level, "run", *mode],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture
def env(slack: FakeSlack, smspartner: FakeSMSPartner, tmp_path: Path) -> dict[str, str]:
    return app_env(
        slack=slack, smspartner=smspartner, database_url=f"sqlite:///{tmp_path / 'bot.db'}"
    )


def test_slack_unreachable_names_slack_api_url_and_the_port(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Slack's API on a closed port: one line with SLACK_API_URL and 127.0.0.1:PORT."""
    port = free_port()
    env["SLACK_API_URL"] = f"http://127.0.0.1:{port}/api/"
    _one_line(_start(env, tmp_path), "Slack unreachable", f"127.0.0.1:{port}", "SLACK_API_URL")


def test_bot_token_refused_names_the_variable_and_slacks_code(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A bot token Slack does not know: SLACK_BOT_TOKEN and invalid_auth, before serving."""
    env["SLACK_BOT_TOKEN"] = "xoxb-not-the-right-token-000"
    _one_line(_start(env, tmp_path), "SLACK_BOT_TOKEN", "auth.test: invalid_auth")


def test_app_token_refused_before_the_bot_says_it_started(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Socket Mode with a wrong app token: one line, and no `bot.started` logged before it."""
    env["SLACK_APP_TOKEN"] = "xapp-not-the-right-token-000"
    line = _one_line(_start(env, tmp_path, "--host", "127.0.0.1"), "SLACK_APP_TOKEN")
    assert "apps.connections.open: invalid_auth" in line


def test_database_on_a_closed_port_names_database_url_and_the_port(
    env: dict[str, str], tmp_path: Path
) -> None:
    """PostgreSQL URL to a port where nothing listens: DATABASE_URL and 127.0.0.1:PORT."""
    port = free_port()
    env["DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"
    _one_line(_start(env, tmp_path), "DATABASE_URL", f"127.0.0.1:{port}", "refused")


def test_database_in_a_missing_folder_names_the_path(env: dict[str, str], tmp_path: Path) -> None:
    """SQLite file in a folder that does not exist: DATABASE_URL and the path."""
    missing = tmp_path / "no-such-folder" / "bot.db"
    env["DATABASE_URL"] = f"sqlite:///{missing}"
    _one_line(_start(env, tmp_path), "DATABASE_URL", str(missing))


def test_read_only_database_names_database_url(env: dict[str, str], tmp_path: Path) -> None:
    """An existing SQLite file that cannot be written (immutable, even for root)."""
    path = tmp_path / "ro.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    store.close()
    env["DATABASE_URL"] = f"sqlite:///{path}"
    with immutable(path):
        _one_line(_start(env, tmp_path), "DATABASE_URL", str(path), "readonly")


def test_port_taken_names_host_and_port(env: dict[str, str], tmp_path: Path) -> None:
    """Another program holds the port: host:port and "already in use"."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _start(env, tmp_path, "--http", "--host", "127.0.0.1", "--port", str(port))
    _one_line(result, f"127.0.0.1:{port}", "already in use")


def test_metrics_port_taken_names_the_flag(env: dict[str, str], tmp_path: Path) -> None:
    """The metrics port held by another program: --metrics-port and host:port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _start(
            env,
            tmp_path,
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--metrics-port",
            str(port),
        )
    _one_line(result, "--metrics-port", f"127.0.0.1:{port}")


def test_debug_level_adds_the_traceback(env: dict[str, str], tmp_path: Path) -> None:
    """--log-level DEBUG: the same first words, and the traceback for whoever digs."""
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    result = _start(env, tmp_path, log_level="DEBUG")
    assert result.returncode == 1
    assert "Slack unreachable" in result.stderr and "Traceback" in result.stderr


@contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """`chattr +i` for the block: not even root may write the file."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
