"""The demo page's own catalogues, and the demo's flags for its language and reminders."""

from __future__ import annotations

import pytest

from bot.config import LANGUAGES
from bot.demo import main, seed
from bot.demo.texts import page_texts
from bot.texts.catalogue import placeholders


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_the_app_speaks_has_the_pages_texts(language: str) -> None:
    """Each CREDIT_LANGUAGE has a page catalogue with the English ids and placeholders."""
    texts, english = page_texts(language), page_texts("en")
    assert texts.keys() == english.keys()
    assert all(placeholders(texts[i]) == placeholders(english[i]) for i in english)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_says_what_each_seeded_subaccount_is_for(language: str) -> None:
    """Every seeded sub-account has its purpose written, in every language."""
    texts = page_texts(language)
    assert all(f"subaccount.{sub.token}" in texts for sub in seed.SUBACCOUNTS)


def test_the_french_page_is_french() -> None:
    """The French texts are translated, except what is the same word in both languages:
    names (SMS Partner, APP), the date locale aside, and commands typed with /credit."""
    french, english = page_texts("fr"), page_texts("en")
    same = {i for i in english if french[i] == english[i]}
    assert same == {"panel.title", "message.app"}
    assert french["example.balance"] == "/credit solde"  # French sub-commands, as typed


def test_the_french_examples_use_the_french_sub_commands() -> None:
    """Each French example command starts with a French sub-command (SPEC.md §2.1)."""
    words = {"ajouter", "retirer", "solde", "historique", "aide"}
    examples = [t for i, t in page_texts("fr").items() if i.startswith("example.")]
    assert examples and all(t.split()[1] in words for t in examples)


def test_an_unknown_page_language_is_refused() -> None:
    """A language with no page catalogue stops the demo instead of showing ids."""
    with pytest.raises(Exception, match="no page catalogue"):
        page_texts("de")


@pytest.mark.parametrize(
    "flags",
    [["--language", "de"], ["--remind-after", "0"], ["--remind-after", "soon"]],
)
def test_the_demo_refuses_bad_flags(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown language or a reminder delay outside 1..86400 s is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as stopped:
        main(flags)
    assert stopped.value.code == 2
    assert "credit-bot demo" in capsys.readouterr().err
