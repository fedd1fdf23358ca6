"""`credit-bot check`: does each thing the bot needs work? One line per check.

settings -> database (read and write, schema version) -> Slack (auth.test; the app token in
Socket Mode) -> SMS Partner (GET /me, which moves nothing). `--offline` stops after the
database. Nothing printed holds a secret: vendor text is scrubbed of every configured one.
The lines are in CREDIT_LANGUAGE (the check's name stays as typed); what other parts of the
bot explain (a start-up or SMS Partner error) is shown as they word it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, cast

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.health import probe_database
from bot.logs import SecretFilter
from bot.smspartner.client import SMSPartnerClient, SMSPartnerError
from bot.startup import StartupError, database_failure, verify_app_token, verify_bot_token
from bot.store import Store
from bot.texts import DEFAULT_LANGUAGE, Texts

# .env.example's values for the secrets: copied but never filled in.
PLACEHOLDERS = {
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SMSPARTNER_API_KEY": "your-smspartner-api-key",
}


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    detail: str
    texts: Texts = field(default_factory=lambda: Texts.for_language(DEFAULT_LANGUAGE))

    def line(self) -> str:
        said = "check.ok" if self.ok else "check.failed"
        return self.texts(said, check=self.name, detail=self.detail)


class MainAccount(Protocol):
    @property
    def balance(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


class Accounts(Protocol):
    def main_account(self) -> MainAccount: ...


def run_checks(settings: Settings, *, socket_mode: bool, offline: bool) -> Iterator[Outcome]:
    scrub = SecretFilter(settings.secrets()).scrub
    texts = Texts.for_language(settings.credit_language)
    checks: list[Callable[[], Outcome]] = [
        lambda: check_settings(settings, texts, socket_mode=socket_mode),
        lambda: check_database(settings, texts),
    ]
    if not offline:
        checks.append(lambda: check_slack(settings, texts))
        if socket_mode:
            checks.append(lambda: check_app_token(settings, texts))
        checks.append(lambda: check_smspartner(settings, texts))
    for check in checks:
        outcome = check()
        yield Outcome(outcome.name, outcome.ok, scrub(outcome.detail), texts)


def check_settings(settings: Settings, texts: Texts, *, socket_mode: bool) -> Outcome:
    copied = [
        name
        for name, placeholder in PLACEHOLDERS.items()
        if _secret_value(settings, name) == placeholder
    ]
    if copied:
        return Outcome(
            "settings", False, texts("check.settings.placeholder", names=", ".join(copied))
        )
    mode = "check.settings.socket_mode" if socket_mode else "check.settings.http_mode"
    return Outcome(
        "settings",
        True,
        texts(mode, slack_url=settings.slack_api_url, smspartner_url=settings.smspartner_base_url),
    )


def check_database(settings: Settings, texts: Texts) -> Outcome:
    store = Store.from_url(settings.database_url)
    try:
        before = store.migrate()
        version = probe_database(store.engine)
    except SQLAlchemyError as error:
        return Outcome("database", False, database_failure(error, settings.database_url))
    finally:
        store.close()
    if before == version:
        return Outcome("database", True, texts("check.database.ok", version=version))
    return Outcome(
        "database", True, texts("check.database.upgraded", version=version, before=before)
    )


def check_slack(settings: Settings, texts: Texts) -> Outcome:
    try:
        answer = verify_bot_token(settings)
    except StartupError as error:
        return Outcome("slack", False, str(error))
    who = ", ".join(f"{k} {answer[k]}" for k in ("team", "user") if answer.get(k))
    return Outcome(
        "slack", True, texts("check.slack.ok", who=who or texts("check.slack.token_accepted"))
    )


def check_app_token(settings: Settings, texts: Texts) -> Outcome:
    try:
        verify_app_token(settings)
    except StartupError as error:
        return Outcome("slack app token", False, str(error))
    return Outcome("slack app token", True, texts("check.app_token.ok"))


def check_smspartner(settings: Settings, texts: Texts) -> Outcome:
    client = SMSPartnerClient(
        api_key=settings.smspartner_api_key.reveal(),
        base_url=settings.smspartner_base_url,
        timeout=settings.smspartner_timeout_seconds,
    )
    try:
        # SMSPartnerClient.main_account() is GET /me: it reads the balance, moves nothing.
        account = cast(Accounts, client).main_account()
    except SMSPartnerError as error:
        failed = texts("check.smspartner.failed", url=settings.smspartner_base_url, error=error)
        return Outcome("smspartner", False, failed)
    finally:
        client.close()
    balance = texts.format_balance(account.balance, account.currency)
    return Outcome("smspartner", True, texts("check.smspartner.ok", balance=balance))


def _secret_value(settings: Settings, name: str) -> str:
    secret = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SMSPARTNER_API_KEY": settings.smspartner_api_key,
    }[name]
    return secret.reveal()
