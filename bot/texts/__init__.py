"""Everything the bot writes, per language: `Texts.for_language(settings.credit_language)`.

The catalogues are gettext .po files beside this module (en.po is the reference), read with
Babel at first use; money is formatted here per language, exactly. See catalogue.py.

A third language, say German: copy en.po to de.po, set `Language: de` in its header and
translate every msgstr, keeping the ids and the {placeholders} (the load refuses anything else,
and tests/test_texts.py checks it). `languages()` then includes "de"; add it to config.LANGUAGES
for CREDIT_LANGUAGE=de to be accepted. Numbers follow CLDR's German rules; add "de" to
money.UNGROUPED_LANGUAGES only to write balances without thousands separators, as English does.

What the flow says (a refusal, a parser error) is a `Wording`: an id and values, rendered here
in the process's language by the Slack layer (`Texts.say`).
"""

from bot.texts.catalogue import (
    DEFAULT_LANGUAGE,
    CatalogueError,
    Texts,
    UnknownLanguageError,
    UnknownMessageError,
    languages,
)
from bot.texts.phrases import foreign_phrases
from bot.texts.wording import Wording

__all__ = [
    "DEFAULT_LANGUAGE",
    "CatalogueError",
    "Texts",
    "UnknownLanguageError",
    "UnknownMessageError",
    "Wording",
    "foreign_phrases",
    "languages",
]
