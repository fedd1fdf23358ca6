"""Drift: the manifest, .env.example and README say what the code does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.slack import blocks

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "schemas" / "slack-app-manifest.v1.schema.json"


def _manifest() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _variables_read_by_code() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    return set(
        re.findall(
            r'"((?:SLACK|SMSPARTNER|CREDIT|DATABASE|ALLOW|CONFIRMATION|SUBACCOUNT|SWEEP)_?[A-Z_]*)"',
            source,
        )
    )


def _registered(kind: str) -> set[str]:
    """The ids bot/slack registers with `app.<kind>(CONSTANT)`, resolved through its blocks."""
    source = "\n".join(p.read_text() for p in (ROOT / "bot" / "slack").rglob("*.py"))
    names = re.findall(rf"app\.{kind}\((\w+)\)", source)
    assert names, f"no app.{kind}(...) found in bot/slack"
    return {getattr(blocks, name) for name in names}


def test_manifest_declares_the_command_and_every_action() -> None:
    """The slash command and every action id the code registers are in manifest.yml."""
    manifest = _manifest()
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}  # type: ignore[index]
    assert commands == _registered("command") == {"/credit"}
    text = (ROOT / "manifest.yml").read_text()
    actions = _registered("action")
    assert actions == {
        "credit_confirm",
        "credit_cancel",
        "credit_check_balance",
        "credit_resolve_done",
        "credit_resolve_not_done",
    }
    for action_id in ("credit_confirm", "credit_cancel"):
        # Buttons need only interactivity in a manifest; the comment there names the card's.
        assert action_id in text
    readme = (ROOT / "README.md").read_text()
    for action_id in actions - {"credit_confirm", "credit_cancel"}:
        # The unknown card's buttons are explained in the README.
        assert f"`{action_id}`" in readme
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True  # type: ignore[index]
    assert settings["socket_mode_enabled"] is True  # type: ignore[index]
    scopes = manifest["oauth_config"]["scopes"]["bot"]  # type: ignore[index]
    assert scopes == ["commands", "chat:write", "usergroups:read"]


def test_manifest_enables_the_home_tab_and_its_event() -> None:
    """The Home tab is on and Slack sends app_home_opened to the bot (SPEC.md §2.5, §5)."""
    manifest = _manifest()
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True  # type: ignore[index]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]  # type: ignore[index]
    assert "app_home_opened" in events


def test_every_spec_variable_is_read_by_the_code() -> None:
    """Each variable of SPEC.md §4's table is one the code reads (so it is documented too)."""
    spec = ROOT.parent / "shared" / "SPEC.md"
    if not spec.is_file():
        pytest.skip(f"{spec} is not there (it comes with the project's shared/ folder)")
    section = spec.read_text().split("## 4. Configuration", 1)[1].split("\n## ", 1)[0]
    in_spec = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.MULTILINE))
    assert "CREDIT_LANGUAGE" in in_spec
    assert in_spec <= _variables_read_by_code()


def test_manifest_validates_against_slacks_schema() -> None:
    """manifest.yml is valid against Slack's published manifest schema."""
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} is not there (it comes with the project's shared/ folder)")
    jsonschema.validate(_manifest(), json.loads(SCHEMA.read_text()))


def test_every_variable_is_documented() -> None:
    """Every environment variable the code reads is in .env.example and in the README."""
    variables = _variables_read_by_code()
    assert "SMSPARTNER_API_KEY" in variables and "SWEEP_INTERVAL_SECONDS" in variables
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in variables:
        assert re.search(rf"^{name}=", example, re.MULTILINE), f"{name} not in .env.example"
        assert f"`{name}`" in readme, f"{name} not in README.md"
