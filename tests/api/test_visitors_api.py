"""Visitor identity over HTTP: publishable keys, visitor tokens, identity verification, origins and CORS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.llm.fake import FakeLLM
from assistant.visitors import VisitorTokens, key_id_of, load_or_create_secret, sign_shopper_id
from tests.api.conftest import AGENT, WIDGET, Running, build_services, chat, chat_events, serve
from tests.api.test_http_contract import is_error

PK = {"X-Widget-Key": "pk_demo"}
PAGE = "http://127.0.0.1:8080"  # an origin the demo publishable key allows
EVIL = "https://evil.example"
DEMO_IDENTITY_SECRET = "demo-identity-secret"


def visitor(base_url: str, body: dict[str, Any] | None = None, headers: dict[str, str] = PK) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/visitors", json=body or {}, headers=headers, timeout=30)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def new_visitor(base_url: str) -> tuple[str, str]:
    r = visitor(base_url)
    assert r.status_code == 200, r.text
    return r.json()["token"], r.json()["shopper_id"]


def test_a_page_gets_an_anonymous_visitor_that_keeps_its_id_on_renewal(running: Running) -> None:
    r = visitor(running.base_url, headers={**PK, "Origin": PAGE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "shopper_id", "expires_at"} and body["shopper_id"].startswith("v-")
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    renewed = visitor(running.base_url, {"visitor_token": body["token"]})
    assert renewed.status_code == 200 and renewed.json()["shopper_id"] == body["shopper_id"]
    # A token that proves nothing is not an error here: the page simply gets a new visitor.
    fresh = visitor(running.base_url, {"visitor_token": body["token"][:-3] + "AAA"})
    assert fresh.status_code == 200 and fresh.json()["shopper_id"] not in (body["shopper_id"], "")


def test_a_visitor_token_reads_and_continues_only_its_own_sessions(running: Running) -> None:
    url = running.base_url
    token_a, shopper_a = new_visitor(url)
    token_b, _ = new_visitor(url)
    events = chat_events(url, {"message": "running shoes"}, bearer(token_a, Origin=PAGE))
    session = events[0]["data"]["session_id"]
    assert events[0]["data"]["shopper_id"] == shopper_a
    assert httpx.get(f"{url}/v1/sessions/{session}", headers=bearer(token_a)).status_code == 200
    follow = chat(url, {"message": "tell me about the first one", "session_id": session}, bearer(token_a))
    assert follow.status_code == 200
    # Visitor B (and the shopper-1 widget key) can neither read nor continue A's session.
    is_error(httpx.get(f"{url}/v1/sessions/{session}", headers=bearer(token_b)), 404, "session_not_found")
    is_error(chat(url, {"message": "hi", "session_id": session}, bearer(token_b)), 404, "session_not_found")
    is_error(httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET), 404, "session_not_found")
    # Nor act for another shopper; agents read it.
    is_error(chat(url, {"message": "hi", "shopper_id": "1"}, bearer(token_b)), 403, "forbidden")
    assert httpx.get(f"{url}/v1/sessions/{session}", headers=AGENT).json()["shopper_id"] == shopper_a
    assert httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=bearer(token_a)).status_code == 200


def test_a_store_signed_shopper_gets_that_shoppers_sessions(running: Running) -> None:
    url = running.base_url
    mine = chat_events(url, {"message": "running shoes"}, WIDGET)[0]["data"]["session_id"]  # shopper "1"
    signature = sign_shopper_id(DEMO_IDENTITY_SECRET, "1")
    r = visitor(url, {"shopper_id": "1", "shopper_signature": signature})
    assert r.status_code == 200 and r.json()["shopper_id"] == "1"
    assert httpx.get(f"{url}/v1/sessions/{mine}", headers=bearer(r.json()["token"])).status_code == 200
    # A login replaces the anonymous visitor the page had.
    anonymous, _ = new_visitor(url)
    r = visitor(url, {"visitor_token": anonymous, "shopper_id": "1", "shopper_signature": signature})
    assert r.json()["shopper_id"] == "1"
    # A signature of another id, or made with another secret, proves nothing; half an identity is invalid.
    wrong = visitor(url, {"shopper_id": "2", "shopper_signature": signature})
    is_error(wrong, 401, "unauthorized")
    assert wrong.json()["error"]["details"] == {"reason": "bad_signature"}
    forged = sign_shopper_id("not-the-identity-secret", "1")
    is_error(visitor(url, {"shopper_id": "1", "shopper_signature": forged}), 401, "unauthorized")
    is_error(visitor(url, {"shopper_id": "1"}), 422, "invalid_request")
    is_error(visitor(url, {"shopper_id": "1", "shopper_signature": "abc"}), 422, "invalid_request")


@pytest.mark.parametrize(
    "case",
    ["tampered", "forged", "expired", "malformed"],
)
def test_forged_tampered_expired_tokens_get_401_in_the_error_shape(running: Running, case: str) -> None:
    url = running.base_url
    token, _ = new_visitor(url)
    secret = load_or_create_secret(running.data_dir / "visitor-secret")
    if case == "tampered":
        prefix, payload, sig = token.split(".")
        bad = f"{prefix}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{sig}"
    elif case == "forged":
        bad = VisitorTokens(b"f" * 64, timedelta(days=1)).issue(key_id_of("pk_demo"), "1")[0]
    elif case == "expired":
        long_ago = VisitorTokens(secret, timedelta(days=30), lambda: datetime.now(UTC) - timedelta(days=31))
        bad = long_ago.issue(key_id_of("pk_demo"), "1")[0]
    else:
        bad = "vt1.not-a-token"
    for r in (
        chat(url, {"message": "hi"}, bearer(bad)),
        httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=bearer(bad)),
        httpx.get(f"{url}/v1/widget/config", headers=bearer(bad)),
    ):
        is_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    if case == "expired":
        assert r.json()["error"]["details"] == {"reason": "expired"}


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[str]:
    keys = {
        "pk_a": {"role": "publishable", "allowed_origins": ["https://a.example"], "identity_secret": "a" * 20},
        "pk_b": {"role": "publishable", "allowed_origins": ["https://b.example"]},
        "agent": {"role": "agent"},
    }
    services, _ = build_services(tmp_path, FakeLLM(), api_keys=keys, agent_origins=["https://console.example"])
    try:
        with serve(services) as url:
            yield url
    finally:
        asyncio.run(services.close())


def test_a_token_swapped_to_another_key_or_origin_is_refused(two_stores: str) -> None:
    url = two_stores
    r = visitor(url, headers={"X-Widget-Key": "pk_a", "Origin": "https://a.example"})
    assert r.status_code == 200
    token = r.json()["token"]
    assert chat(url, {"message": "running shoes"}, bearer(token, Origin="https://a.example")).status_code == 200
    # Sent as another store's key's visitor: 401; from another store's page: 403.
    swapped = chat(url, {"message": "hi"}, bearer(token, **{"X-Widget-Key": "pk_b"}))
    is_error(swapped, 401, "unauthorized")
    assert swapped.json()["error"]["details"] == {"reason": "wrong_key"}
    is_error(chat(url, {"message": "hi"}, bearer(token, Origin="https://b.example")), 403, "forbidden")
    # A publishable key from a page it does not allow gets nothing.
    is_error(visitor(url, headers={"X-Widget-Key": "pk_b", "Origin": "https://a.example"}), 403, "forbidden")
    # A key without an identity secret cannot vouch for a shopper.
    body = {"shopper_id": "1", "shopper_signature": sign_shopper_id("a" * 20, "1")}
    is_error(visitor(url, body, headers={"X-Widget-Key": "pk_b"}), 403, "forbidden")
    assert visitor(url, body, headers={"X-Widget-Key": "pk_a"}).json()["shopper_id"] == "1"
    # The demo keys are off once keys are configured: pk_demo and demo-widget-key are unknown here.
    is_error(visitor(url, headers={"X-Widget-Key": "pk_demo"}), 401, "unauthorized")


def test_a_token_of_a_key_no_longer_configured_is_401(tmp_path: Path) -> None:
    keys = {"pk_a": {"role": "publishable", "allowed_origins": ["https://a.example"]}}
    services, _ = build_services(tmp_path, FakeLLM(), api_keys=keys)
    try:
        with serve(services) as url:
            token = visitor(url, headers={"X-Widget-Key": "pk_a"}).json()["token"]
    finally:
        asyncio.run(services.close())
    services, _ = build_services(tmp_path, FakeLLM())  # same data dir, demo keys: pk_a is gone
    try:
        with serve(services) as url:
            r = httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=bearer(token))
            is_error(r, 401, "unauthorized")
            assert r.json()["error"]["details"] == {"reason": "unknown_key"}
    finally:
        asyncio.run(services.close())


def test_visitors_survive_a_restart_and_a_set_secret_is_used(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, FakeLLM())
    try:
        with serve(services) as url:
            token, shopper = new_visitor(url)
            session = chat_events(url, {"message": "running shoes"}, bearer(token))[0]["data"]["session_id"]
    finally:
        asyncio.run(services.close())
    services, _ = build_services(tmp_path, FakeLLM())
    try:
        with serve(services) as url:
            assert httpx.get(f"{url}/v1/sessions/{session}", headers=bearer(token)).status_code == 200
    finally:
        asyncio.run(services.close())
    # With SHOP_VISITOR_SECRET set, tokens are signed with it: the data dir's secret no longer verifies them.
    services, _ = build_services(tmp_path, FakeLLM(), visitor_secret="x" * 40)
    try:
        with serve(services) as url:
            is_error(httpx.get(f"{url}/v1/sessions/{session}", headers=bearer(token)), 401, "unauthorized")
            assert new_visitor(url)[1] != shopper
    finally:
        asyncio.run(services.close())


def test_a_publishable_key_alone_reads_nothing(running: Running) -> None:
    url = running.base_url
    for headers in ({"Authorization": "Bearer pk_demo"}, {"X-API-Key": "pk_demo"}):
        is_error(chat(url, {"message": "hi"}, headers), 403, "forbidden")
        is_error(httpx.get(f"{url}/v1/search", params={"q": "x"}, headers=headers), 403, "forbidden")
    is_error(visitor(url, headers={}), 401, "unauthorized")
    is_error(visitor(url, headers={"X-Widget-Key": "demo-widget-key"}), 401, "unauthorized")
    is_error(visitor(url, headers={"X-Widget-Key": "pk_nope"}), 401, "unauthorized")


def test_agent_keys_are_refused_from_browser_origins(running: Running, two_stores: str) -> None:
    # A store's page on another origin (one the demo widget key allows); the service's own origin is its console's.
    r = chat(running.base_url, {"message": "hi", "shopper_id": "1"}, {**AGENT, "Origin": "http://localhost:3000"})
    is_error(r, 403, "forbidden")
    assert httpx.get(f"{running.base_url}/v1/search", params={"q": "x"}, headers=AGENT).status_code == 200
    # A configured agent origin (an agent console) is accepted; others still are not.
    agent = {"Authorization": "Bearer agent"}
    ok = httpx.get(f"{two_stores}/v1/search", params={"q": "x"}, headers={**agent, "Origin": "https://console.example"})
    assert ok.status_code == 200
    no = httpx.get(f"{two_stores}/v1/search", params={"q": "x"}, headers={**agent, "Origin": "https://a.example"})
    is_error(no, 403, "forbidden")


def test_cors_allows_the_widget_pages_origins(running: Running) -> None:
    url = running.base_url
    for path, method in (("/v1/visitors", "POST"), ("/v1/chat", "POST"), ("/v1/widget/config", "GET")):
        pre = httpx.options(
            f"{url}{path}",
            headers={
                "Origin": PAGE,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type,x-widget-key,last-event-id",
            },
        )
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == PAGE
        assert "x-widget-key" in pre.headers["access-control-allow-headers"].lower()
    foreign = httpx.options(f"{url}/v1/visitors", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in foreign.headers
    r = visitor(url, headers={**PK, "Origin": PAGE})
    assert r.headers["access-control-allow-origin"] == PAGE


def test_widget_config(running: Running) -> None:
    r = httpx.get(f"{running.base_url}/v1/widget/config", headers={**PK, "Origin": PAGE})
    assert r.status_code == 200
    assert r.json() == {
        "image_search": False,
        "languages": ["en", "es"],
        "default_language": "en",
        "store_name": "Retail Demo Store",
    }
    token, _ = new_visitor(running.base_url)
    assert httpx.get(f"{running.base_url}/v1/widget/config", headers=bearer(token)).json() == r.json()
    is_error(httpx.get(f"{running.base_url}/v1/widget/config"), 401, "unauthorized")
    is_error(httpx.get(f"{running.base_url}/v1/widget/config", headers={**PK, "Origin": EVIL}), 403, "forbidden")


def test_new_operations_document_their_errors_in_the_one_shape(running: Running) -> None:
    spec = httpx.get(f"{running.base_url}/openapi.json").json()
    for path, method, statuses in (
        ("/v1/visitors", "post", {"401", "403", "422"}),
        ("/v1/widget/config", "get", {"401", "403"}),
    ):
        responses = spec["paths"][path][method]["responses"]
        assert statuses <= set(responses), (path, sorted(responses))
        for status in statuses:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
