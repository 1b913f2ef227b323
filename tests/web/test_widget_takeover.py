"""A person from customer service takes the widget's conversation over, live: the shopper sees them join, their
messages under their name and their typing; the shopper's replies reach them; hand-back brings the bot back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.api.conftest import AGENT, Running
from tests.api.test_takeover_api import agent, session_stream
from tests.web.test_widget_browser import open_widget, say, session_of

HELLO = "Hi, I am Anna. Let me look at your order."
HIDE = """Object.defineProperty(document, "hidden", {value: true, configurable: true});
document.dispatchEvent(new Event("visibilitychange"))"""
SHOW = """Object.defineProperty(document, "hidden", {value: false, configurable: true});
document.dispatchEvent(new Event("visibilitychange"))"""


def wait_until(page: Any, test: Callable[[], bool], what: str) -> None:
    """Waits on the page's own events (Playwright delivers them while the page waits), 10 s at most."""
    for _ in range(200):
        if test():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"not seen: {what}")


def test_an_agent_takes_over_talks_live_and_hands_back(
    store: Running, page: Any, sync_api: ModuleType, tmp_path: Path
) -> None:
    expect = sync_api.expect
    opened: list[str] = []  # the session streams the page opened, and those it ended (aborted)
    ended: list[str] = []
    page.on("request", lambda r: opened.append(r.url) if r.url.endswith("/stream") else None)
    page.on("requestfailed", lambda r: ended.append(r.url) if r.url.endswith("/stream") else None)
    store.llm.streams = [[" running shoes ", "are here."], [" mug ", "is here too."]]
    panel = open_widget(page, store.base_url)
    log = panel.get_by_role("log", name="Conversation")
    typing = panel.get_by_role("status").filter(has_text="Anna is typing…")
    box = panel.get_by_role("textbox", name="Message")
    say(panel, "red running shoes")
    expect(log.get_by_role("group", name="Rate this answer")).to_have_count(1)
    session = session_of(page)

    with session_stream(store, session, AGENT) as console:
        assert agent(store, session, "take", name="Anna").status_code == 200
        expect(log.get_by_text("Anna from customer service joined")).to_be_visible()
        assert len(opened) == 1 and ended == []  # one connection for the open widget
        assert agent(store, session, "messages", text=HELLO).status_code == 201
        bubble = log.get_by_text(HELLO, exact=True).locator("xpath=..")
        expect(bubble).to_contain_text("Anna")

        # The agent types: the shopper sees it once in the status line, gone when their message arrives.
        assert httpx.post(f"{store.base_url}/v1/sessions/{session}/typing", headers=AGENT).json()["delivered"]
        expect(typing).to_be_visible()
        assert agent(store, session, "messages", text="Found it.").status_code == 201
        expect(log.get_by_text("Found it.", exact=True)).to_be_visible()
        expect(typing).to_have_count(0)

        # The shopper types and replies: the agent hears both; no bot answer is started or awaited.
        box.press_sequentially("Where is it now?", delay=20)
        console.wait_for(lambda e: e["event"] == "typing" and e["data"]["from"] == "shopper", "shopper typing")
        box.press("Enter")
        reply = console.wait_for(lambda e: e["event"] == "message" and e["data"]["from"] == "shopper", "the reply")
        assert reply["data"]["text"] == "Where is it now?" and "id" in reply
        expect(log.get_by_text("Where is it now?", exact=True).locator("xpath=..")).to_contain_text("Sent")
        expect(log.get_by_role("group", name="Rate this answer")).to_have_count(1)
        expect(panel.get_by_role("button", name="Send")).to_be_visible()  # not busy: nothing to stop
        view = httpx.get(f"{store.base_url}/v1/sessions/{session}", headers=AGENT, timeout=10).json()
        assert view["control"]["state"] == "agent"

        # A closed panel holds no connection; reopened, it catches up on what the agent said meanwhile.
        panel.get_by_role("button", name="Close chat").click()
        wait_until(page, lambda: len(ended) == 1, "the closed panel's stream ended")
        assert agent(store, session, "messages", text="It ships tomorrow.").status_code == 201
        page.get_by_role("button", name="Open chat").click()
        expect(log.get_by_text("It ships tomorrow.", exact=True)).to_have_count(1)
        assert len(opened) == 2
        # A hidden page holds no connection either.
        page.evaluate(HIDE)
        wait_until(page, lambda: len(ended) == 2, "the hidden page's stream ended")
        page.evaluate(SHOW)
        wait_until(page, lambda: len(opened) == 3, "the stream reopened")
        panel.screenshot(path=tmp_path / "widget-takeover.png")

        # Reloaded, the page shows the conversation the person holds once, from its log, and follows it again.
        page.reload()
        for text in ("Anna from customer service joined", HELLO, "Where is it now?", "It ships tomorrow."):
            expect(log.get_by_text(text, exact=True)).to_have_count(1)
        assert agent(store, session, "messages", text="Anything else?").status_code == 201
        expect(log.get_by_text("Anything else?", exact=True)).to_be_visible()

        assert agent(store, session, "hand-back").status_code == 200
        expect(log.get_by_text("Anna left; the assistant is back")).to_be_visible()
    say(panel, "a mug")
    expect(log.get_by_role("group", name="Rate this answer")).to_have_count(2)
    expect(log).to_contain_text("is here too.")
    assert page.problems == []
