"""The demo page's own words (labels, hints, the balance panel), one gettext catalogue per
language: bot/demo/static/<language>.po, read with Babel as the app's catalogues are.

The app's texts (cards, answers, the Home tab) are not here: they come from the app itself,
in CREDIT_LANGUAGE. These are only what the page around them says. Both catalogues must have
the same ids and the same `{placeholders}`, checked when the demo starts, so a missing
translation stops it instead of showing an id to a visitor.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from babel.messages.pofile import read_po

from bot.texts.catalogue import placeholders

REFERENCE = "en"


class PageTextsError(Exception):
    """A page catalogue is missing, incomplete or disagrees with the English one."""


def page_texts(language: str) -> Mapping[str, str]:
    """The page's texts in `language`, checked against the English catalogue."""
    reference = _read(REFERENCE)
    texts = _read(language)
    missing = reference.keys() - texts.keys()
    extra = texts.keys() - reference.keys()
    if missing or extra:
        raise PageTextsError(
            f"page catalogue {language!r}: missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    for message_id, text in texts.items():
        if placeholders(text) != placeholders(reference[message_id]):
            raise PageTextsError(f"page catalogue {language!r}: {message_id!r} placeholders differ")
    return texts


@functools.cache
def _read(language: str) -> Mapping[str, str]:
    source = resources.files("bot.demo").joinpath("static", f"{language}.po")
    if not source.is_file():
        raise PageTextsError(f"no page catalogue for language {language!r}")
    with source.open("rb") as file:
        catalog = read_po(file)
    texts: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue  # the header
        if not isinstance(message.id, str) or not isinstance(message.string, str):
            raise PageTextsError(f"page catalogue {language!r}: {message.id!r} is a plural")
        if not message.string or message.fuzzy:
            raise PageTextsError(f"page catalogue {language!r}: {message.id!r} is empty or fuzzy")
        texts[message.id] = message.string
    return MappingProxyType(texts)
