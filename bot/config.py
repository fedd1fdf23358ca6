"""Settings: one frozen object read once from the environment and `.env` (SPEC.md §3).

A missing or malformed value stops start-up with one line that names the variable
and says what is wrong (`ConfigError`). Secrets are wrapped in `Secret`, whose repr
and str never show the value, so printing or logging a `Settings` is safe.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_SMSPARTNER_BASE_URL = "https://api.smspartner.fr/v1"
DEFAULT_DATABASE_URL = "sqlite:///credit_bot.db"

# Slack user ids start with U (or W on Enterprise Grid), user group ids with S; channel ids
# with C, G or D.
_USER_OR_GROUP_ID = re.compile(r"[UWS][A-Z0-9]{2,30}", re.ASCII)
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}", re.ASCII)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LANGUAGES = ("en", "fr")
MAX_SECONDS = 86_400
_PEOPLE = "Slack user ids like U0123ABCD or user group ids like S0123ABCD"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Secret:
    """A string that never shows itself in a repr, str, f-string or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    slack_bot_token: Secret
    slack_signing_secret: Secret
    slack_app_token: Secret
    smspartner_api_key: Secret
    slack_api_url: str = DEFAULT_SLACK_API_URL
    smspartner_base_url: str = DEFAULT_SMSPARTNER_BASE_URL
    smspartner_timeout_seconds: float = 10.0
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    credit_approvers: frozenset[str] = frozenset()
    allow_self_approval: bool = False
    credit_requesters: frozenset[str] = frozenset()
    credit_channels: frozenset[str] = frozenset()
    credit_max_amount: Decimal = Decimal("1000")
    # None: one approval is always enough / no daily limit.
    credit_second_approval_above: Decimal | None = None
    credit_daily_limit: Decimal | None = None
    credit_require_reason: bool = False
    # 0: never remind.
    credit_remind_after_seconds: float = 0.0
    credit_language: str = "en"
    confirmation_ttl_seconds: float = 900.0
    subaccount_cache_seconds: float = 300.0
    sweep_interval_seconds: float = 5.0

    def secrets(self) -> list[str]:
        """The secret values, for the log filter that scrubs them from any line."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.smspartner_api_key,
        )
        return [s.reveal() for s in values if s]


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: str | Path | None = ".env",
    http_mode: bool | None = True,
) -> Settings:
    """Read settings from `environ` (default: os.environ) over the `.env` file.

    Real environment variables win over `.env`, as with python-dotenv's default.
    `http_mode` decides which Slack secret is required: the signing secret for
    HTTP mode, the app-level token for Socket Mode, neither when None (tools that
    only read the database).
    """
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    reader = _Reader(values)

    settings = Settings(
        slack_bot_token=reader.secret("SLACK_BOT_TOKEN", prefix="xoxb-"),
        slack_signing_secret=reader.secret("SLACK_SIGNING_SECRET", required=http_mode is True),
        slack_app_token=reader.secret(
            "SLACK_APP_TOKEN", required=http_mode is False, prefix="xapp-"
        ),
        smspartner_api_key=reader.secret("SMSPARTNER_API_KEY"),
        slack_api_url=reader.url("SLACK_API_URL", DEFAULT_SLACK_API_URL, trailing_slash=True),
        smspartner_base_url=reader.url("SMSPARTNER_BASE_URL", DEFAULT_SMSPARTNER_BASE_URL),
        smspartner_timeout_seconds=reader.positive_seconds("SMSPARTNER_TIMEOUT_SECONDS", 10.0),
        database_url=reader.database_url("DATABASE_URL", DEFAULT_DATABASE_URL),
        credit_approvers=reader.ids("CREDIT_APPROVERS", _USER_OR_GROUP_ID, _PEOPLE),
        allow_self_approval=reader.boolean("ALLOW_SELF_APPROVAL", default=False),
        credit_requesters=reader.ids("CREDIT_REQUESTERS", _USER_OR_GROUP_ID, _PEOPLE),
        credit_channels=reader.ids("CREDIT_CHANNELS", _CHANNEL_ID, "channel ids like C0123ABCD"),
        credit_max_amount=reader.amount("CREDIT_MAX_AMOUNT", Decimal("1000")),
        credit_second_approval_above=reader.optional_amount("CREDIT_SECOND_APPROVAL_ABOVE"),
        credit_daily_limit=reader.optional_amount("CREDIT_DAILY_LIMIT"),
        credit_require_reason=reader.boolean("CREDIT_REQUIRE_REASON", default=False),
        credit_remind_after_seconds=reader.seconds("CREDIT_REMIND_AFTER_SECONDS", 0.0),
        credit_language=reader.choice("CREDIT_LANGUAGE", LANGUAGES),
        confirmation_ttl_seconds=reader.positive_seconds("CONFIRMATION_TTL_SECONDS", 900.0),
        subaccount_cache_seconds=reader.seconds("SUBACCOUNT_CACHE_SECONDS", 300.0),
        sweep_interval_seconds=reader.positive_seconds("SWEEP_INTERVAL_SECONDS", 5.0),
    )
    _check_second_approval(settings)
    return settings


def _check_second_approval(settings: Settings) -> None:
    """Two different approvers must be possible, or requests above the threshold never pass."""
    if settings.credit_second_approval_above is None:
        return
    approvers = settings.credit_approvers
    if not approvers:
        raise ConfigError(
            "CREDIT_SECOND_APPROVAL_ABOVE needs CREDIT_APPROVERS: with no approvers, "
            "nobody could give the second approval"
        )
    has_group = any(item.startswith("S") for item in approvers)
    if not has_group and len(approvers) < 2:
        raise ConfigError(
            "CREDIT_SECOND_APPROVAL_ABOVE needs at least two approvers (or a user group) "
            "in CREDIT_APPROVERS"
        )


class _Reader:
    """Typed access to the raw values, each failure naming its variable."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def _raw(self, name: str) -> str:
        return self._values.get(name, "").strip()

    def secret(self, name: str, *, required: bool = True, prefix: str = "") -> Secret:
        value = self._raw(name)
        if not value:
            if required:
                raise ConfigError(f"{name} is required but not set (see .env.example)")
            return Secret("")
        if prefix and not value.startswith(prefix):
            # Say what was expected without echoing the secret itself.
            raise ConfigError(f"{name} must start with {prefix!r}")
        return Secret(value)

    def url(self, name: str, default: str, *, trailing_slash: bool = False) -> str:
        value = self._raw(name) or default
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ConfigError(f"{name} must be an http(s) URL without query string, got {value!r}")
        value = value.rstrip("/")
        return value + "/" if trailing_slash else value

    def positive_seconds(self, name: str, default: float) -> float:
        """Seconds in (0, MAX_SECONDS]: 0 would mean "at once" or "always", never meant here."""
        seconds = self._seconds(name, default)
        if not 0 < seconds <= MAX_SECONDS:
            raise ConfigError(
                f"{name} must be more than 0 and at most {MAX_SECONDS} seconds, got {seconds:g}"
            )
        return seconds

    def seconds(self, name: str, default: float) -> float:
        """Seconds in [0, MAX_SECONDS], where 0 has a meaning of its own (never, no cache)."""
        seconds = self._seconds(name, default)
        if not 0 <= seconds <= MAX_SECONDS:
            raise ConfigError(
                f"{name} must be between 0 and {MAX_SECONDS} seconds, got {seconds:g}"
            )
        return seconds

    def _seconds(self, name: str, default: float) -> float:
        value = self._raw(name)
        if not value:
            return default
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        # NaN and infinity fall outside every range the callers check.
        return seconds

    def database_url(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        if not re.match(r"(sqlite|postgresql)(\+\w+)?://", value):
            # No echo: a database URL may carry a password.
            raise ConfigError(f"{name} must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value

    def ids(self, name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
        items = [item.strip() for item in self._raw(name).split(",") if item.strip()]
        for item in items:
            if not pattern.fullmatch(item):
                raise ConfigError(f"{name} must be a comma-separated list of {what}, got {item!r}")
        return frozenset(items)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._raw(name).lower()
        if not value:
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, case-insensitive; the first when unset."""
        value = self._raw(name).lower()
        if not value:
            return choices[0]
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def optional_amount(self, name: str) -> Decimal | None:
        """An amount, or None when unset (the feature is off)."""
        if not self._raw(name):
            return None
        return self.amount(name, Decimal(0))

    def amount(self, name: str, default: Decimal) -> Decimal:
        value = self._raw(name)
        if not value:
            return default
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,2})?", value) or Decimal(value) == 0:
            raise ConfigError(
                f"{name} must be a positive amount in euros with at most 2 decimals, got {value!r}"
            )
        amount = Decimal(value)
        return amount


def load_database_url(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> str:
    """DATABASE_URL alone, read as `load_settings` reads it: for tools that only read the
    database (`credit-bot audit`), which need none of the Slack or SMS Partner secrets."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return _Reader(values).database_url("DATABASE_URL", DEFAULT_DATABASE_URL)
