"""Builds the Bolt app and what stands behind it from the settings; registers the listeners."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from slack_bolt import App

from bot.config import Settings
from bot.flow.policy import Policy
from bot.flow.resolutions import Resolutions
from bot.flow.sweeper import Sweeper
from bot.flow.transfers import Transfers
from bot.logs import log_event
from bot.slack.blocks import CANCEL_ACTION_ID, COMMAND, CONFIRM_ACTION_ID
from bot.slack.cards import Cards
from bot.slack.listeners import unknown
from bot.slack.listeners.actions import make_action_listeners
from bot.slack.listeners.command import make_command_listeners
from bot.slack.listeners.home import HomeTab
from bot.slack.listeners.home import register as register_home
from bot.slack.reminders import make_reminder
from bot.slack.scheduling import Priorities
from bot.slack.usergroups import UserGroups
from bot.slack.web import slack_web_client
from bot.smspartner.client import CallRecord, SMSPartnerClient
from bot.smspartner.directory import SubaccountDirectory
from bot.store import Store
from bot.texts import Texts

logger = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 10
# A card post has surely ended (answered or timed out) this long after its request was stored.
UNPOSTED_CARD_SECONDS = 2 * SLACK_TIMEOUT_SECONDS
# Background work runs in separate, bounded pools, one per kind, so no kind can take the
# threads another needs, and few threads are runnable at once: each runnable thread is one
# more the ack (in waitress's request thread) waits behind for the interpreter.
# Transfers may each wait on SMS Partner for the whole timeout: enough of them that a
# burst of clicks reaches it at once, and a slow SMS Partner holds only this pool.
TRANSFER_THREADS = 32
# Work that reads SMS Partner, then answers in Slack: a command (its card), a Home tab,
# an unknown outcome checked or settled.
READ_THREADS = 8
# Work that only touches the database and Slack: cancels. Never waits on SMS Partner.
CARD_THREADS = 4
# How long card work (a command's card, a card update) may wait for the acks being answered
# and the clicks queued to be sent (bot.slack.scheduling): under a burst the acks and
# SMS Partner's calls come first, and a card is late by this much at most.
BACKGROUND_PATIENCE_SECONDS = 1.0


@dataclass(frozen=True)
class Pools:
    """The bounded thread pools behind the acks (card updates have Cards' own, sweeps
    their own thread)."""

    transfers: ThreadPoolExecutor
    reads: ThreadPoolExecutor
    cards: ThreadPoolExecutor

    @classmethod
    def start(cls) -> Pools:
        return cls(
            transfers=ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="credit-transfer"),
            reads=ThreadPoolExecutor(READ_THREADS, thread_name_prefix="credit-read"),
            cards=ThreadPoolExecutor(CARD_THREADS, thread_name_prefix="credit-card"),
        )

    def shutdown(self, *, wait: bool) -> None:
        for pool in (self.transfers, self.reads, self.cards):
            pool.shutdown(wait=wait)


@dataclass
class Bot:
    settings: Settings
    app: App
    store: Store
    transfers: Transfers
    cards: Cards
    sweeper: Sweeper
    pools: Pools
    # Who goes first in the interpreter: the HTTP server counts the acks it is answering.
    priorities: Priorities
    groups: UserGroups | None = None

    def start_background(self) -> None:
        """Learn the user groups' members, recover what a crash left behind, close overdue
        cards, then keep sweeping."""
        if self.groups is not None:
            try:
                self.groups.refresh(self.transfers.policy.groups)
            except Exception:
                # Slack away at start: the first clicks ask again; the bot still serves.
                logger.exception("listing the user groups failed")
        recovered = self.sweeper.sweep()
        log_event(
            logger, "bot.started", executor=self.transfers.executor_id, cards_replaced=recovered
        )
        self.sweeper.start()

    def drain(self, timeout: float) -> bool:
        """Stop taking transfers and wait for those in flight; True if all finished."""
        self.transfers.stop_accepting()
        self.sweeper.stop()
        finished = self.transfers.wait_idle(timeout)
        if not finished:
            # Outcomes still waiting for the database stay in the log line written at once.
            self.transfers.stop_recording()
        self.pools.shutdown(wait=finished)
        self.cards.close()
        log_event(logger, "bot.drained", finished=finished, in_flight=self.transfers.in_flight)
        return finished

    def close(self) -> None:
        self.store.close()


def build_bot(
    settings: Settings,
    *,
    migrate: bool = True,
    call_observer: Callable[[CallRecord], None] | None = None,
) -> Bot:
    """The app and what stands behind it; `call_observer` sees every SMS Partner call (metrics)."""
    store = Store.from_url(settings.database_url)
    if migrate:
        store.migrate()
    session = requests.Session()
    # Who hears of each SMS Partner call: the metrics, and the directory (below), whose
    # cached balances a transfer makes out of date.
    observers = [call_observer] if call_observer is not None else []
    client = SMSPartnerClient(
        api_key=settings.smspartner_api_key.reveal(),
        base_url=settings.smspartner_base_url,
        timeout=settings.smspartner_timeout_seconds,
        session=session,
        observer=lambda record: _tell_each(observers, record),
    )
    # One SSLContext and kept-alive connections for every Slack call; never a re-send by
    # itself (slack_sdk's default retry re-posted a card whose first post had gone through).
    web_client = slack_web_client(
        token=settings.slack_bot_token.reveal(),
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
    )
    groups = UserGroups(web_client)
    policy = Policy.from_settings(settings, members_of=groups.members)
    transfers = Transfers(
        store=store,
        client=client,
        policy=policy,
        ttl_seconds=settings.confirmation_ttl_seconds,
        api_timeout_seconds=settings.smspartner_timeout_seconds,
        daily_limit=settings.credit_daily_limit,
    )
    # The language of everything the bot writes (CREDIT_LANGUAGE), loaded once, immutable.
    texts = Texts.for_language(settings.credit_language)
    # Card work waits (briefly) for the acks and the clicks waiting to be sent.
    priorities = Priorities.with_patience(BACKGROUND_PATIENCE_SECONDS)
    cards = Cards(
        client=web_client,
        store=store,
        texts=texts,
        can_approve=policy.can_approve(),
        priorities=priorities,
    )
    pools = Pools.start()
    app = App(
        client=web_client,
        signing_secret=settings.slack_signing_secret.reveal(),
        # Checked once, before Bolt sees the request: every HTTP request reaches this app
        # through bot.server.SlackHttpApp, which answers 401 unless Slack's signature holds
        # (and refuses malformed headers Bolt's own check would raise on). Socket Mode
        # requests carry no signature. Serve this app through nothing else.
        request_verification_enabled=False,
        # The ack runs in the request thread (no polling for it); slow work goes to the pools.
        process_before_response=True,
        listener_executor=pools.cards,
    )
    home = HomeTab(
        client=web_client,
        store=store,
        policy=policy,
        main_account=client.main_account,
        texts=texts,
    )
    # Who a sub-account is and what it holds, read before a card and for /credit balance.
    directory = SubaccountDirectory(client, cache_seconds=settings.subaccount_cache_seconds)
    observers.append(directory.note_call)
    register_listeners(
        app,
        transfers=transfers,
        cards=cards,
        settings=settings,
        pools=pools,
        # The ack never waits on Slack: group members from the cache only.
        ack_policy=dataclasses.replace(policy, members_of=groups.known_members),
        home=home,
        directory=directory,
        priorities=priorities,
    )
    register_home(app, home=home, workers=pools.reads)
    sweeper = Sweeper(
        transfers=transfers,
        show_card=lambda request: cards.show(request, redraw=True),
        close_unposted=cards.close_unposted,
        interval_seconds=settings.sweep_interval_seconds,
        unposted_after_seconds=UNPOSTED_CARD_SECONDS,
        remind=make_reminder(web_client, policy.can_approve(), texts),
        remind_after_seconds=settings.credit_remind_after_seconds,
    )
    return Bot(
        settings=settings,
        app=app,
        store=store,
        transfers=transfers,
        cards=cards,
        sweeper=sweeper,
        pools=pools,
        groups=groups,
        priorities=priorities,
    )


def register_listeners(
    app: App,
    *,
    transfers: Transfers,
    cards: Cards,
    settings: Settings,
    pools: Pools,
    directory: SubaccountDirectory,
    priorities: Priorities,
    ack_policy: Policy | None = None,
    home: HomeTab | None = None,
) -> None:
    """Every Slack entry point, in one place.

    Each listener acks in the request thread, then hands the slow work to its kind's
    pool directly. Bolt's `lazy=` would do the same but deep-copies the whole request inside
    the ack path first (0.15 ms a command, 0.44 ms a click with its message: measured in
    bench/), which doubled our ack latency under load."""
    ack_command, open_request = make_command_listeners(
        transfers=transfers,
        cards=cards,
        directory=directory,
        max_amount=settings.credit_max_amount,
        require_reason=settings.credit_require_reason,
        ack_policy=ack_policy,
    )
    ack_click, confirm, cancel = make_action_listeners(
        transfers=transfers,
        cards=cards,
        refresh_home=home.publish if home else None,
        priorities=priorities,
    )

    @app.command(COMMAND)
    def on_command(ack: Any, command: dict[str, Any]) -> None:
        if ack_command(ack, command):
            pools.reads.submit(_in_turn, priorities, time.monotonic(), open_request, command)

    @app.action(CONFIRM_ACTION_ID)
    def on_confirm(ack: Any, body: dict[str, Any]) -> None:
        ack_click(ack)
        pools.transfers.submit(priorities.sends.accepted(), confirm, body)

    @app.action(CANCEL_ACTION_ID)
    def on_cancel(ack: Any, body: dict[str, Any]) -> None:
        ack_click(ack)
        pools.cards.submit(cancel, body)

    unknown.register(
        app,
        resolutions=Resolutions(
            store=transfers.store, directory=directory, policy=transfers.policy
        ),
        cards=cards,
        workers=pools.reads,
    )


def _in_turn(
    priorities: Priorities, asked_at: float, work: Callable[..., None], *args: Any
) -> None:
    priorities.wait_turn(asked_at)
    work(*args)


def _tell_each(observers: list[Callable[[CallRecord], None]], record: CallRecord) -> None:
    for observe in observers:
        observe(record)
