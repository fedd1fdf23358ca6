"""Settings: read from the environment over .env, failing with one line naming the variable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import ConfigError, Secret, load_settings

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-bot-token-value",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "SMSPARTNER_API_KEY": "smspartner-key-value",
}


def test_defaults_follow_the_spec() -> None:
    """Unset optional variables take SPEC.md §3's defaults."""
    settings = load_settings(BASE, env_file=None)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.smspartner_base_url == "https://api.smspartner.fr/v1"
    assert settings.smspartner_timeout_seconds == 10
    assert settings.database_url == "sqlite:///credit_bot.db"
    assert settings.credit_approvers == frozenset()
    assert settings.allow_self_approval is False
    assert settings.credit_max_amount == Decimal("1000")
    assert settings.confirmation_ttl_seconds == 900
    assert settings.credit_second_approval_above is None
    assert settings.credit_daily_limit is None
    assert settings.credit_require_reason is False
    assert settings.credit_remind_after_seconds == 0
    assert settings.credit_language == "en"
    assert settings.subaccount_cache_seconds == 300


def test_lists_booleans_and_amounts_are_parsed() -> None:
    """Comma-separated ids, booleans and the maximum amount are read exactly."""
    settings = load_settings(
        {
            **BASE,
            "CREDIT_APPROVERS": " U01AAA, U02BBB ,",
            "CREDIT_CHANNELS": "C0FIN",
            "ALLOW_SELF_APPROVAL": "yes",
            "CREDIT_MAX_AMOUNT": "250.50",
            "SLACK_API_URL": "http://127.0.0.1:9999/api",
        },
        env_file=None,
    )
    assert settings.credit_approvers == {"U01AAA", "U02BBB"}
    assert settings.credit_channels == {"C0FIN"}
    assert settings.allow_self_approval is True
    assert settings.credit_max_amount == Decimal("250.50")
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SLACK_BOT_TOKEN", "", "SLACK_BOT_TOKEN is required"),
        ("SLACK_BOT_TOKEN", "xapp-wrong-kind", "SLACK_BOT_TOKEN must start with 'xoxb-'"),
        ("SMSPARTNER_API_KEY", "", "SMSPARTNER_API_KEY is required"),
        ("SLACK_SIGNING_SECRET", "", "SLACK_SIGNING_SECRET is required"),
        ("SMSPARTNER_TIMEOUT_SECONDS", "ten", "SMSPARTNER_TIMEOUT_SECONDS must be a number"),
        ("SMSPARTNER_TIMEOUT_SECONDS", "-1", "SMSPARTNER_TIMEOUT_SECONDS must be more than 0"),
        ("CREDIT_MAX_AMOUNT", "1e3", "CREDIT_MAX_AMOUNT must be a positive amount"),
        ("CREDIT_MAX_AMOUNT", "0", "CREDIT_MAX_AMOUNT must be a positive amount"),
        ("CREDIT_APPROVERS", "alice", "CREDIT_APPROVERS must be a comma-separated list"),
        ("CREDIT_CHANNELS", "#finance", "CREDIT_CHANNELS must be a comma-separated list"),
        ("ALLOW_SELF_APPROVAL", "maybe", "ALLOW_SELF_APPROVAL must be true or false"),
        ("SMSPARTNER_BASE_URL", "ftp://x", "SMSPARTNER_BASE_URL must be an http(s) URL"),
        ("DATABASE_URL", "mysql://u:pw@h/db", "DATABASE_URL must be sqlite"),
        (
            "CONFIRMATION_TTL_SECONDS",
            "0",
            "CONFIRMATION_TTL_SECONDS must be more than 0 and at most 86400 seconds, got 0",
        ),
        ("CONFIRMATION_TTL_SECONDS", "86401", "more than 0 and at most 86400 seconds"),
        ("CONFIRMATION_TTL_SECONDS", "nan", "more than 0 and at most 86400 seconds"),
        ("SWEEP_INTERVAL_SECONDS", "inf", "more than 0 and at most 86400 seconds"),
        ("CREDIT_APPROVERS", "U01AAA,#finance", "user group ids like S0123ABCD"),
        ("CREDIT_REQUESTERS", "s01lower", "CREDIT_REQUESTERS must be a comma-separated list"),
        ("CREDIT_SECOND_APPROVAL_ABOVE", "500 EUR", "CREDIT_SECOND_APPROVAL_ABOVE must be"),
        ("CREDIT_DAILY_LIMIT", "-5", "CREDIT_DAILY_LIMIT must be a positive amount"),
        ("CREDIT_DAILY_LIMIT", "0", "CREDIT_DAILY_LIMIT must be a positive amount"),
        ("CREDIT_REQUIRE_REASON", "sometimes", "CREDIT_REQUIRE_REASON must be true or false"),
        ("CREDIT_REMIND_AFTER_SECONDS", "-1", "CREDIT_REMIND_AFTER_SECONDS must be between 0"),
        ("CREDIT_REMIND_AFTER_SECONDS", "soon", "CREDIT_REMIND_AFTER_SECONDS must be a number"),
        ("CREDIT_LANGUAGE", "de", "CREDIT_LANGUAGE must be one of en, fr, got 'de'"),
        ("SUBACCOUNT_CACHE_SECONDS", "-0.5", "SUBACCOUNT_CACHE_SECONDS must be between 0"),
        ("SUBACCOUNT_CACHE_SECONDS", "100000", "SUBACCOUNT_CACHE_SECONDS must be between 0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    """Each malformed value stops start-up with one line that names its variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, name: value}, env_file=None)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert "pw" not in message  # a database password is never echoed


