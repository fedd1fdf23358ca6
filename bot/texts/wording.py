"""What the flow says, without saying it in any language: a message id and its values.

The flow (bot/flow) knows neither Slack nor the reader's language; where it has something to
tell a user (a refusal, a parser error) it returns a `Wording`, and the Slack layer renders it
with the process's `Texts`. A Decimal value is euros, written with every digit it has in the
language's own digits when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """Message `id` of the catalogues, with `values` for its placeholders (name, value)."""

    id: str
    values: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, message_id: str, /, **values: object) -> Wording:
        return cls(message_id, tuple(sorted(values.items())))
