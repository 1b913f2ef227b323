"""The widget and the demo store page in a real browser, used as a shopper would: by roles and labels."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT, Running
from tests.web.conftest import HOSTILE_TITLE

DEMO_PAGE_KEY = "pk_demo"  # the publishable key the demo page embeds
DEMO_IDENTITY_SECRET = b"demo-identity-secret"  # its identity secret, as public as the demo keys


def words(n: int) -> list[str]:
    """Digit-free words, which the grounding check lets through as they arrive (after the answer's start)."""
    return [f" w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(n)]


def open_widget(page: Any, url: str) -> Any:
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    return page.get_by_role("dialog", name="Shopping assistant")


def say(panel: Any, text: str) -> None:
    box = panel.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def session_of(page: Any) -> str:
    """The session id the widget keeps in localStorage."""
    return str(
        page.evaluate(
            "Object.keys(localStorage).filter(k => k.endsWith(':session')).map(k => JSON.parse(localStorage[k]))[0]"
        )
    )


def turns(store: Running, session: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{store.base_url}/v1/sessions/{session}", headers=AGENT, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["turns"])


def has_endpoint(store: Running, path: str) -> bool:
    r = httpx.post(f"{store.base_url}{path}", json={}, headers=AGENT, timeout=10)
    return r.status_code not in (404, 405)


def test_a_conversation_streams_text_cards_and_sources(
    store: Running, page: Any, sync_api: ModuleType, tmp_path: Path
) -> None:
    expect = sync_api.expect
    store.llm.streams = [[" running shoes ", "are here ", "for you."], [" mug ", "is cheaper."]]
    store.llm.chunk_delay = 0.15
    panel = open_widget(page, store.base_url)
    expect(page.get_by_role("list", name="Featured products").get_by_role("listitem")).not_to_have_count(0)
    expect(panel.get_by_role("textbox", name="Message")).to_be_focused()
    say(panel, "red running shoes")
    # The status line follows the stream's events while the model writes.
    expect(panel.get_by_role("status").filter(has_text="Writing the answer")).to_be_visible()
    log = panel.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("The running shoes are here for you.")
    expect(panel.get_by_role("status").filter(has_text="Writing")).to_have_count(0)
    card = log.get_by_role("list", name="Products").get_by_role("listitem").filter(has_text="Red running shoes")
    expect(card.get_by_role("heading", name="Red running shoes")).to_be_visible()
    expect(card).to_contain_text("$59.00")
    expect(card).to_contain_text("Only 3 left")
    expect(card.get_by_role("img", name="Rated 4.5 out of 5 by 120 shoppers")).to_be_visible()
    expect(log.get_by_role("group", name="Rate this answer")).to_be_visible()
    panel.screenshot(path=tmp_path / "widget.png")
    card.get_by_text("Why this?").click()
    expect(card.get_by_role("listitem").first).to_be_visible()
    expect(card).to_contain_text("It is in stock.")
    # Sources are footnotes; a product's leads to its card.
    sources = log.get_by_role("list", name="Sources")
    sources.get_by_role("link", name="Product: Red running shoes").click()
    expect(card).to_be_focused()
    # Quick replies suggested from the turn send their text.
    expect(
        panel.get_by_role("group", name="Suggestions").get_by_role("button", name="Something cheaper")
    ).to_be_visible()
    page.screenshot(path=tmp_path / "desktop.png")
    panel.get_by_role("button", name="Something cheaper").click()
    expect(log.locator(".msg.user").last).to_contain_text("Something cheaper")
    assert page.problems == []


def test_hostile_catalog_text_is_shown_as_text(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    panel = open_widget(page, store.base_url)
    say(panel, "wool hiking socks")
    log = panel.get_by_role("log", name="Conversation")
    expect(log.get_by_role("heading", name=HOSTILE_TITLE)).to_be_visible()
    say(panel, '<img src=x onerror="alert(3)"> hello')
    expect(log.get_by_text('<img src=x onerror="alert(3)"> hello', exact=True)).to_be_visible()
    assert page.locator("img[src='x']").count() == 0 and page.locator("script:text('alert')").count() == 0
    assert page.problems == []  # no alert dialog ran


def test_add_to_cart_from_a_card_and_thumbs(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    panel = open_widget(page, store.base_url)
    say(panel, "red running shoes")
    log = panel.get_by_role("log", name="Conversation")
    log.get_by_role("button", name="Add Red running shoes to cart").click()
    expect(page.get_by_text("Cart: 1 item", exact=True)).to_be_visible()  # the store page hears the widget's cart event
    session = session_of(page)
    shopper = httpx.get(f"{store.base_url}/v1/sessions/{session}", headers=AGENT).json()["shopper_id"]
    assert store.services.stores is not None
    assert [pid for pid, _ in store.services.stores.carts.items(shopper)] == ["p1"]

    rate = log.get_by_role("group", name="Rate this answer").first
    rate.get_by_role("button", name="Helpful", exact=True).click()
    if has_endpoint(store, "/v1/feedback"):
        expect(rate.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
        expect(rate).to_contain_text("Thanks for the feedback.")
    else:  # not on this server yet: the widget says so instead of pretending
        expect(rate).to_contain_text("Couldn't send the feedback.")
    assert page.problems == []


def signed_in(page: Any, store: Running, shopper: str) -> None:
    """The demo page as a store's page for a logged-in shopper: the id and the store's signature of it on the tag
    (HMAC-SHA256 with the demo key's identity secret, computed on the store's server)."""
    signature = hmac.new(DEMO_IDENTITY_SECRET, shopper.encode(), hashlib.sha256).hexdigest()

    def tag(route: Any) -> None:
        response = route.fetch()
        attrs = f'data-shopper-id="{shopper}" data-shopper-signature="{signature}" data-key='
        route.fulfill(response=response, body=response.text().replace("data-key=", attrs))

    page.route(store.base_url + "/", tag)


def test_a_change_is_confirmed_with_a_button(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    signed_in(page, store, "1")  # shopper 1 has order ORD-AAAAAA
    panel = open_widget(page, store.base_url)
    say(panel, "please cancel order ORD-AAAAAA")
    confirm = panel.get_by_role("group", name=re.compile("^Please confirm: cancel order ORD-AAAAAA", re.I))
    expect(confirm).to_be_visible()
    assert store.orders.get("ORD-AAAAAA").status == "placed"  # type: ignore[union-attr]
    confirm.get_by_role("button", name="Confirm").click()
    log = panel.get_by_role("log", name="Conversation")
    expect(log.get_by_text(re.compile("^Done: .*cancelled"))).to_be_visible()
    assert store.orders.get("ORD-AAAAAA").status == "cancelled"  # type: ignore[union-attr]
    expect(confirm.get_by_role("button", name="Confirm")).to_be_disabled()  # asked and answered
    say(panel, "I want to talk to a human")
    expect(log).to_contain_text("A person from our team will join this conversation. Your ticket is")
    assert page.problems == []


def test_the_conversation_survives_a_reload(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    store.llm.streams = [[" running shoes ", "are here."], [" boots ", "are sturdy."]]
    panel = open_widget(page, store.base_url)
    say(panel, "red running shoes")
    log = panel.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("The running shoes are here.")
    say(panel, "leather hiking boots")
    expect(log).to_contain_text("The boots are sturdy.")
    page.reload()
    log = page.get_by_role("dialog", name="Shopping assistant").get_by_role("log", name="Conversation")
    expect(log).to_contain_text("red running shoes")
    expect(log).to_contain_text("The running shoes are here.")
    expect(log).to_contain_text("The boots are sturdy.")
    expect(log.get_by_role("heading", name="Leather hiking boots")).to_be_visible()
    # The conversation goes on in the same session.
    session = session_of(page)
    say(page.get_by_role("dialog", name="Shopping assistant"), "hello")
    expect(log.get_by_role("group", name="Rate this answer")).to_have_count(3)
    assert len(turns(store, session)) == 3
    assert page.problems == []


def test_a_visitor_cannot_read_another_visitors_conversation(
    store: Running, browser: Any, page: Any, sync_api: ModuleType
) -> None:
    expect = sync_api.expect
    if not has_endpoint(store, "/v1/visitors"):
        pytest.skip("no visitor tokens on this server: every page acts for the demo widget key's one shopper")
    store.llm.streams = [[" running shoes ", "are here."]]
    panel = open_widget(page, store.base_url)
    say(panel, "red running shoes")
    expect(panel.get_by_role("log", name="Conversation")).to_contain_text("The running shoes are here.")
    theirs = session_of(page)
    other = browser.new_context()
    try:
        stranger = other.new_page()
        # Another visitor's page holding the first one's session id: the server says no such session.
        key = f"shop-assistant:{DEMO_PAGE_KEY}:session"
        stranger.add_init_script(f"localStorage.setItem({json.dumps(key)}, JSON.stringify({json.dumps(theirs)}))")
        log = open_widget(stranger, store.base_url).get_by_role("log", name="Conversation")
        expect(log).to_contain_text("Hi! I can help you")
        expect(log).not_to_contain_text("red running shoes")
    finally:
        other.close()


def test_a_dropped_connection_resumes_without_lost_or_repeated_text(
    store: Running, page: Any, sync_api: ModuleType
) -> None:
    expect = sync_api.expect
    store.llm.streams = [words(12)]
    cut: list[str] = []
    resumed: list[str] = []

    def drop_first_stream(route: Any) -> None:
        request = route.request
        if request.headers.get("last-event-id"):
            resumed.append(request.headers["last-event-id"])
            return route.continue_()
        if cut:
            return route.continue_()
        response = route.fetch()
        blocks = response.text().split("\r\n\r\n")
        tokens = [i for i, b in enumerate(blocks) if "event: token" in b.split("\r\n")]
        assert len(tokens) >= 2, blocks  # the cut leaves answer text for the resumed stream
        cut.append(blocks[tokens[0]])
        # The body ends cleanly after the first piece of the answer, as when a proxy drops a stream.
        route.fulfill(status=200, headers=response.headers, body="\r\n\r\n".join(blocks[: tokens[0] + 1]) + "\r\n\r\n")

    page.route("**/v1/chat", drop_first_stream)
    panel = open_widget(page, store.base_url)
    say(panel, "shoes")
    log = panel.get_by_role("log", name="Conversation")
    expect(log.get_by_role("group", name="Rate this answer")).to_be_visible()
    text = log.locator(".msg.bot .text").last.inner_text()
    assert text == "The" + "".join(words(12))
    assert cut and resumed and resumed[0] in cut[0]  # resumed from the last event it had
    assert page.problems == []


def test_the_stop_button_cancels_the_turn(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    store.services.chat.live.grace_s = 0.0
    store.llm.streams = [words(200)]
    store.llm.chunk_delay = 0.05
    panel = open_widget(page, store.base_url)
    say(panel, "shoes")
    log = panel.get_by_role("log", name="Conversation")
    expect(log.locator(".msg.bot .text").last).to_have_text("The")  # the model is writing
    panel.get_by_role("button", name="Stop answer").click()
    expect(log).to_contain_text("Stopped.")
    expect(panel.get_by_role("button", name="Send")).to_be_visible()
    deadline = time.monotonic() + 10
    while store.llm.cancelled_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.llm.cancelled_streams == 1  # the server saw the cancel and stopped the model
    session = session_of(page)
    while turns(store, session)[-1]["status"] == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert turns(store, session)[-1]["status"] == "cancelled"
    assert page.problems == []


def test_an_unavailable_model_is_said_with_a_retry(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    store.llm.available = False
    panel = open_widget(page, store.base_url)
    say(panel, "red running shoes")
    alert = panel.get_by_role("alert")
    expect(alert).to_contain_text("The assistant isn't available right now.")
    store.llm.available = True
    store.llm.streams = [[" running shoes ", "are here."]]
    alert.get_by_role("button", name="Try again").click()
    expect(panel.get_by_role("log", name="Conversation")).to_contain_text("The running shoes are here.")
    expect(panel.get_by_role("alert")).to_have_count(0)


def test_no_photo_button_without_photo_search(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    with page.expect_response(re.compile(r"/v1/widget/config$")) as config:
        panel = open_widget(page, store.base_url)
    assert config.value.json()["image_search"] is False  # no CLIP checkpoint on this server
    expect(panel.get_by_role("textbox", name="Message")).to_be_focused()
    expect(panel.get_by_role("button", name="Search by photo")).to_have_count(0)
    expect(page.locator("input[type=file]")).to_have_count(0)  # nor a hidden file input
    assert page.problems == []


def test_keyboard_only(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect
    page.goto(store.base_url)
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()
    page.keyboard.press("Shift+Tab")  # the launcher is the page's last stop
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Shopping assistant")
    box = panel.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    page.keyboard.type("red running shoes")
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Red running shoes")).to_be_visible()
    # The cards come before the answer's end; while it streams, Stop stands where Send was (and takes the Tab).
    expect(panel.get_by_role("button", name="Send")).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(box).to_be_focused()
    page.keyboard.press("Tab")
    expect(panel.get_by_role("button", name="Send")).to_be_focused()
    assert page.problems == []


def test_spanish(store: Running, page: Any, sync_api: ModuleType) -> None:
    expect = sync_api.expect

    def spanish(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace("data-key=", 'data-lang="es" data-key='))

    page.route(store.base_url + "/", spanish)
    page.goto(store.base_url)
    page.get_by_role("button", name="Abrir chat").click()
    panel = page.get_by_role("dialog", name="Asistente de compras")
    expect(panel).to_have_attribute("lang", "es")
    expect(panel.get_by_role("textbox", name="Mensaje")).to_be_focused()
    expect(panel.get_by_role("button", name="Cerrar chat")).to_be_visible()


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 780}], ids=["phone"])
def test_mobile_full_screen_and_dark_scheme(
    store: Running, browser: Any, sync_api: ModuleType, tmp_path: Path, viewport: dict[str, int]
) -> None:
    expect = sync_api.expect
    context = browser.new_context(viewport=viewport, color_scheme="dark", device_scale_factor=1)
    try:
        page = context.new_page()
        store.llm.streams = [[" Red running shoes ", "are light and quick."], [" Red running shoes ", "are light."]]
        panel = open_widget(page, store.base_url)
        say(panel, "red running shoes")
        expect(panel.get_by_role("heading", name="Red running shoes")).to_be_visible()
        box = panel.bounding_box()
        assert box == {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"]}
        background = panel.evaluate("el => getComputedStyle(el).backgroundColor")
        assert background == "rgb(27, 29, 33)"  # the dark theme, from prefers-color-scheme
        page.screenshot(path=tmp_path / "mobile-dark.png")
    finally:
        context.close()
    # A store can pin the theme and its brand colour with data attributes.
    context = browser.new_context(viewport={"width": 1100, "height": 800}, color_scheme="light")
    try:
        page = context.new_page()

        def themed(route: Any) -> None:
            response = route.fetch()
            tag = 'data-theme="dark" data-brand="#7a1f5c" data-key='
            route.fulfill(response=response, body=response.text().replace("data-key=", tag))

        page.route(store.base_url + "/", themed)
        panel = open_widget(page, store.base_url)
        assert panel.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(27, 29, 33)"
        header = panel.locator(".head")
        assert header.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(122, 31, 92)"
        say(panel, "red running shoes")
        expect(panel.get_by_role("heading", name="Red running shoes")).to_be_visible()
        page.screenshot(path=tmp_path / "desktop-dark-brand.png")
    finally:
        context.close()


def test_no_accessibility_violations(store: Running, browser: Any, sync_api: ModuleType) -> None:
    axe = pytest.importorskip("axe_playwright_python", reason="axe-core not installed: pip install -e '.[dev]'")
    source = (Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for scheme in ("light", "dark"):
        # axe is injected into the page, which the demo page's CSP would refuse.
        context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(store.base_url)
            page.get_by_role("list", name="Featured products").get_by_role("listitem").first.wait_for()
            page.evaluate(source)
            found[f"store page, {scheme}"] = violations(page)
            page.get_by_role("button", name="Open chat").click()
            panel = page.get_by_role("dialog", name="Shopping assistant")
            say(panel, "red running shoes")
            panel.get_by_role("group", name="Rate this answer").wait_for()
            panel.get_by_text("Why this?").first.click()
            found[f"open widget, {scheme}"] = violations(page)
        finally:
            context.close()
    assert all(v == [] for v in found.values()), found


def violations(page: Any) -> list[str]:
    """axe-core's violations (any impact) on the page, open shadow roots included."""
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in results["violations"]]
