"""`python -m bot.demo` as a visitor meets it: the page's JSON, then a real headless Chromium.

One demo process serves the whole module (its state carries from one test to the next, as
it does for a visitor); each test finds its own card by its own sub-account or reason, so none
depends on another. Reminders come after REMIND_AFTER seconds here, so a test can see one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.demo import seed

CHROMIUM = "/usr/bin/chromium"
# The flags that work in this sandbox; none of them reaches the network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_SECONDS = 30.0
WAIT_SECONDS = 15.0
# An unknown outcome takes the demo's SMS Partner timeout, then the sweep: generous, as waits.
UNKNOWN_SECONDS = 30.0
REMIND_AFTER = "2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoProcess:
    def __init__(self, workdir: Path, *flags: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "demo.log"
        self.out = workdir / "demo.out"
        with self.log.open("wb") as err, self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot.demo",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "INFO",
                    "--remind-after",
                    REMIND_AFTER,
                    *flags,
                ],
                cwd=workdir,  # no stray .env is read (the demo reads none anyway)
                env={
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith(("SLACK_", "SMSPARTNER_"))
                },
                stdout=out,
                stderr=err,
            )
        self.wait_until(lambda: self.state()["ready"], STARTUP_SECONDS)

    def state(self, user: str = seed.REQUESTER.user_id) -> dict[str, Any]:
        if self.process.poll() is not None:
            raise AssertionError(f"demo exited with {self.process.returncode}:\n{self.logs()}")
        try:
            response = requests.get(f"{self.url}/demo/state", params={"user": user}, timeout=5)
        except requests.ConnectionError:
            return {"ready": False, "messages": []}
        return dict(response.json()) if response.status_code == 200 else {"ready": False}

    def post(self, path: str, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.url}{path}", json=body, timeout=15)
        return dict(response.json())

    def wait_until(self, condition: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"condition not met in {timeout} s; demo log:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess(tmp_path_factory.mktemp("demo"))
    try:
        yield process
    finally:
        process.stop()


def _card_about(state: dict[str, Any], token: str, reason: str = "") -> dict[str, Any] | None:
    """The first channel card about sub-account `token` (and with `reason`, if given)."""
    for message in state["messages"]:
        shown = str(message["blocks"])
        if not message["ephemeral"] and f"`{token}`" in shown and reason in shown:
            return dict(message)
    return None


def _click(demo: DemoProcess, person: seed.Person, card: dict[str, Any], action_id: str) -> None:
    """`person` clicks the card's button `action_id`, wherever the card has it."""
    block_id = next(
        b["block_id"]
        for b in card["blocks"]
        if b["type"] == "actions" and action_id in str(b["elements"])
    )
    answer = demo.post(
        "/demo/click",
        user=person.user_id,
        where="message",
        ts=card["ts"],
        block_id=block_id,
        action_id=action_id,
    )
    assert answer["ok"], answer


def _command(demo: DemoProcess, person: seed.Person, text: str) -> None:
    answer = demo.post("/demo/command", user=person.user_id, text=text)
    assert answer["ok"], answer


def _texts(state: dict[str, Any], *, ephemeral: bool) -> list[str]:
    """The app's messages (not the commands typed) that are, or are not, ephemeral."""
    return [
        str(m["blocks"]) + m["text"]
        for m in state["messages"]
        if m["ephemeral"] is ephemeral and m["kind"] == "message"
    ]


def _balance(state: dict[str, Any], token: str) -> str:
    return next(s["balance"] for s in state["balances"]["subaccounts"] if s["token"] == token)


# -- the page's JSON, as the page's script uses it ------------------------------------------


def test_demo_prints_its_url_and_serves_the_page(demo: DemoProcess) -> None:
    """The URL is printed on stdout; the page and its script and styles are served."""
    assert f"{demo.url}/" in demo.out.read_text()
    page = requests.get(f"{demo.url}/", timeout=5)
    assert page.status_code == 200 and "credit-bot demo" in page.text
    for name in ("demo.js", "demo.css"):
        assert requests.get(f"{demo.url}/static/{name}", timeout=5).status_code == 200
    assert requests.get(f"{demo.url}/static/../server.py", timeout=5).status_code == 404


