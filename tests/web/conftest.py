"""Browser tests of the widget and the demo store page: the real app on a loopback port (the API tests' fakes: a
scripted model, keyword routing, a small catalog) driven in Debian's headless Chromium through Playwright.

Skipped, saying what to install, without /usr/bin/chromium (`scripts/services.sh install`) or the playwright
package (the `dev` extra); CI installs both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from assistant.llm.fake import FakeLLM
from tests.api.conftest import Running, build_services, free_port, running, serve  # noqa: F401 (running: the API tests' app)
from tests.unit.conftest import SMALL_CATALOG, make_product

CHROMIUM = Path("/usr/bin/chromium")
# A product whose title is markup and script: the widget must show it as the text it is.
HOSTILE_TITLE = '<img src=x onerror="alert(1)"> Wool hiking socks <script>alert(2)</script>'
CATALOG = [
    *SMALL_CATALOG,
    make_product(
        "p-hostile",
        HOSTILE_TITLE,
        brand="Trail",
        color="Grey",
        category_path=["accessories", "socks"],
        price=9.5,
        stock=30,
        rating=4.6,
        rating_count=51,
    ),
]


@pytest.fixture(scope="session")
def sync_api() -> ModuleType:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/services.sh install)")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def browser(sync_api: ModuleType) -> Iterator[Any]:
    """One Chromium for a module's tests. Not for the session: Playwright's sync API holds an event loop on the
    main thread while it runs, and later tests call asyncio.run there."""
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Running]:
    """The app over the small catalog (with the hostile title) and a personalization store, on a free port."""
    llm = FakeLLM()
    # The app knows its port, as `serve` tells it: the demo page's widget key is accepted on that origin only.
    port = free_port()
    services, orders = build_services(tmp_path, llm, catalog=CATALOG, profiles=True, port=port)
    try:
        with serve(services, port) as url:
            yield Running(url, services, llm, orders, tmp_path)
    finally:
        # Playwright's sync API keeps an event loop on this thread: the services close on a thread of their own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, services.close()).result()


def missing(message: Any) -> bool:
    """The browser's own log line for a 404: the widget asks for endpoints a server may not have (the visitor,
    config, feedback and cart endpoints until they land) and falls back; a missing file fails the tests anyway."""
    return "status of 404" in message.text or "status of 405" in message.text


@pytest.fixture
def page(browser: Any, sync_api: ModuleType) -> Iterator[Any]:
    """A fresh browser context (its own storage) at a desktop size; page errors and dialogs fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on(
        "console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" and not missing(m) else None
    )
    page.problems = problems
    sync_api.expect.set_options(timeout=10_000)
    try:
        yield page
    finally:
        context.close()
