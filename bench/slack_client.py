"""Runs the app with a chosen Slack Web API client, so the bench can compare them.

    python bench/slack_client.py {stock,pooled} -- python -m bot run --http ...

(used as AppProcess's command_prefix). `stock` is slack_sdk's own WebClient as
bot/slack/app.py built it before bot/slack/web.py (a new connection, and over HTTPS a
new default SSLContext, per call); `pooled` is bot/slack/web.py's slack_web_client. Both
without automatic retries. It replaces the name `WebClient` in bot/slack/app.py only,
whichever client that file builds, then runs `python -m bot` with the rest of the line.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

from slack_sdk import WebClient

import bot.slack.app
from bot.slack.web import slack_web_client

CLIENTS = ("stock", "pooled")


def stock(*, token: str, base_url: str, timeout: int, **_: Any) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])


def pooled(*, token: str, base_url: str, timeout: int, **_: Any) -> WebClient:
    return slack_web_client(token=token, base_url=base_url, timeout=timeout)


def main() -> None:
    client, separator, *command = sys.argv[1:]
    if client not in CLIENTS or separator != "--" or command[1:3] != ["-m", "bot"]:
        raise SystemExit(__doc__)
    if hasattr(bot.slack.app, "slack_web_client"):  # once app.py calls the factory
        bot.slack.app.slack_web_client = stock if client == "stock" else pooled
    bot.slack.app.WebClient = stock if client == "stock" else pooled
    sys.argv = ["bot", *command[3:]]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
