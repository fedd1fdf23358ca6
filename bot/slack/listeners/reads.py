"""`/credit balance` and `/credit history`: answered privately, after the ack, through the
command's response_url. Balance reads SMS Partner (through the directory's caches, at most a
minute old); history reads the store only, asking the directory only to turn an e-mail into
its token.
"""

from __future__ import annotations

import logging

from bot.flow.commands import BalanceCommand, HistoryCommand
from bot.logs import log_event
from bot.slack import answers
from bot.slack.blocks import Message
from bot.smspartner.accounts import MainAccount, Subaccount
from bot.smspartner.directory import CARD_MAX_AGE_SECONDS, SubaccountDirectory
from bot.smspartner.errors import SMSPartnerError
from bot.store import Store
from bot.texts import Texts

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 10


def answer_read(
    command: BalanceCommand | HistoryCommand,
    *,
    directory: SubaccountDirectory,
    store: Store,
    texts: Texts,
) -> Message:
    """The ephemeral answer to a balance or history command. Raises the store's errors."""
    if isinstance(command, BalanceCommand):
        return _balance(texts, command, directory)
    return _history(texts, command, directory, store)


def _balance(texts: Texts, command: BalanceCommand, directory: SubaccountDirectory) -> Message:
    main = _main(directory)
    if command.subaccount is None:
        try:
            listed: tuple[Subaccount, ...] | None = directory.subaccounts(
                max_age=CARD_MAX_AGE_SECONDS
            )
        except SMSPartnerError as error:
            _unreadable("directory.unreadable", error)
            listed = None
        if main is None and listed is None:
            return answers.build_unreadable(texts)
        return answers.build_balances(texts, main, listed)
    try:
        found = directory.look_up(command.subaccount, max_age=CARD_MAX_AGE_SECONDS)
    except SMSPartnerError as error:
        _unreadable("directory.unreadable", error)
        return answers.build_unreadable(texts)
    if found.subaccount is None:
        return answers.build_not_found(texts, command.subaccount, found.close_matches)
    return answers.build_balance_of(texts, main, found.subaccount)


def _history(
    texts: Texts, command: HistoryCommand, directory: SubaccountDirectory, store: Store
) -> Message:
    token = command.subaccount
    if token is not None and command.by_email:
        try:
            found = directory.look_up(token)
        except SMSPartnerError as error:
            _unreadable("directory.unreadable", error)
            return answers.build_cannot_resolve(texts, token)
        if found.subaccount is None:
            return answers.build_not_found(texts, token, found.close_matches)
        token = found.subaccount.token
    requests = store.history(limit=HISTORY_LENGTH, subaccount_token=token)
    return answers.build_history(texts, requests, token)


def _main(directory: SubaccountDirectory) -> MainAccount | None:
    try:
        return directory.main_account(max_age=CARD_MAX_AGE_SECONDS)
    except SMSPartnerError as error:
        _unreadable("main_account.unreadable", error)
        return None


def _unreadable(event: str, error: SMSPartnerError) -> None:
    log_event(logger, event, level=logging.WARNING, error=type(error).__name__)
