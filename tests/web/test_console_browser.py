"""The agent console in a real browser, used as a person from customer service would, by roles and labels, beside a
shopper in the widget (a second browser context): the queue, taking over, a reply that reaches the shopper, hand
back, a turn's trace, and an axe scan."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from eval.dialogues.scenario import load_file
from tests.api.conftest import AGENT, Running, chat_events, demo_order
from tests.api.test_takeover_api import session_stream
from tests.web.test_widget_browser import open_widget, say, session_of, violations

AGENT_KEY = "demo-agent-key"


def sign_in(page: Any, url: str, name: str = "Anna") -> None:
    page.goto(f"{url}/console")
    page.get_by_label("Agent key").fill(AGENT_KEY)
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()


def visitor_token(page: Any) -> str:
    """The shopper's credential, as the widget keeps it."""
    held = page.evaluate("Object.keys(localStorage).filter(k => k.endsWith(':visitor')).map(k => localStorage[k])[0]")
    return str(json.loads(held)["token"])


def test_an_agent_takes_over_a_waiting_shopper_replies_and_hands_back(
    store: Running, browser: Any, page: Any, sync_api: ModuleType, tmp_path: Path
) -> None:
    expect = sync_api.expect
    # The shopper, in the widget on the demo store, asks for a person.
    shopper_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        shopper = shopper_context.new_page()
        panel = open_widget(shopper, store.base_url)
        say(panel, "red running shoes")
        widget_log = panel.get_by_role("log", name="Conversation")
        expect(widget_log.get_by_role("heading", name="Red running shoes")).to_be_visible()
        say(panel, "I want to talk to a human")
        expect(widget_log).to_contain_text("human agent")
        session = session_of(shopper)
        token = visitor_token(shopper)
        shopper_id = httpx.get(f"{store.base_url}/v1/sessions/{session}", headers=AGENT).json()["shopper_id"]
        store.orders.add([demo_order("ORD-BRWSR1", shopper_id, "placed")])

        # The agent signs in; the queue shows the waiting shopper first, with its waiting time and reason.
        sign_in(page, store.base_url)
        expect(page.get_by_text("Signed in as Anna")).to_be_visible()
        queue = page.get_by_role("list", name="Sessions")
        waiting = queue.get_by_role("listitem").first
        expect(waiting).to_contain_text("Waiting")
        expect(waiting).to_contain_text("on time")
        expect(waiting).to_contain_text("Handoff: I want to talk to a human")
        waiting.get_by_role("button", name=re.compile("Shopper")).click()
        convo = page.get_by_role("region", name=re.compile("Conversation with shopper"))
        transcript = convo.get_by_role("log", name="Transcript")
        expect(transcript).to_contain_text("I want to talk to a human")
        expect(convo.get_by_role("button", name="Hand back to the bot")).to_be_disabled()
        expect(convo.get_by_role("textbox", name="Reply")).to_be_disabled()
        expect(convo.get_by_role("region", name="Actions")).to_be_hidden()  # the owner's only

        # Take over: the shopper's session stream hears it, then the agent's message, live.
        with session_stream(store, session, {"Authorization": f"Bearer {token}"}) as stream:
            convo.get_by_role("button", name="Take over").click()
            expect(convo.get_by_role("status").filter(has_text="With an agent: Anna")).to_be_visible()
            stream.wait_for(lambda e: e["event"] == "agent_joined" and e["data"]["name"] == "Anna", "agent_joined")
            convo.get_by_role("textbox", name="Reply").fill("Hi, I am Anna. Let me look at your order.")
            convo.get_by_role("button", name="Send").click()
            expect(transcript).to_contain_text("Agent · Anna")
            expect(transcript).to_contain_text("Hi, I am Anna. Let me look at your order.")
            said = stream.wait_for(lambda e: e["event"] == "message", "the agent's message")
            assert said["data"] | {"at": None} == {
                "from": "agent",
                "name": "Anna",
                "text": "Hi, I am Anna. Let me look at your order.",
                "internal": False,
                "at": None,
            }
            expect(widget_log).to_contain_text("Hi, I am Anna. Let me look at your order.")  # live in the widget
            # A canned reply fills the reply box (from the keyboard: the list, then Enter), the agent sends it.
            canned = convo.get_by_role("combobox", name="Canned reply")
            canned.select_option(label="Looking into it")
            canned.press("Enter")
            reply = convo.get_by_role("textbox", name="Reply")
            expect(reply).to_have_value("Thanks, I'm looking into this now. It will take a minute or two.")
            expect(reply).to_be_focused()
            reply.press("Enter")
            expect(widget_log).to_contain_text("Thanks, I'm looking into this now.")
            # Actions: the agent looks up the shopper's orders and cancels one, confirming the proposed change.
            actions = convo.get_by_role("region", name="Actions")
            actions.get_by_role("button", name="Look up orders").click()
            expect(actions.get_by_role("list", name="The shopper's orders")).to_contain_text("ORD-BRWSR1 · placed")
            actions.get_by_role("combobox", name="Order").select_option("ORD-BRWSR1")
            actions.get_by_role("button", name="Cancel order").click()
            proposal = actions.get_by_role("group", name="Proposed change")
            expect(proposal).to_contain_text("Cancel order ORD-BRWSR1")
            expect(proposal.get_by_role("button", name="Confirm")).to_be_focused()
            assert store.orders.get("ORD-BRWSR1").status == "placed"  # type: ignore[union-attr]
            proposal.get_by_role("button", name="Confirm").press("Enter")
            expect(actions.get_by_role("status", name="Action result")).to_contain_text("cancel_order: done")
            expect(transcript).to_contain_text("Anna · cancel_order: done")
            expect(actions.get_by_role("list", name="The shopper's orders")).to_contain_text("ORD-BRWSR1 · cancelled")
            assert store.orders.get("ORD-BRWSR1").status == "cancelled"  # type: ignore[union-attr]
            expect(widget_log).to_contain_text("cancel_order done by Anna")  # the shopper sees the action
            # An internal note stays with the agents.
            convo.get_by_role("checkbox", name="Internal note (agents only)").check()
            convo.get_by_role("textbox", name="Reply").fill("Shopper is polite; order looks fine.")
            convo.get_by_role("button", name="Add note").click()
            expect(transcript).to_contain_text("Shopper is polite; order looks fine.")
            convo.get_by_role("checkbox", name="Internal note (agents only)").uncheck()
            page.screenshot(path=tmp_path / "console-agent.png")
            convo.get_by_role("button", name="Hand back to the bot").click()
            expect(convo.get_by_role("status").filter(has_text="With the bot")).to_be_visible()
            stream.wait_for(lambda e: e["event"] == "agent_left", "agent_left")
            assert not any(e["event"] == "message" and e["data"].get("internal") for e in stream.events)
        expect(transcript).to_contain_text("Anna handed back to the bot")
        # The bot answers the shopper's next message, in the widget and in the console.
        store.llm.streams = [[" mug ", "is here too."]]
        say(panel, "a mug")
        expect(widget_log).to_contain_text("is here too.")
        expect(transcript).to_contain_text("is here too.")

        # After a reload the widget replays what the person said.
        shopper.reload()  # the widget reopens with the conversation
        log = shopper.get_by_role("dialog", name="Shopping assistant").get_by_role("log", name="Conversation")
        expect(log).to_contain_text("AnnaHi, I am Anna. Let me look at your order.")  # under the agent's name
        expect(log).not_to_contain_text("Shopper is polite")
        shopper.screenshot(path=tmp_path / "widget-after-takeover.png")
    finally:
        shopper_context.close()

    # The first turn's trace: its intent and its tool calls with arguments.
    transcript.get_by_role("button", name="Trace of turn 1").click()
    trace = page.get_by_role("region", name="Trace of turn 1")
    intent = trace.get_by_role("region", name="Intent")
    expect(intent).to_contain_text("search_products")
    expect(intent).to_contain_text("confidence")
    call = trace.get_by_role("article", name="Tool call search_products").first
    expect(call).to_contain_text('"query": "red running shoes"')
    shown = trace.get_by_role("region", name="Products shown").get_by_role("table")
    expect(shown).to_contain_text("Red running shoes")
    # The score breakdown of a product: a number in every part's column, and how reranking moved it.
    for part in ("final", "relevance", "lexical", "dense", "quality", "by relevance → shown"):
        expect(shown.get_by_role("columnheader", name=part, exact=True)).to_be_visible()
    row = shown.get_by_role("row").filter(has_text="Red running shoes").first
    expect(row).to_contain_text(re.compile(r"\d\.\d\d"))
    expect(row).to_contain_text(re.compile(r"\d \(kept\)|\d → \d"))
    expect(trace.get_by_role("region", name="Thumbs")).to_contain_text("Not rated.")
    expect(trace.get_by_role("region", name="Grounding")).to_contain_text("Nothing repaired.")
    timings = trace.get_by_role("region", name="Timings")
    expect(timings).to_contain_text(re.compile(r"routing\s*\d+ ms"))
    expect(timings).to_contain_text(re.compile(r"search\s*\d+ ms"))
    shown.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "console.png")

    # Save as test case: a YAML file the dialogue evaluation loads, the conversation's messages as its turns.
    with page.expect_download() as download:
        convo.get_by_role("button", name="Save as test case").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".yaml"
    (scenario,) = load_file(saved)
    assert [t.say for t in scenario.turns] == ["red running shoes", "I want to talk to a human", "a mug"]
    assert scenario.turns[0].expect.intent == ["search_products"]
    assert page.problems == []


