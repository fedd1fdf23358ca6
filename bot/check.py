"""`credit-bot check`: does each thing the bot needs work? One line per check.

settings -> database (read and write, schema version) -> Slack (auth.test; the app token in
Socket Mode) -> SMS Partner (GET /me, which moves nothing). `--offline` stops after the
database. Nothing printed holds a secret: vendor text is scrubbed of every configured one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, cast

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.health import probe_database
from bot.logs import SecretFilter
from bot.smspartner.client import SMSPartnerClient, SMSPartnerError
from bot.startup import StartupError, database_failure, verify_app_token, verify_bot_token
from bot.store import Store

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

    def line(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'} ({self.detail})"


class MainAccount(Protocol):
    @property
    def balance(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


class Accounts(Protocol):
    def main_account(self) -> MainAccount: ...


def run_checks(settings: Settings, *, socket_mode: bool, offline: bool) -> Iterator[Outcome]:
    scrub = SecretFilter(settings.secrets()).scrub
    checks: list[Callable[[], Outcome]] = [
        lambda: check_settings(settings, socket_mode=socket_mode),
        lambda: check_database(settings),
    ]
    if not offline:
        checks.append(lambda: check_slack(settings))
        if socket_mode:
            checks.append(lambda: check_app_token(settings))
        checks.append(lambda: check_smspartner(settings))
    for check in checks:
        outcome = check()
        yield Outcome(outcome.name, outcome.ok, scrub(outcome.detail))


def check_settings(settings: Settings, *, socket_mode: bool) -> Outcome:
    copied = [
        name
        for name, placeholder in PLACEHOLDERS.items()
        if _secret_value(settings, name) == placeholder
    ]
    if copied:
        return Outcome(
            "settings", False, f"{', '.join(copied)} still hold .env.example's placeholder"
        )
    mode = "Socket Mode" if socket_mode else "HTTP mode"
    return Outcome(
        "settings",
        True,
        f"{mode}, Slack API {settings.slack_api_url}, SMS Partner {settings.smspartner_base_url}",
    )


def check_database(settings: Settings) -> Outcome:
    store = Store.from_url(settings.database_url)
    try:
        before = store.migrate()
        version = probe_database(store.engine)
    except SQLAlchemyError as error:
        return Outcome("database", False, database_failure(error, settings.database_url))
    finally:
        store.close()
    upgraded = "" if before == version else f", upgraded from {before}"
    return Outcome("database", True, f"schema version {version}{upgraded}, read and written")


def check_slack(settings: Settings) -> Outcome:
    try:
        answer = verify_bot_token(settings)
    except StartupError as error:
        return Outcome("slack", False, str(error))
    who = ", ".join(f"{k} {answer[k]}" for k in ("team", "user") if answer.get(k))
    return Outcome("slack", True, f"auth.test: {who or 'token accepted'}")


def check_app_token(settings: Settings) -> Outcome:
    try:
        verify_app_token(settings)
    except StartupError as error:
        return Outcome("slack app token", False, str(error))
    return Outcome("slack app token", True, "apps.connections.open: Socket Mode available")


def check_smspartner(settings: Settings) -> Outcome:
    client = SMSPartnerClient(
        api_key=settings.smspartner_api_key.reveal(),
        base_url=settings.smspartner_base_url,
        timeout=settings.smspartner_timeout_seconds,
    )
    try:
        # SMSPartnerClient.main_account() is GET /me: it reads the balance, moves nothing.
        account = cast(Accounts, client).main_account()
    except SMSPartnerError as error:
        return Outcome("smspartner", False, f"GET /me at {settings.smspartner_base_url}: {error}")
    finally:
        client.close()
    return Outcome(
        "smspartner", True, f"GET /me: main balance {account.balance:f} {account.currency}"
    )


def _secret_value(settings: Settings, name: str) -> str:
    secret = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SMSPARTNER_API_KEY": settings.smspartner_api_key,
    }[name]
    return secret.reveal()
