"""The two kinds of server process under test, started the way tests/e2e.py starts the app."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e import BOT_TOKEN, SIGNING_SECRET, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner

# bot/cli.py's default for --threads, which AppProcess runs with; the bare app gets the same.
HTTP_THREADS = 16


BENCH = Path(__file__).resolve().parent


def start_credit_bot(
    *,
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    workdir: Path,
    slack_client: str = "pooled",
    **env_overrides: str,
) -> AppProcess:
    """The real app (`python -m bot run --http`) on a fresh SQLite file, approvers UAPP and
    UAPP2, with production settings where the test environment departs from them, and the
    Slack client `slack_client` (see bench/slack_client.py)."""
    env = app_env(
        slack=slack,
        smspartner=smspartner,
        database_url=f"sqlite:///{workdir / 'credit_bot.db'}",
        # tests sweep 5 times a second; production sweeps every 5 s (the default).
        SWEEP_INTERVAL_SECONDS="5",
        # Longer than the fake's 10 s delay, so delayed transfers are answered, not timed out.
        SMSPARTNER_TIMEOUT_SECONDS="15",
        **env_overrides,
    )
    prefix = (sys.executable, str(BENCH / "slack_client.py"), slack_client, "--")
    return AppProcess(env=env, workdir=workdir, command_prefix=prefix).start()


@dataclass
class BareAppProcess(AppProcess):
    """bench/bare_app.py in a subprocess; AppProcess's readiness wait, logs and stop."""

    process_before_response: bool = False

    def start(self) -> BareAppProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"bare-{self.port}.log"
        flags = ["--process-before-response"] if self.process_before_response else []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bare_app",
                    "--port",
                    str(self.port),
                    "--threads",
                    str(HTTP_THREADS),
                    *flags,
                ],
                env=self.env,
                cwd=Path(__file__).resolve().parent.parent,  # so `bench` is importable
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()
        return self


def start_bare_bolt(
    *, slack: FakeSlack, workdir: Path, process_before_response: bool
) -> BareAppProcess:
    """The bare app with our signing secret, its auth.test answered by `slack`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url
    )
    return BareAppProcess(
        env=env, workdir=workdir, process_before_response=process_before_response
    ).start()