def test_a_command_then_a_confirm_moves_the_credit(demo: DemoProcess) -> None:
    """The requester's command posts a card; an approver's click moves the money once."""
    before = demo.state()
    assert demo.post(
        "/demo/command", user=seed.REQUESTER.user_id, text="/credit add newsletter 10,5"
    )["ok"]
    card = demo.wait_until(lambda: _card_about(demo.state(), "newsletter"))
    assert "credit_confirm" in str(card["blocks"])
    clicked = demo.post(
        "/demo/click",
        user=seed.APPROVER_1.user_id,
        where="message",
        ts=card["ts"],
        block_id="credit_actions",
        action_id="credit_confirm",
    )
    assert clicked["ok"]
    done = demo.wait_until(
        lambda: (c := _card_about(demo.state(), "newsletter")) and "Added" in str(c["blocks"]) and c
    )
    assert "255.625 EUR" in str(done["blocks"])  # 245.125 + 10.50, three decimals kept
    after = demo.state()
    assert _balance(after, "newsletter") == "255.625"
    assert after["balances"]["main"] == "2858.700"
    assert len(after["balances"]["moves"]) == len(before["balances"]["moves"]) + 1


def test_an_outsiders_click_is_refused_privately(demo: DemoProcess) -> None:
    """Someone not allowed gets an ephemeral refusal; the card stays; nobody else sees it."""
    demo.post("/demo/command", user=seed.REQUESTER.user_id, text="/credit add support-team 5")
    card = demo.wait_until(lambda: _card_about(demo.state(), "support-team"))
    refusals_before = len(_texts(demo.state(seed.OUTSIDER.user_id), ephemeral=True))
    demo.post(
        "/demo/click",
        user=seed.OUTSIDER.user_id,
        where="message",
        ts=card["ts"],
        block_id="credit_actions",
        action_id="credit_confirm",
    )
    refusal = demo.wait_until(
        lambda: _texts(demo.state(seed.OUTSIDER.user_id), ephemeral=True)[refusals_before:]
    )
    assert "not" in refusal[0].lower()
    # Unchanged, buttons kept (a reminder may have come in its thread meanwhile).
    assert _card_about(demo.state(), "support-team")["blocks"] == card["blocks"]
    assert not any(
        text in refusal for text in _texts(demo.state(seed.APPROVER_1.user_id), ephemeral=True)
    )
    assert _balance(demo.state(), "support-team") == "12.050"


def test_a_malformed_command_gets_usage_only_for_its_author(demo: DemoProcess) -> None:
    """The app's ephemeral ack is shown to who typed it, with what they typed above it."""
    demo.post("/demo/command", user=seed.OUTSIDER.user_id, text="/credit add lyon-store -3")
    mine = demo.state(seed.OUTSIDER.user_id)["messages"]
    assert any(m["kind"] == "command" and m["text"] == "/credit add lyon-store -3" for m in mine)
    assert any("Usage" in m["text"] for m in mine if m["ephemeral"])
    theirs = demo.state(seed.REQUESTER.user_id)["messages"]
    assert not any("lyon-store -3" in m["text"] for m in theirs)


def test_the_page_is_told_the_settings_that_make_every_feature_show(demo: DemoProcess) -> None:
    """The approvers are a user group, two approve above 500 EUR, a daily limit and reminders
    are on: the page lists them, and every seeded sub-account is in the panel."""
    state = demo.state()
    assert state["language"] == "en"
    assert state["settings"]["group"] == seed.APPROVERS_GROUP_HANDLE
    assert state["settings"]["second_approval_above"] == "500.00 EUR"
    assert state["settings"]["daily_limit"] == "800.00 EUR"
    assert state["settings"]["remind_after"] == REMIND_AFTER
    tokens = [s["token"] for s in state["balances"]["subaccounts"]]
    assert tokens == [s.token for s in seed.SUBACCOUNTS]
    texts = requests.get(f"{demo.url}/demo/texts", timeout=5).json()
    assert texts["language"] == "en"
    assert all(f"subaccount.{token}" in texts["texts"] for token in tokens)


