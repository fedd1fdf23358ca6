"""Everything the bot writes, per language: `Texts.for_language(settings.credit_language)`.

The catalogues are gettext .po files beside this module (en.po is the reference), read with
Babel at first use; money is formatted here per language, exactly. See catalogue.py.
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

__all__ = [
    "DEFAULT_LANGUAGE",
    "CatalogueError",
    "Texts",
    "UnknownLanguageError",
    "UnknownMessageError",
    "foreign_phrases",
    "languages",
]