def test_socket_mode_needs_app_token_not_signing_secret() -> None:
    """Socket Mode requires SLACK_APP_TOKEN; HTTP mode requires SLACK_SIGNING_SECRET."""
    env = {k: v for k, v in BASE.items() if k != "SLACK_SIGNING_SECRET"}
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN is required"):
        load_settings(env, env_file=None, http_mode=False)
    settings = load_settings(
        {**env, "SLACK_APP_TOKEN": "xapp-1-abc"}, env_file=None, http_mode=False
    )
    assert settings.slack_app_token.reveal() == "xapp-1-abc"


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """.env supplies values; a real environment variable overrides it."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "SLACK_BOT_TOKEN=xoxb-from-file\nSLACK_SIGNING_SECRET=s-from-file\n"
        "SMSPARTNER_API_KEY=k-from-file\nCREDIT_MAX_AMOUNT=50\n"
    )
    settings = load_settings({"CREDIT_MAX_AMOUNT": "75"}, env_file=env_file)
    assert settings.slack_bot_token.reveal() == "xoxb-from-file"
    assert settings.credit_max_amount == Decimal("75")


def test_secrets_never_show_in_repr() -> None:
    """Printing the settings shows no secret value."""
    settings = load_settings(BASE, env_file=None)
    shown = f"{settings!r} {settings} {settings.smspartner_api_key}"
    for secret in BASE.values():
        assert secret not in shown
    assert repr(Secret("x")) == "Secret('***')"
    assert sorted(settings.secrets()) == sorted(BASE.values())


def test_approval_settings_are_parsed() -> None:
    """User and group ids, the second-approval threshold, the daily limit, the reason, the
    reminder, the language and the cache are read exactly; 0 means "never" where allowed."""
    settings = load_settings(
        {
            **BASE,
            "CREDIT_APPROVERS": "U01AAA, S0FINANCE",
            "CREDIT_REQUESTERS": "S0SALES,W02BBB",
            "CREDIT_SECOND_APPROVAL_ABOVE": "500",
            "CREDIT_DAILY_LIMIT": "2000.50",
            "CREDIT_REQUIRE_REASON": "TRUE",
            "CREDIT_REMIND_AFTER_SECONDS": "3600",
            "CREDIT_LANGUAGE": "FR",
            "SUBACCOUNT_CACHE_SECONDS": "0",
        },
        env_file=None,
    )
    assert settings.credit_approvers == {"U01AAA", "S0FINANCE"}
    assert settings.credit_requesters == {"S0SALES", "W02BBB"}
    assert settings.credit_second_approval_above == Decimal("500")
    assert settings.credit_daily_limit == Decimal("2000.50")
    assert settings.credit_require_reason is True
    assert settings.credit_remind_after_seconds == 3600
    assert settings.credit_language == "fr"
    assert settings.subaccount_cache_seconds == 0
    reminders_off = load_settings({**BASE, "CREDIT_REMIND_AFTER_SECONDS": "0"}, env_file=None)
    assert reminders_off.credit_remind_after_seconds == 0


@pytest.mark.parametrize(
    ("approvers", "fragment"),
    [
        ("", "CREDIT_SECOND_APPROVAL_ABOVE needs CREDIT_APPROVERS"),
        ("U01AAA", "CREDIT_SECOND_APPROVAL_ABOVE needs at least two approvers"),
    ],
)
def test_a_second_approval_needs_two_possible_approvers(approvers: str, fragment: str) -> None:
    """A threshold no request could pass (nobody to give a second approval) stops start-up."""
    env = {**BASE, "CREDIT_SECOND_APPROVAL_ABOVE": "500", "CREDIT_APPROVERS": approvers}
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
    for enough in ("U01AAA,U02BBB", "S0FINANCE"):
        settings = load_settings({**env, "CREDIT_APPROVERS": enough}, env_file=None)
        assert settings.credit_second_approval_above == Decimal("500")