def test_a_pending_card_gets_its_reminder_in_its_thread(demo: DemoProcess) -> None:
    """Left alone, a card gets one reply in its thread that mentions the approvers' group:
    the group the app resolved through usergroups.users.list."""
    _command(demo, seed.REQUESTER, "/credit add paris-store 7 waiting for a reminder")
    card = demo.wait_until(
        lambda: (
            (c := _card_about(demo.state(), "paris-store", "waiting for a reminder"))
            and c["replies"]
            and c
        )
    )
    assert f"<!subteam^{seed.APPROVERS_GROUP_ID}>" in str(card["blocks"])  # "Can approve"
    (reminder,) = card["replies"]
    assert f"<!subteam^{seed.APPROVERS_GROUP_ID}>" in reminder["text"]
    assert not reminder["ephemeral"]


def test_the_daily_limit_refuses_at_the_command(demo: DemoProcess) -> None:
    """More than 800 EUR added to one sub-account in 24 hours: a private refusal, no card."""
    before = len(_texts(demo.state(), ephemeral=True))
    _command(demo, seed.REQUESTER, "/credit add support-team 900 over the daily limit")
    refusal = demo.wait_until(lambda: _texts(demo.state(), ephemeral=True)[before:])
    assert "800.00 EUR" in refusal[0]  # what may still be added
    assert _card_about(demo.state(), "support-team", "over the daily limit") is None


def test_balance_and_history_answer_privately(demo: DemoProcess) -> None:
    """`/credit balance` lists the sub-accounts; `/credit history` the latest requests;
    both to their author only."""
    before = len(_texts(demo.state(seed.APPROVER_2.user_id), ephemeral=True))
    _command(demo, seed.APPROVER_2, "/credit balance")
    _command(demo, seed.APPROVER_2, "/credit history")
    answers = demo.wait_until(
        lambda: (
            (a := _texts(demo.state(seed.APPROVER_2.user_id), ephemeral=True)[before:])
            and len(a) == 2
            and a
        )
    )
    # Either may come first: the balance is read from SMS Partner after the ack.
    assert any("night-batch" in answer for answer in answers)
    assert not any("Usage" in answer for answer in answers)
    assert not any(t in _texts(demo.state(), ephemeral=True) for t in answers)


def test_a_typo_gets_close_matches_and_an_email_works_as_a_token(demo: DemoProcess) -> None:
    """`pari-store` is not in SMS Partner's list: a private answer naming `paris-store`, no
    card; the sub-account's e-mail finds it as its token does."""
    person = seed.OUTSIDER
    before = len(_texts(demo.state(person.user_id), ephemeral=True))
    _command(demo, person, "/credit add pari-store 5")
    (typo,) = demo.wait_until(lambda: _texts(demo.state(person.user_id), ephemeral=True)[before:])
    assert "paris-store" in typo
    assert _card_about(demo.state(), "pari-store") is None
    _command(demo, person, "/credit balance paris@acme-shop.example")
    answer = demo.wait_until(
        lambda: _texts(demo.state(person.user_id), ephemeral=True)[before + 1 :]
    )
    assert "EUR" in answer[0] and "Usage" not in answer[0]


