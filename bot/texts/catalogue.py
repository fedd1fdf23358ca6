"""The message catalogues: one gettext .po file per language beside this module, keyed ids.

    texts = Texts.for_language("fr")
    texts("card.confirm.asks", requester="<@U1>", request=...)

Loading checks every catalogue against the others, so a missing translation or a placeholder
renamed in one language stops the app at start-up, not in front of a user: the same ids in every
language, the same `{placeholders}` per id, no empty, fuzzy or plural entry, and placeholders
only of the plain `{name}` form (no `{name.attr}`, `{name[0]}`, `!r` or `:spec`, so a catalogue
can neither reach into an object nor format money its own way).

Messages are Slack mrkdwn written by us. Values are put in as given: whoever passes user or
vendor text escapes it first (bot.slack.blocks.escape_mrkdwn); this module never does.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.lists import format_list
from babel.messages.pofile import read_po

from bot.texts import money
from bot.texts.wording import Wording

DEFAULT_LANGUAGE = "en"
_FORMATTER = string.Formatter()
# Keyed ids (`card.confirm.asks`), never English sentences: the English is a catalogue too.
MESSAGE_ID = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+", re.ASCII)
_MSGID_LINE = re.compile(r'^msgid "', re.MULTILINE)


class CatalogueError(Exception):
    """A catalogue is malformed or disagrees with another: the app must not start with it."""


class UnknownMessageError(KeyError):
    """A message id that no catalogue has: a bug in the caller, never shown as another text."""


class UnknownLanguageError(ValueError):
    """A language with no catalogue beside this module."""


def placeholders(text: str) -> frozenset[str]:
    """The `{names}` a message expects; raises ValueError if one is not a plain `{name}`."""
    names = set()
    for _literal, field, spec, conversion in _FORMATTER.parse(text):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} is not a plain {{name}}")
        names.add(field)
    return frozenset(names)


@dataclass(frozen=True)
class Texts:
    """One language's messages and number formats. Immutable, so threads share it freely."""

    language: str
    messages: Mapping[str, str]
    expected: Mapping[str, frozenset[str]]

    @classmethod
    def for_language(cls, language: str) -> Texts:
        """The texts of `language` (`en`, `fr`, …), loaded and cross-checked once per process."""
        catalogues = _catalogues()
        if language not in catalogues:
            raise UnknownLanguageError(
                f"no catalogue for language {language!r}; there are {', '.join(sorted(catalogues))}"
            )
        return catalogues[language]

    def __call__(self, message_id: str, /, **values: object) -> str:
        """The message `message_id` with `values` put in; every placeholder, and no other."""
        try:
            text = self.messages[message_id]
        except KeyError:
            raise UnknownMessageError(f"no message {message_id!r}") from None
        wanted = self.expected[message_id]
        if wanted != values.keys():
            missing = ", ".join(sorted(wanted - values.keys())) or "none"
            extra = ", ".join(sorted(values.keys() - wanted)) or "none"
            raise TypeError(f"message {message_id!r}: missing {missing}; unexpected {extra}")
        return text.format(**values)

    def say(self, wording: Wording, *, escape: Callable[[str], str] = str) -> str:
        """A `Wording` rendered: text values through `escape` (Slack's, for mrkdwn), Decimal
        values as euros with every digit they have (`1000 EUR`, `10.50 EUR`), a Wording
        value rendered in turn."""
        return self(wording.id, **{name: self._value(v, escape) for name, v in wording.values})

    def _value(self, value: object, escape: Callable[[str], str]) -> object:
        if isinstance(value, Wording):  # a word of ours inside, a state's name say
            return self.say(value, escape=escape)
        if isinstance(value, Decimal):
            return self.format_balance(value, "EUR")
        if isinstance(value, str):
            return escape(value)
        return value

    def format_amount(self, amount: Decimal, currency: str) -> str:
        """A requested amount with cents: en `10.50 EUR`, fr `10,50 EUR`."""
        return money.format_amount(amount, currency, language=self.language)

    def format_balance(self, balance: Decimal | None, currency: str) -> str:
        """A balance with SMS Partner's digits (en `10225.119 EUR`, fr `10 225,119 EUR`);
        None is the language's "unknown"."""
        if balance is None:
            return self("balance.unknown")
        return money.format_balance(balance, currency, language=self.language)

    def format_list(self, items: Iterable[str], *, joined_by: Literal["and", "or"]) -> str:
        """`a, b and c` / `a, b ou c`, by CLDR's rules for the language."""
        return format_list(
            list(items), style="standard" if joined_by == "and" else "or", locale=self.language
        )


