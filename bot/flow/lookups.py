"""Before the card (SPEC.md §2.2): who the sub-account is, and whether the money is there.

The flow asks the sub-account directory, never Slack: the answer is either what the card will
show (`Seen`), or why no request is opened (`NotFound`, `Insufficient`, `CannotResolve`).
SMS Partner being unreadable never stops a request named by its token: the card then says the
balances are unavailable, and the transfer itself is unaffected.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from bot.domain import Action
from bot.flow.commands import CreditCommand, is_email
from bot.logs import log_event
from bot.smspartner.accounts import MainAccount, Subaccount
from bot.smspartner.directory import CARD_MAX_AGE_SECONDS, SubaccountDirectory
from bot.smspartner.errors import SMSPartnerError

logger = logging.getLogger(__name__)

# A refusal for want of money is made on a reading this fresh (the directory reads at most
# every few seconds, so "now" means "read in the last few seconds"): a balance cached for a
# minute may predate a transfer that just filled it.
REFUSAL_MAX_AGE_SECONDS = 0.0


@dataclass(frozen=True)
class Seen:
    """What the card shows before money moves; a None balance could not be read."""

    token: str
    email: str | None
    subaccount_balance: Decimal | None
    main_balance: Decimal | None
    currency: str | None
    at: dt.datetime | None


@dataclass(frozen=True)
class NotFound:
    """SMS Partner's list has no such token or e-mail, even after reading it again."""

    name: str
    close_matches: tuple[str, ...]


@dataclass(frozen=True)
class Insufficient:
    """The account the money would come from holds less than the amount."""

    action: Action
    balance: Decimal
    currency: str


@dataclass(frozen=True)
class CannotResolve:
    """An e-mail was given but the list could not be read: no token to send to."""

    name: str


Sighting = Seen | NotFound | Insufficient | CannotResolve


def look_before_card(
    directory: SubaccountDirectory,
    command: CreditCommand,
    *,
    now: dt.datetime | None = None,
) -> Sighting:
    """The sub-account and both balances, at most CARD_MAX_AGE_SECONDS old, or a refusal."""
    at = now or dt.datetime.now(dt.UTC)
    subaccount = _subaccount(directory, command.subaccount, CARD_MAX_AGE_SECONDS)
    if isinstance(subaccount, NotFound):
        return subaccount
    if subaccount is None and is_email(command.subaccount):
        return CannotResolve(command.subaccount)
    main = _main(directory, CARD_MAX_AGE_SECONDS)
    short = _short(subaccount, main, command)
    if short is not None:
        # Refused only on a fresh reading: the cached one may predate a transfer.
        fresh = _subaccount(directory, command.subaccount, REFUSAL_MAX_AGE_SECONDS)
        if isinstance(fresh, NotFound):
            return fresh
        # A fresh read that fails leaves the reading in hand, which was good enough for the card.
        subaccount = fresh or subaccount
        main = _main(directory, REFUSAL_MAX_AGE_SECONDS) or main
        short = _short(subaccount, main, command)
        if short is not None:
            return short
    currency = (main.currency if main else None) or (subaccount.currency if subaccount else None)
    return Seen(
        token=subaccount.token if subaccount else command.subaccount,
        email=subaccount.email or None if subaccount else None,
        subaccount_balance=subaccount.balance if subaccount else None,
        main_balance=main.balance if main else None,
        currency=currency,
        at=at if subaccount or main else None,
    )


def _subaccount(
    directory: SubaccountDirectory, name: str, max_age: float
) -> Subaccount | NotFound | None:
    """The listed sub-account; NotFound; None when the list cannot be read."""
    try:
        found = directory.look_up(name, max_age=max_age)
    except SMSPartnerError as error:
        log_event(logger, "directory.unreadable", level=logging.WARNING, error=type(error).__name__)
        return None
    if found.subaccount is None:
        return NotFound(name, found.close_matches)
    return found.subaccount


def _main(directory: SubaccountDirectory, max_age: float) -> MainAccount | None:
    try:
        return directory.main_account(max_age=max_age)
    except SMSPartnerError as error:
        log_event(
            logger, "main_account.unreadable", level=logging.WARNING, error=type(error).__name__
        )
        return None


def _short(
    subaccount: Subaccount | None, main: MainAccount | None, command: CreditCommand
) -> Insufficient | None:
    """The refusal when the source balance is known and below the amount."""
    source = main if command.action is Action.ADD else subaccount
    if source is None or source.balance >= command.amount:
        return None
    return Insufficient(command.action, source.balance, source.currency)
