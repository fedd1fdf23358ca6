"""The demo page: a Slack-like channel in the browser, and the JSON it polls and posts.

- `GET /` and `GET /static/…`: the page (plain HTML, CSS and JS shipped in bot/demo/static);
- `GET /demo/texts`: the page's own words in the demo's language (bot/demo/texts.py);
- `GET /demo/state?user=U…`: what that person sees now: the channel's messages and cards,
  their ephemeral messages, their App Home, the SMS Partner stand-in's balances (exact, and
  written the language's way), and the settings the demo gave the app;
- `POST /demo/command`, `/demo/click`, `/demo/home`: a person types `/credit …`, clicks a
  button, opens the Home tab. Each becomes the signed request Slack would send the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib import resources
from typing import Any

from bot.demo import seed
from bot.demo.slack_api import Message, ResponseTarget, SlackStandIn
from bot.demo.slack_events import Answer, SlackEvents
from bot.demo.smspartner_api import SMSPartnerStandIn
from bot.demo.texts import page_texts
from bot.demo.wsgi import StartResponse, not_found, read_request, respond, respond_json
from bot.texts.money import format_amount, format_balance

STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
}
COMMAND = "/credit"
PEOPLE = {person.user_id: person for person in seed.PEOPLE}


class DemoPage:
    def __init__(
        self,
        *,
        slack: SlackStandIn,
        smspartner: SMSPartnerStandIn,
        events: SlackEvents,
        ready: Callable[[], bool],
        language: str = "en",
        remind_after_seconds: float = seed.REMIND_AFTER_SECONDS,
    ) -> None:
        self.slack = slack
        self.smspartner = smspartner
        self.events = events
        self.ready = ready
        self.language = language
        self.texts = page_texts(language)
        self.remind_after_seconds = remind_after_seconds

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = read_request(environ)
        if request.method == "GET":
            if request.path == "/":
                return _static(start_response, "index.html")
            if request.path.startswith("/static/"):
                return _static(start_response, request.path.removeprefix("/static/"))
            if request.path == "/demo/texts":
                return respond_json(
                    start_response, {"language": self.language, "texts": dict(self.texts)}
                )
            if request.path == "/demo/state":
                # Without a user: the requester, who is where a visitor starts.
                person = PEOPLE.get(request.query.get("user") or seed.REQUESTER.user_id)
                if person is None:
                    return respond_json(
                        start_response, {"error": "unknown user"}, "400 Bad Request"
                    )
                return respond_json(start_response, self.state(person))
            return not_found(start_response)
        if request.method != "POST":
            return respond_json(start_response, {"error": "GET or POST"}, "405 Method Not Allowed")
        fields = request.json()
        fields = fields if isinstance(fields, dict) else {}
        person = PEOPLE.get(str(fields.get("user", "")))
        if person is None:
            return respond_json(start_response, {"error": "unknown user"}, "400 Bad Request")
        if not self.ready():
            # Shown to the visitor by the message box: in the page's language.
            return respond_json(
                start_response,
                {"error": self.texts["timeline.starting"]},
                "503 Service Unavailable",
            )
        if request.path == "/demo/command":
            return respond_json(start_response, self.command(person, str(fields.get("text", ""))))
        if request.path == "/demo/click":
            return respond_json(start_response, self.click(person, fields))
        if request.path == "/demo/home":
            return respond_json(start_response, self.open_home(person))
        return not_found(start_response)

    # -- what a person sees ----------------------------------------------------------------

    def state(self, viewer: seed.Person) -> dict[str, Any]:
        timeline = self.slack.timeline(seed.CHANNEL_ID, viewer.user_id)
        home = self.slack.home(viewer.user_id)
        balances = self._shown(self.smspartner.balances())
        return {
            "ready": self.ready(),
            "language": self.language,
            "settings": self._settings(),
            "version": f"{self.slack.version}.{balances['version']}",
            "viewer": viewer.user_id,
            "channel": {"id": seed.CHANNEL_ID, "name": seed.CHANNEL_NAME},
            "bot": {"id": seed.BOT_USER_ID, "name": seed.BOT_NAME},
            "people": [{"id": p.user_id, "name": p.name, "role": p.role} for p in seed.PEOPLE],
            "usergroups": {seed.APPROVERS_GROUP_ID: seed.APPROVERS_GROUP_HANDLE},
            "messages": _threaded(timeline),
            "home": {"id": home.id, "blocks": home.view.get("blocks", [])} if home else None,
            "balances": balances,
        }

    def _shown(self, balances: dict[str, Any]) -> dict[str, Any]:
        """Each exact balance also written the language's way (fr `2 869,200 EUR`)."""
        currency = balances["currency"]

        def shown(value: str) -> str:
            return format_balance(Decimal(value), currency, language=self.language)

        balances["main_shown"] = shown(balances["main"])
        for sub in balances["subaccounts"]:
            sub["shown"] = shown(sub["balance"])
        for move in balances["moves"]:
            move["shown"] = shown(move["credit"])
        return balances

    def _settings(self) -> dict[str, str]:
        """The settings the demo gave the app, written out for the panel and the hints."""

        def amount(value: Decimal) -> str:
            return format_amount(value, seed.CURRENCY, language=self.language)

        return {
            "group": seed.APPROVERS_GROUP_HANDLE,
            "members": ", ".join(p.name for p in seed.APPROVERS),
            "second_approval_above": amount(seed.SECOND_APPROVAL_ABOVE),
            "max_amount": amount(seed.MAX_AMOUNT),
            "daily_limit": amount(seed.DAILY_LIMIT),
            "remind_after": f"{self.remind_after_seconds:g}",
            "timeout": f"{seed.SMSPARTNER_TIMEOUT_SECONDS:g}",
        }

    # -- what a person does ----------------------------------------------------------------

    def command(self, person: seed.Person, typed: str) -> dict[str, Any]:
        typed = typed.strip()
        word, _, text = typed.partition(" ")
        if word != COMMAND:
            return {"ok": False, "error": self.texts["composer.only"].format(command=COMMAND)}
        self.slack.show_typed_command(user_id=person.user_id, channel=seed.CHANNEL_ID, text=typed)
        answer = self.events.command(person, seed.CHANNEL_ID, text.strip())
        if answer.status == 200 and isinstance(answer.body, dict):
            # An ack with a body is Slack's ephemeral (or in_channel) answer to the command.
            self.slack.respond(
                ResponseTarget(user_id=person.user_id, channel=seed.CHANNEL_ID), answer.body
            )
        elif answer.status != 200:
            self._tell_failure(
                person, self.texts["failure.command"].format(command=COMMAND), answer
            )
        return {"ok": answer.status == 200, "status": answer.status}

    def click(self, person: seed.Person, fields: dict[str, Any]) -> dict[str, Any]:
        block_id, action_id = str(fields.get("block_id", "")), str(fields.get("action_id", ""))
        if fields.get("where") == "home":
            home = self.slack.home(person.user_id)
            if home is None:
                return {"ok": False, "error": "no Home tab yet"}
            action = _button(home.view.get("blocks", []), block_id, action_id)
            if action is None:
                return {"ok": False, "error": "no such button"}
            answer = self.events.click_in_home(person, home, action)
        else:
            message = self.slack.message(seed.CHANNEL_ID, str(fields.get("ts", "")))
            if message is None or message.ephemeral_to not in (None, person.user_id):
                return {"ok": False, "error": "no such message"}
            action = _button(message.blocks, block_id, action_id)
            if action is None:
                return {"ok": False, "error": "no such button"}
            answer = self.events.click_in_message(person, message, action)
        if answer.status != 200:
            self._tell_failure(person, self.texts["failure.click"], answer)
        return {"ok": answer.status == 200, "status": answer.status}

    def open_home(self, person: seed.Person) -> dict[str, Any]:
        answer = self.events.home_opened(person, self.slack.home(person.user_id))
        # 404: this version of the app has no App Home yet; the page says so.
        return {"ok": answer.status == 200, "status": answer.status}

    def _tell_failure(self, person: seed.Person, what: str, answer: Answer) -> None:
        """What Slack shows when the app did not answer right: an ephemeral line."""
        self.slack.respond(
            ResponseTarget(user_id=person.user_id, channel=seed.CHANNEL_ID),
            {"text": self.texts["failure.http"].format(what=what, status=answer.status)},
        )