def languages() -> frozenset[str]:
    """Every language that has a catalogue: the values CREDIT_LANGUAGE may take."""
    return frozenset(_catalogues())


_lock = threading.Lock()
_loaded: dict[str, Texts] = {}


def _catalogues() -> Mapping[str, Texts]:
    # Read once, under a lock, so concurrent first calls neither read twice nor see half a load.
    with _lock:
        if not _loaded:
            _loaded.update(load_catalogues(_package_files()))
        return _loaded


def _package_files() -> dict[str, str]:
    folder = resources.files(__package__ or "bot.texts")
    return {
        entry.name.removesuffix(".po"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".po")
    }


def load_catalogues(sources: Mapping[str, str]) -> dict[str, Texts]:
    """Parse the .po texts (language -> file content) and check them against each other."""
    if DEFAULT_LANGUAGE not in sources:
        raise CatalogueError(f"there is no {DEFAULT_LANGUAGE}.po catalogue")
    for language in sources:
        try:
            Locale.parse(language)
        except (ValueError, UnknownLocaleError):
            # CLDR has no numbers or list words for it: amounts could not be written.
            raise CatalogueError(
                f"{language}.po: {language!r} is not a language CLDR knows"
            ) from None
    parsed = {language: _parse(language, text) for language, text in sources.items()}
    reference = parsed[DEFAULT_LANGUAGE]
    expected = {message_id: placeholders(text) for message_id, text in reference.items()}
    for language, messages in parsed.items():
        _compare(language, messages, expected)
    return {
        language: Texts(
            language=language,
            messages=MappingProxyType(messages),
            expected=MappingProxyType(expected),
        )
        for language, messages in parsed.items()
    }


def _parse(language: str, text: str) -> dict[str, str]:
    catalog = read_po(text.splitlines(keepends=True), locale=language, abort_invalid=True)
    messages: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue  # the header entry
        where = f"{language}.po, {message.id!r}"
        if not isinstance(message.id, str) or not isinstance(message.string, str):
            raise CatalogueError(f"{where}: plural entries are not used; word it without")
        if not MESSAGE_ID.fullmatch(message.id):
            raise CatalogueError(f"{where}: an id is dotted lower-case words, like card.title")
        if message.fuzzy:
            raise CatalogueError(f"{where}: marked fuzzy; check the translation, then unmark it")
        if not message.string:
            raise CatalogueError(f"{where}: no text")
        try:
            placeholders(message.string)
        except ValueError as error:
            raise CatalogueError(f"{where}: {error}") from None
        messages[message.id] = message.string
    # read_po keeps the last of two entries with one id; a duplicate is a mistake to report.
    if len(_MSGID_LINE.findall(text)) != len(messages) + 1:
        raise CatalogueError(f"{language}.po: an id appears twice, or the header is missing")
    return messages


def _compare(language: str, messages: dict[str, str], expected: dict[str, frozenset[str]]) -> None:
    missing = sorted(expected.keys() - messages.keys())
    extra = sorted(messages.keys() - expected.keys())
    if missing or extra:
        raise CatalogueError(
            f"{language}.po and {DEFAULT_LANGUAGE}.po disagree: missing {missing or 'none'}, "
            f"only in {language}.po {extra or 'none'}"
        )
    for message_id, text in messages.items():
        found = placeholders(text)
        if found != expected[message_id]:
            raise CatalogueError(
                f"{language}.po, {message_id!r}: placeholders {sorted(found)}, "
                f"but {DEFAULT_LANGUAGE}.po has {sorted(expected[message_id])}"
            )