def test_a_transfer_whose_answer_never_comes_is_settled_by_hand(demo: DemoProcess) -> None:
    """night-batch: SMS Partner moves the money but answers too late, so the card says the
    outcome is unknown with its three buttons; Check balances shows the moved balance to who
    clicked; an approver's "It went through" settles it. Nothing is sent twice."""
    after = f"{Decimal(_balance(demo.state(), 'night-batch')) + 25:.3f}"
    _command(demo, seed.REQUESTER, "/credit add night-batch 25")
    card = demo.wait_until(lambda: _card_about(demo.state(), "night-batch"))
    _click(demo, seed.APPROVER_1, card, "credit_confirm")
    unknown = demo.wait_until(
        lambda: (
            (c := _card_about(demo.state(), "night-batch"))
            and "credit_resolve_done" in str(c["blocks"])
            and c
        ),
        UNKNOWN_SECONDS,
    )
    assert "credit_check_balance" in str(unknown["blocks"])
    assert "credit_resolve_not_done" in str(unknown["blocks"])
    assert _balance(demo.state(), "night-batch") == after  # it did go through

    notes = len(_texts(demo.state(), ephemeral=True))
    _click(demo, seed.REQUESTER, unknown, "credit_check_balance")
    note = demo.wait_until(lambda: _texts(demo.state(), ephemeral=True)[notes:])
    assert f"{after} EUR" in note[0]

    _click(demo, seed.APPROVER_2, unknown, "credit_resolve_done")
    settled = demo.wait_until(
        lambda: (
            (c := _card_about(demo.state(), "night-batch"))
            and "credit_resolve_done" not in str(c["blocks"])
            and c
        )
    )
    assert f"<@{seed.APPROVER_2.user_id}>" in str(settled["blocks"])
    moves = [m for m in demo.state()["balances"]["moves"] if m["token"] == "night-batch"]
    assert len(moves) == 1


def test_only_credit_commands_are_sent(demo: DemoProcess) -> None:
    """Anything but /credit is refused by the page itself; nothing reaches the app."""
    answer = demo.post("/demo/command", user=seed.REQUESTER.user_id, text="/remind me")
    assert answer == {"ok": False, "error": "Only /credit works in this demo."}


def test_a_click_on_a_button_the_message_does_not_have_is_refused(demo: DemoProcess) -> None:
    """The page can only press buttons the message shows: values come from the blocks."""
    answer = demo.post(
        "/demo/click",
        user=seed.APPROVER_1.user_id,
        where="message",
        ts="1.000001",
        block_id="credit_actions",
        action_id="credit_confirm",
    )
    assert answer == {"ok": False, "error": "no such message"}


def test_opening_the_home_tab_sends_the_event_through_the_app(demo: DemoProcess) -> None:
    """app_home_opened goes to the app signed; the page learns whether a view came back."""
    answer = demo.post("/demo/home", user=seed.APPROVER_2.user_id)
    assert answer["status"] in (200, 404)  # 404: this version of the app has no Home tab
    if answer["status"] == 404:
        assert demo.state(seed.APPROVER_2.user_id)["home"] is None
    else:  # the app publishes the view from a worker, after its ack
        demo.wait_until(lambda: demo.state(seed.APPROVER_2.user_id)["home"] is not None)


def test_no_secret_reaches_the_page(demo: DemoProcess) -> None:
    """The page's state holds no token, signing secret or API key (the demo makes its own)."""
    shown = json.dumps(demo.state()) + requests.get(f"{demo.url}/", timeout=5).text
    assert "xoxb-" not in shown
    assert "apiKey" not in shown


def test_sigterm_stops_the_demo_cleanly(tmp_path: Path) -> None:
    """SIGTERM: the app drains, the server stops, the temporary database goes; exit 0."""
    process = DemoProcess(tmp_path)
    assert process.stop() == 0
    assert '"demo.stopped"' in process.logs()
    assert "Traceback" not in process.logs()
    ready = next(json.loads(line) for line in process.logs().splitlines() if '"demo.ready"' in line)
    assert not Path(ready["folder"]).exists()


# -- a real browser -------------------------------------------------------------------------


def _shot(page: Any, folder: Path, name: str) -> Path:
    """A screenshot in the test's folder, also copied to $DEMO_SCREENSHOTS when set."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    kept = os.environ.get("DEMO_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(kept) / path.name)
    return path


def _card_in_page(page: Any, expect: Any, text: str) -> Any:
    """The newest channel card showing `text`, pinned by its ts: it stays the same card as
    its text changes (approved, succeeded), as a visitor's eye follows it."""
    cards = page.locator("#timeline > .message.from-app:not(.ephemeral)", has_text=text)
    expect(cards.last.get_by_role("button", name="Confirm")).to_be_visible(timeout=15_000)
    ts = cards.last.get_attribute("data-ts")
    return page.locator(f'#timeline > .message[data-ts="{ts}"]')