def test_the_console_has_no_serious_accessibility_violations(
    store: Running, browser: Any, sync_api: ModuleType, tmp_path: Path
) -> None:
    axe = pytest.importorskip("axe_playwright_python", reason="axe-core not installed: pip install -e '.[dev]'")
    source = (Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    session = chat_events(store.base_url, {"message": "red running shoes"})[0]["data"]["session_id"]
    chat_events(store.base_url, {"message": "I want to talk to a human", "session_id": session})
    assert httpx.get(f"{store.base_url}/v1/agent/sessions", headers=AGENT).status_code == 200
    # axe is injected into the page, which the console's CSP would refuse.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"{store.base_url}/console")
        page.evaluate(source)
        found = {"sign-in": violations(page)}
        sign_in(page, store.base_url)
        page.get_by_role("list", name="Sessions").get_by_role("button", name=re.compile("Shopper")).first.click()
        page.get_by_role("button", name="Take over").click()  # the Actions panel is scanned too
        page.get_by_role("button", name="Look up orders").click()
        page.get_by_role("textbox", name="Product id").fill("p1")
        page.get_by_role("button", name="Add to cart").click()
        page.get_by_role("status", name="Action result").filter(has_text="add_to_cart").wait_for()
        page.get_by_role("button", name="Trace of turn 1").click()
        page.get_by_role("region", name="Trace of turn 1").get_by_role("region", name="Intent").wait_for()
        page.evaluate(source)
        found["conversation and trace"] = violations(page)
        page.screenshot(path=tmp_path / "console-axe.png")
    finally:
        context.close()
    assert all(v == [] for v in found.values()), found  # none of any impact, not only serious or critical
