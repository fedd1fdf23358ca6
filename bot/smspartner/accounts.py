"""What the read calls return, parsed once at the edge: the main account and the sub-accounts.

Balances stay the Decimal SMS Partner wrote ("10225.119", "0.800"), never a float. A listed
sub-account carries its own `apiKey`, a secret like ours: the parse never reads that field, so
it ends with the parsed JSON, and no value here can hold, log or show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from bot.smspartner.errors import BadAnswerError

PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class MainAccount:
    """The company's account (`GET /me`): where an add takes credit from."""

    balance: Decimal
    currency: str
    username: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class Subaccount:
    """One sub-account as `GET /subaccount/list` lists it, without its API key."""

    token: str
    email: str
    id: str
    type: str
    created_at: str  # as SMS Partner wrote it: the format is not documented
    balance: Decimal
    currency: str


@dataclass(frozen=True)
class SubaccountPage:
    """One page of the listing, with what the paging needs."""

    subaccounts: list[Subaccount]
    total: int | None
    per_page: int | None


def balance(value: object) -> Decimal | None:
    """A balance as SMS Partner wrote it, number or string, digits kept ("0.800" stays)."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and PLAIN_DECIMAL.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


def parse_main_account(fields: dict[str, object]) -> MainAccount:
    credits = _object(fields.get("credits"), "/me", "credits")
    user = fields.get("user")
    user = user if isinstance(user, dict) else {}
    return MainAccount(
        balance=_balance(credits, "/me"),
        currency=_text(credits.get("currency"), "/me", "credits.currency"),
        username=_optional_text(user.get("username")),
        first_name=_optional_text(user.get("firstname")),
        last_name=_optional_text(user.get("lastname")),
    )


def parse_subaccount_page(fields: dict[str, object]) -> SubaccountPage:
    where = "/subaccount/list"
    data = fields.get("data")
    if not isinstance(data, list):
        raise BadAnswerError(f"SMS Partner's {where} answer has no list of sub-accounts")
    return SubaccountPage(
        subaccounts=[_subaccount(item, where) for item in data],
        total=_count(fields.get("total")),
        per_page=_count(fields.get("nb_per_page")),
    )


def _subaccount(item: object, where: str) -> Subaccount:
    entry = _object(item, where, "data[]")
    credits = _object(entry.get("credits"), where, "credits")
    # Read field by field, never `**entry`: the entry's apiKey must go no further than here.
    return Subaccount(
        token=_text(entry.get("token"), where, "token"),
        email=_optional_text(entry.get("email")),
        id=_optional_text(entry.get("id")),
        type=_optional_text(entry.get("type")),
        created_at=_optional_text(entry.get("createdAt")),
        balance=_balance(credits, where),
        currency=_text(credits.get("currency"), where, "credits.currency"),
    )


def _object(value: object, where: str, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadAnswerError(f"SMS Partner's {where} answer has no readable {name}")
    return value


def _balance(credits: dict[str, object], where: str) -> Decimal:
    # `solde` is the same value under its French name: taken when `balance` is absent.
    found = balance(credits.get("balance", credits.get("solde")))
    if found is None:
        raise BadAnswerError(f"SMS Partner's {where} answer has no readable balance")
    return found


def _text(value: object, where: str, name: str) -> str:
    text = _optional_text(value)
    if not text:
        raise BadAnswerError(f"SMS Partner's {where} answer has no readable {name}")
    return text


def _optional_text(value: object) -> str:
    # Ids come as JSON numbers, parsed as Decimal: written back as their digits.
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    return value.strip() if isinstance(value, str) else ""


def _count(value: object) -> int | None:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value) if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