def _button(blocks: list[Any], block_id: str, action_id: str) -> dict[str, Any] | None:
    """The clicked button as Slack describes it in the payload, from the blocks shown."""
    for block in blocks:
        if not isinstance(block, dict) or block.get("block_id", "") != block_id:
            continue
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                action = {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": element.get("text"),
                    "value": element.get("value", ""),
                }
                if element.get("style"):
                    action["style"] = element["style"]
                return action
    return None


def _threaded(timeline: list[Message]) -> list[dict[str, Any]]:
    """Top-level messages in order, each with its thread replies."""
    shown: list[dict[str, Any]] = []
    by_ts: dict[str, dict[str, Any]] = {}
    for message in timeline:
        item = {
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks,
            "ephemeral": message.ephemeral_to is not None,
            "kind": message.kind,
            "edited": message.edited,
            "replies": [],
        }
        parent = by_ts.get(message.thread_ts or "")
        if parent is not None and message.thread_ts != message.ts:
            parent["replies"].append(item)
        else:
            by_ts[message.ts] = item
            shown.append(item)
    return shown


def _static(start_response: StartResponse, name: str) -> list[bytes]:
    content_type = STATIC_TYPES.get(name)
    if content_type is None:
        return not_found(start_response)
    body = resources.files("bot.demo").joinpath("static", name).read_bytes()
    return respond(start_response, body, content_type)
