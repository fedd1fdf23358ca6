"""The reasons the flow stores with a request that failed, ended unknown or was closed.

The database keeps English (`error_message`), for the audit trail and its operators; a card
is drawn from the reason's id, so a French card reads French. Each reason is a catalogue id:
its English is rendered from the English catalogue when stored, and read back into the id
(and its values) when a card is drawn.
"""

from __future__ import annotations

import functools
import re
import string
from decimal import Decimal

from bot.texts import DEFAULT_LANGUAGE, Texts, Wording

NOT_REACHED = "reason.not_reached"
BAD_ANSWER = "reason.bad_answer"
BOT_FAILED = "reason.bot_failed"
NOT_STARTED = "reason.not_started"
REPLICA_STOPPED = "reason.replica_stopped"
NOT_RECORDED = "reason.not_recorded"
# The SMS Partner client's own words for a transfer whose outcome is unknown.
NO_ANSWER = "reason.no_answer"
CONNECTION_CUT = "reason.connection_cut"
ANSWER_UNREADABLE = "reason.answer_unreadable"
SUCCESS_UNREADABLE = "reason.success_unreadable"
# Written by the store when a confirm would break the daily limit.
DAILY_LIMIT = "reason.daily_limit"
CARD_REFUSED = "reason.card_refused"
CARD_UNCONFIRMED = "reason.card_unconfirmed"
CARD_NEVER_POSTED = "reason.card_never_posted"

_REASONS = (
    NOT_REACHED,
    BAD_ANSWER,
    BOT_FAILED,
    NOT_STARTED,
    REPLICA_STOPPED,
    NOT_RECORDED,
    NO_ANSWER,
    CONNECTION_CUT,
    ANSWER_UNREADABLE,
    SUCCESS_UNREADABLE,
    DAILY_LIMIT,
    CARD_REFUSED,
    CARD_UNCONFIRMED,
    CARD_NEVER_POSTED,
)


def english(message_id: str, /, **values: object) -> str:
    """The reason as stored: English, whatever the bot's language."""
    return Texts.for_language(DEFAULT_LANGUAGE)(message_id, **values)


@functools.cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    texts = Texts.for_language(DEFAULT_LANGUAGE)
    found = []
    for message_id in _REASONS:
        pattern = ""
        seen = set()
        for literal, field, _spec, _conversion in string.Formatter().parse(
            texts.messages[message_id]
        ):
            pattern += re.escape(literal)
            if field is not None:
                pattern += f"(?P={field})" if field in seen else f"(?P<{field}>.*?)"
                seen.add(field)
        found.append((message_id, re.compile(pattern, re.DOTALL)))
    return tuple(found)


# An amount in a stored reason (`40.00 EUR`): read back as euros, so a card shows it in its
# language's digits.
_EUROS = re.compile(r"(\d+(?:\.\d+)?) EUR", re.ASCII)


def wording_of(stored: str) -> Wording | None:
    """The reason's id and values, read from its stored English; None for any other text."""
    for message_id, pattern in _patterns():
        match = pattern.fullmatch(stored)
        if match:
            return Wording.of(message_id, **{k: _value(v) for k, v in match.groupdict().items()})
    return None


def _value(text: str) -> str | Decimal:
    euros = _EUROS.fullmatch(text)
    return Decimal(euros.group(1)) if euros else text