def _chromium_page(playwright: Any) -> Any:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    return browser, browser.new_page(viewport={"width": 1440, "height": 900})


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_a_visitor_completes_a_transfer_in_chromium(
    demo: DemoProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Type as the requester, confirm as an approver through the dialog, see the new
    balances on the card and in the panel; an outsider's click is refused privately."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    alex_notes = len(_texts(demo.state(seed.APPROVER_1.user_id), ephemeral=True))
    jordan_notes = len(_texts(demo.state(seed.OUTSIDER.user_id), ephemeral=True))
    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        try:
            page.goto(f"{demo.url}/")
            page.get_by_role("radio", name="camille").click()
            page.get_by_label("Message #finance-credit").fill("/credit add paris-store 50")
            page.get_by_role("button", name="Send").click()
            card = _card_in_page(page, expect, "add 50.00 EUR")
            expect(card).to_contain_text("@camille asks to add 50.00 EUR")
            shots = [_shot(page, tmp_path, "demo-card")]
            before_main = page.locator("#main-balance").inner_text()
            assert before_main.startswith("2")

            page.get_by_role("radio", name="jordan").click()
            expect(card.get_by_role("button", name="Confirm")).to_be_visible()
            card.get_by_role("button", name="Confirm").click()
            page.get_by_role("button", name="Yes, move it").click()
            notes = page.locator(".message.from-app.ephemeral")
            expect(notes).to_have_count(jordan_notes + 1, timeout=15_000)
            expect(notes.last).to_contain_text("Only visible to you")
            expect(card.get_by_role("button", name="Confirm")).to_be_visible()

            page.get_by_role("radio", name="alex").click()
            # jordan's refusal is not among alex's
            expect(page.locator(".message.from-app.ephemeral")).to_have_count(alex_notes)
            card.get_by_role("button", name="Confirm").click()
            expect(page.get_by_role("dialog")).to_contain_text("paris-store")
            shots.append(_shot(page, tmp_path, "demo-dialog"))
            page.get_by_role("button", name="Yes, move it").click()
            expect(card).to_contain_text("Added 50.00 EUR", timeout=15_000)
            expect(card).to_contain_text("111.800 EUR")  # 61.800 + 50, three decimals kept
            expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
            paris = page.locator("#subaccounts tr", has_text="paris-store")
            expect(paris).to_contain_text("111.800 EUR")
            expect(page.locator("#main-balance")).not_to_have_text(before_main)
            expect(page.locator("#moves")).to_contain_text("+50.000 EUR")

            page.get_by_role("radio", name="jordan").click()
            expect(page.locator(".message.from-app.ephemeral")).to_have_count(jordan_notes + 1)
            shots.append(_shot(page, tmp_path, "demo-refused"))
            page.get_by_role("radio", name="alex").click()
            expect(page.locator(".message.from-app.ephemeral")).to_have_count(alex_notes)
            shots.append(_shot(page, tmp_path, "demo-transfer"))
            with capsys.disabled():
                print("\ndemo screenshots: " + " ".join(str(shot) for shot in shots))
        finally:
            browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_the_pages_mrkdwn_draws_what_slack_draws(demo: DemoProcess) -> None:
    """Mentions as @names, groups, dates with their fallback, code kept literal, Slack's
    three escapes shown as characters, and no HTML from the text ever interpreted."""
    sync_api = pytest.importorskip("playwright.sync_api")
    cases = {
        "*Amount* _soon_ ~old~": "Amount soon old",
        "<@U0ALEX> and <!subteam^S0APPROVERS>": "@alex and @credit-approvers",
        "`a_b*c*` &lt;!channel&gt; &amp;": "a_b*c* <!channel> &",
        ":white_check_mark: :no_such_emoji:": "✅ :no_such_emoji:",
        "<!date^1700000000^{nonsense}|2023-11-14 22:13 UTC>": "2023-11-14 22:13 UTC",
        "<img src=x onerror=alert(1)>": "<img src=x onerror=alert(1)>",
    }
    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        try:
            page.goto(f"{demo.url}/")
            # Names come with the page's first state: mentions drawn before it stay ids.
            page.wait_for_function("typeof mrkdwn === 'function' && state.data !== null")
            for source, shown in cases.items():
                html = page.evaluate("(text) => mrkdwn(text)", source)
                text = page.evaluate(
                    "(html) => { const d = document.createElement('div'); d.innerHTML = html;"
                    " return [d.textContent, d.querySelectorAll('img,script').length]; }",
                    html,
                )
                assert text[1] == 0, html
                assert text[0] == shown, (source, html)
            styled = page.evaluate("mrkdwn('*Amount* _soon_ ~old~ snake_case_word')")
            assert styled == "<b>Amount</b> <i>soon</i> <s>old</s> snake_case_word"
        finally:
            browser.close()


def _confirm_through_dialog(page: Any, card: Any) -> None:
    card.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Yes, move it").click()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_above_500_eur_two_approvers_confirm_in_chromium(
    demo: DemoProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """600 EUR with a reason: alex's Confirm makes the card "approved by @alex (1 of 2)"
    with its buttons kept; sam's makes the one transfer; the result names both approvers.
    The reminder comes in the card's thread, drawn under it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        try:
            page.goto(f"{demo.url}/")
            page.get_by_role("radio", name="camille").click()
            page.get_by_role(
                "button", name="/credit add black-friday 600 Black Friday push"
            ).click()
            page.get_by_role("button", name="Send").click()
            card = _card_in_page(page, expect, "Black Friday push")
            expect(card).to_contain_text("600.00 EUR")
            expect(card).to_contain_text("@credit-approvers")
            expect(card.locator(".thread-count")).to_have_text("1 reply", timeout=15_000)
            expect(card.locator(".thread")).to_contain_text("still waiting")
            shots = [_shot(page, tmp_path, "demo-large-card")]

            page.get_by_role("radio", name="alex").click()
            _confirm_through_dialog(page, card)
            expect(card).to_contain_text("(1 of 2)", timeout=15_000)
            expect(card.get_by_role("button", name="Confirm")).to_be_visible()
            shots.append(_shot(page, tmp_path, "demo-one-of-two"))
            assert _balance(demo.state(), "black-friday") == "1310.250"  # nothing moved yet

            page.get_by_role("radio", name="sam").click()
            _confirm_through_dialog(page, card)
            expect(card).to_contain_text("Added 600.00 EUR", timeout=15_000)
            expect(card).to_contain_text("@alex")
            expect(card).to_contain_text("@sam")
            expect(card).to_contain_text("1910.250 EUR")
            expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
            expect(page.locator("#subaccounts tr", has_text="black-friday")).to_contain_text(
                "1910.250 EUR"
            )
            shots.append(_shot(page, tmp_path, "demo-two-approvals"))
            with capsys.disabled():
                print("\ndemo screenshots: " + " ".join(str(shot) for shot in shots))
        finally:
            browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_a_confirm_on_the_home_tab_updates_the_channel_card_in_chromium(
    demo: DemoProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sam opens the Home tab, sees the request waiting for approval and confirms it there;
    the card in the channel becomes the success card, and the Home tab no longer lists it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        try:
            page.goto(f"{demo.url}/")
            page.get_by_role("radio", name="camille").click()
            page.get_by_label("Message #finance-credit").fill(
                "/credit add lyon-store 15 from the Home tab"
            )
            page.get_by_role("button", name="Send").click()
            card = _card_in_page(page, expect, "from the Home tab")

            page.get_by_role("radio", name="sam").click()
            page.locator("#nav-home").click()
            entry = page.locator("#home .block.section", has_text="from the Home tab")
            expect(entry).to_be_visible(timeout=15_000)
            buttons = entry.locator("xpath=following-sibling::div[contains(@class,'actions')][1]")
            shots = [_shot(page, tmp_path, "demo-home")]
            buttons.get_by_role("button", name="Confirm").click()
            page.get_by_role("button", name="Yes, move it").click()
            expect(entry).to_have_count(0, timeout=15_000)

            page.locator("#nav-channel").click()
            expect(card).to_contain_text("Added 15.00 EUR", timeout=15_000)
            expect(card).to_contain_text("@sam")
            expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
            shots.append(_shot(page, tmp_path, "demo-home-confirmed"))
            with capsys.disabled():
                print("\ndemo screenshots: " + " ".join(str(shot) for shot in shots))
        finally:
            browser.close()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_an_unknown_outcome_is_settled_in_chromium(
    demo: DemoProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """night-batch never answers in time: the card offers Check balances, It went through,
    It did not; Check balances answers privately; It went through settles the card."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        try:
            page.goto(f"{demo.url}/")
            page.get_by_role("radio", name="camille").click()
            page.get_by_label("Message #finance-credit").fill("/credit add night-batch 12")
            page.get_by_role("button", name="Send").click()
            card = _card_in_page(page, expect, "12.00 EUR")
            page.get_by_role("radio", name="alex").click()
            notes = page.locator("#timeline > .message.from-app.ephemeral")
            alex_notes = len(_texts(demo.state(seed.APPROVER_1.user_id), ephemeral=True))
            _confirm_through_dialog(page, card)
            went_through = card.get_by_role("button", name="It went through")
            expect(went_through).to_be_visible(timeout=UNKNOWN_SECONDS * 1000)
            expect(card.get_by_role("button", name="It did not")).to_be_visible()
            card.get_by_role("button", name="Check balances").click()
            expect(notes).to_have_count(alex_notes + 1, timeout=15_000)
            shots = [_shot(page, tmp_path, "demo-unknown")]
            went_through.click()
            expect(went_through).to_have_count(0, timeout=15_000)
            expect(card).to_contain_text("@alex")
            shots.append(_shot(page, tmp_path, "demo-unknown-settled"))
            with capsys.disabled():
                print("\ndemo screenshots: " + " ".join(str(shot) for shot in shots))
        finally:
            browser.close()


def _spaced(text: str) -> str:
    """French numbers' narrow and non-breaking spaces, as plain spaces."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_the_demo_in_french_in_chromium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--language fr`: the app gets CREDIT_LANGUAGE=fr, the page speaks French (labels,
    examples with French sub-commands, balances written `2 869,200 EUR`), and a French
    command makes a card."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    demo = DemoProcess(tmp_path, "--language", "fr")
    try:
        assert demo.state()["language"] == "fr"
        assert _spaced(demo.state()["settings"]["second_approval_above"]) == "500,00 EUR"
        with sync_api.sync_playwright() as playwright:
            browser, page = _chromium_page(playwright)
            try:
                page.goto(f"{demo.url}/")
                expect(page.locator("html")).to_have_attribute("lang", "fr")
                expect(page.locator("#people")).to_contain_text("Vous êtes")
                expect(page.locator(".balances")).to_contain_text("Compte principal")
                assert _spaced(page.locator("#main-balance").inner_text()) == "2 869,200 EUR"
                page.get_by_role("radio", name="camille").click()
                page.get_by_role("button", name="/credit ajouter paris-store 50").click()
                page.get_by_role("button", name="Envoyer").click()
                cards = page.locator("#timeline > .message.from-app:not(.ephemeral)")
                expect(cards).to_have_count(1, timeout=15_000)
                expect(cards.first).to_contain_text("paris-store")
                # The page's own parts; the cards are the app's, French once its texts are.
                shown = " ".join(
                    page.locator(part).inner_text()
                    for part in (".topbar", ".sidebar", ".channel-header", "#composer", ".balances")
                )
                for english in ("You are", "Main account", "Transfers carried out", "Try:"):
                    assert english not in shown
                shot = _shot(page, tmp_path, "demo-french")
                with capsys.disabled():
                    print(f"\ndemo screenshots: {shot}")
            finally:
                browser.close()
    finally:
        demo.stop()
