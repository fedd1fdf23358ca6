"""Finding one language's words inside another language's message: English left in a French
card. The end-to-end "no English in a French card" test walks every card and answer through this.

Two kinds of evidence: a phrase of `MIN_WORDS` words or more from any message ("Nothing was
requested"), found anywhere; and a short message of fixed text (a label, a button, a state:
"Requested by", "Confirm", "pending"), found as whole words. Whatever both catalogues share
("SMS Partner", "ok") is evidence of nothing.
"""

from __future__ import annotations

import functools
import re
import string

from bot.texts.catalogue import Texts

MIN_WORDS = 3
# Where a message's fixed text breaks into phrases: markup, entities, emoji codes, sentence ends.
_BREAKS = re.compile(r"\*|`|\n|&[a-z]+;|:[a-z_]+:|[.;:?!()\"«»•·]\s|[.;:?!]$|\s[(\"«•·]")
_WORD = re.compile(r"[^\W\d_]+")
_STRIP = " ,.;:?!\u00a0\u202f"


@functools.cache
def phrases(language: str) -> frozenset[str]:
    """Every fixed stretch of `MIN_WORDS` words or more in `language`'s messages."""
    found = set()
    for message in Texts.for_language(language).messages.values():
        for literal, _field, _spec, _conversion in string.Formatter().parse(message):
            for piece in _BREAKS.split(literal):
                phrase = piece.strip(_STRIP)
                if len(_WORD.findall(phrase)) >= MIN_WORDS:
                    found.add(phrase)
    return frozenset(found)


@functools.cache
def labels(language: str) -> frozenset[str]:
    """The short messages with no placeholder (labels, buttons, states), markup taken off."""
    found = set()
    for message in Texts.for_language(language).messages.values():
        if placeholders_in(message):
            continue
        label = "".join(_BREAKS.split(message)).strip(_STRIP)
        if 0 < len(_WORD.findall(label)) < MIN_WORDS:
            found.add(label)
    return frozenset(found)


def placeholders_in(message: str) -> bool:
    return any(field is not None for _, field, _, _ in string.Formatter().parse(message))


@functools.cache
def _label_pattern(language: str, foreign: str) -> re.Pattern[str] | None:
    own_text = "\n".join(Texts.for_language(language).messages.values())
    suspects = [
        label
        for label in sorted(labels(foreign), key=len, reverse=True)
        if not re.search(rf"(?<!\w){re.escape(label)}(?!\w)", own_text)
    ]
    if not suspects:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, suspects))})(?!\w)")


def foreign_phrases(text: str, *, language: str, foreign: str = "en") -> list[str]:
    """The `foreign` catalogue's phrases and labels found in `text`, a message rendered in
    `language`; what both catalogues share does not count. Empty when nothing leaked."""
    found = {phrase for phrase in phrases(foreign) - phrases(language) if phrase in text}
    pattern = _label_pattern(language, foreign)
    if pattern is not None:
        found.update(pattern.findall(text))
    return sorted(found)
