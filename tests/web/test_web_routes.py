"""The front end's files as the server sends them (no browser): the demo page, the widget's modules and CSS with
their caching headers, nothing outside web/, and the widget's size against its budget."""

from __future__ import annotations

import asyncio
import gzip
import html
import re
from pathlib import Path

import httpx

from assistant.llm.fake import FakeLLM
from tests.api.conftest import AGENT, Running, build_services, serve
from tests.unit.conftest import make_product
from web import size


def test_the_demo_page_embeds_the_widget_with_one_tag(running: Running) -> None:
    r = httpx.get(f"{running.base_url}/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/widget.js" data-key="' in r.text
    assert '<option value="footwear">Footwear</option>' in r.text  # the catalog's categories
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_catalog_categories_on_the_demo_page_are_text(tmp_path: Path) -> None:
    """The category menu is filled from the catalog: markup is escaped, and a category spelled as the page's own
    template marker reads as that text (it was filled in with the widget key after the categories went in)."""
    hostile = '{{widget_key}} "onfocus=alert(1) <b'
    catalog = [make_product("p1", "Socks", category_path=[hostile], price=3.0, stock=2)]
    services, _ = build_services(tmp_path, FakeLLM(), catalog=catalog)
    try:
        with serve(services) as url:
            page = httpx.get(f"{url}/").text
    finally:
        asyncio.run(services.close())
    escaped = html.escape(hostile)
    assert f'<option value="{escaped}">{escaped}</option>' in page
    assert 'data-key="pk_demo"' in page  # the page's own marker is still filled in


def test_the_demo_page_never_embeds_a_secret_key(tmp_path: Path) -> None:
    keys = {"k-widget-42": {"role": "widget", "shopper_id": "42"}, "k-agent": {"role": "agent"}}
    services, _ = build_services(tmp_path, FakeLLM(), api_keys=keys, demo_keys=False)
    try:
        with serve(services) as url:
            page = httpx.get(f"{url}/").text
    finally:
        asyncio.run(services.close())
    assert "k-widget-42" not in page and "k-agent" not in page
    assert '<script type="module" src="/widget.js" data-key=""></script>' in page


def test_widget_files_are_cached_and_revalidated(running: Running) -> None:
    r = httpx.get(f"{running.base_url}/widget.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "no-cache"
    assert 'customElements.define("shop-assistant"' in r.text
    etag = r.headers["etag"]
    again = httpx.get(f"{running.base_url}/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    for path in ("/widget.css", "/widget/element.js", "/shared/sse.js", "/store/store.js"):
        r = httpx.get(f"{running.base_url}{path}", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and r.headers["etag"] and "content-encoding" not in r.headers, path
        assert r.headers["access-control-allow-origin"] == "*"  # module scripts of a store's page are CORS fetches


def test_nothing_outside_the_front_end_is_served(running: Running) -> None:
    for path in (
        "/widget/..%2F..%2Fassistant%2Fsettings.py",
        "/widget/%2E%2E%2Fsize.py",
        "/store/index.html",  # only through GET /, filled in
        "/shared/nope.js",
        "/widget/../../pyproject.toml",
    ):
        r = httpx.get(f"{running.base_url}{path}")
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_the_widget_stays_within_its_size_budget() -> None:
    rows = size.sizes()
    names = {name for name, _, _ in rows}
    assert {"widget.js", "widget.css", "widget/element.js", "shared/api.js"} <= names
    total = sum(gz for _, _, gz in rows)
    assert total <= size.BUDGET, f"widget is {total} bytes gzipped, over the {size.BUDGET} budget"
    raw = (size.WEB / "widget.js").read_bytes()
    assert dict((n, gz) for n, _, gz in rows)["widget.js"] == len(gzip.compress(raw, compresslevel=9, mtime=0))


def test_every_widget_string_is_in_english_and_spanish() -> None:
    english, spanish = (size.WEB / "widget" / "strings.js").read_text(encoding="utf-8").split("\n  es: {")
    keys = [set(re.findall(r"^    (\w+):", table, re.M)) for table in (english, spanish)]
    assert keys[0] and keys[0] == keys[1], keys[0] ^ keys[1]


def test_the_console_page_and_its_modules_are_served(running: Running) -> None:
    r = httpx.get(f"{running.base_url}/console", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert '<script type="module" src="/console/console.js"></script>' in r.text
    assert "demo-agent-key" not in r.text.replace("<code>demo-agent-key</code>", "")  # named for people, never used
    again = httpx.get(f"{running.base_url}/console", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    for path in ("/console/console.js", "/console/api.js", "/console/trace.js", "/console/console.css"):
        assert httpx.get(f"{running.base_url}{path}").status_code == 200, path
    assert httpx.get(f"{running.base_url}/console/index.html").status_code == 404  # only through GET /console


def test_agent_keys_are_accepted_from_the_services_own_console_only(store: Running) -> None:
    """The console at /console is same-origin: its agent key is accepted from this server's own origin, and still
    refused from any other page (another host, another port of this host)."""
    own = store.base_url  # where the app knows it listens, as `serve` tells it
    port = int(own.rsplit(":", 1)[1])
    url = f"{own}/v1/agent/sessions"
    for origin in (own, f"http://localhost:{port}"):
        r = httpx.get(url, headers={**AGENT, "Origin": origin})
        assert r.status_code == 200, (origin, r.text)
    for origin in ("https://evil.example", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}"):
        r = httpx.get(url, headers={**AGENT, "Origin": origin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", origin
