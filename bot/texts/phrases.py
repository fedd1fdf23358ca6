"""Finding one language's sentences inside another language's message: English left in a French
card. The end-to-end "no English in a French card" test walks every card and answer through this.
"""

from __future__ import annotations

import re
import string

from bot.texts.catalogue import Texts

# Fewer words than this are names and codes shared by both languages ("SMS Partner", "EUR").
MIN_WORDS = 4
# Where a message's fixed text breaks into phrases: markup, emoji codes, and sentence ends.
_BREAKS = re.compile(r"\*|`|\n|&[a-z]+;|:[a-z_]+:|[.;:?!()\"«»•·]\s|[.;:?!]$|\s[(\"«•·]")
_WORD = re.compile(r"[^\W\d_]+")


def phrases(texts: Texts) -> frozenset[str]:
    """Every fixed stretch of `MIN_WORDS` words or more in `texts`' messages."""
    found = set()
    for message in texts.messages.values():
        for literal, _field, _spec, _conversion in string.Formatter().parse(message):
            for piece in _BREAKS.split(literal):
                phrase = piece.strip(" ,.;:?!")
                if len(_WORD.findall(phrase)) >= MIN_WORDS:
                    found.add(phrase)
    return frozenset(found)


def foreign_phrases(text: str, *, language: str, foreign: str = "en") -> list[str]:
    """The phrases of the `foreign` catalogue found verbatim in `text`, a message rendered in
    `language`; phrases both catalogues share are not foreign. Empty when nothing leaked."""
    own = phrases(Texts.for_language(language))
    suspects = phrases(Texts.for_language(foreign)) - own
    return sorted(phrase for phrase in suspects if phrase in text)
