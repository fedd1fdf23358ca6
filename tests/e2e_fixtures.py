"""The module-scoped fixtures the end-to-end suites share, once per CREDIT_LANGUAGE: a fake
Slack, one app process on a SQLite file, a signed sender and the app's store. A suite
module provides what differs: `smspartner` (its sub-accounts), `database_file` and
`_fresh_tokens` (sub-accounts made before the app first reads the list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store
from bot.texts import Texts
from tests.e2e import BOT_TOKEN, LANGUAGES, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner
from tests.slack_requests import SlackSender


@pytest.fixture(scope="module", params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    """The app's CREDIT_LANGUAGE: every fixture below is made again for each."""
    return str(request.param)


@pytest.fixture(scope="module")
def texts(language: str) -> Texts:
    return Texts.for_language(language)


@pytest.fixture(scope="module")
def slack(language: str) -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def app(
    slack: FakeSlack,
    smspartner: FakeSMSPartner,
    database_file: Path,
    _fresh_tokens: Iterator[str],
    language: str,
) -> Iterator[AppProcess]:
    env = app_env(
        slack=slack,
        smspartner=smspartner,
        database_url=f"sqlite:///{database_file}",
        CREDIT_LANGUAGE=language,
    )
    process = AppProcess(env=env, workdir=database_file.parent).start()
    yield process
    process.stop()


@pytest.fixture
def sender(app: AppProcess, slack: FakeSlack) -> SlackSender:
    return app.sender(slack)


@pytest.fixture
def store(database_file: Path) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{database_file}")
    yield store
    store.close()
