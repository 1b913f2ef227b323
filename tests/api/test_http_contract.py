"""Auth boundaries, bad requests and the one error shape; sessions, search, events, health, metrics."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
import pytest

from assistant.api import app as app_module
from assistant.llm.fake import FakeLLM
from assistant.services import Services
from assistant.settings import AssistantSettings
from tests.api.conftest import AGENT, WIDGET, WIDGET_2, Running, build_services, chat, chat_events, parse_sse, serve


def is_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


def test_missing_and_wrong_keys_are_401(running: Running) -> None:
    is_error(chat(running.base_url, {"message": "hi"}, {}), 401, "unauthorized")
    is_error(chat(running.base_url, {"message": "hi"}, {"Authorization": "Bearer nope"}), 401, "unauthorized")
    is_error(httpx.get(f"{running.base_url}/v1/search", params={"q": "shoes"}), 401, "unauthorized")


def test_a_shoppers_session_is_readable_by_them_and_agents_only(running: Running) -> None:
    session = chat_events(running.base_url, {"message": "running shoes"})[0]["data"]["session_id"]
    mine = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET)
    assert mine.status_code == 200 and mine.json()["turns"][0]["status"] == "completed"
    is_error(httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET_2), 404, "session_not_found")
    assert httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=AGENT).status_code == 200
    # Nor can another shopper post into it, or resume its stream.
    is_error(chat(running.base_url, {"message": "hi", "session_id": session}, WIDGET_2), 404, "session_not_found")
    turn_event = f"{mine.json()['turns'][0]['turn_id']}:0"
    is_error(
        chat(running.base_url, {"message": "x", "session_id": session}, {**WIDGET_2, "Last-Event-ID": turn_event}),
        404,
        "session_not_found",
    )


def test_a_widget_key_cannot_act_for_another_shopper(running: Running) -> None:
    is_error(chat(running.base_url, {"message": "hi", "shopper_id": "2"}, WIDGET), 403, "forbidden")
    is_error(chat(running.base_url, {"message": "hi"}, AGENT), 422, "invalid_request")


def test_bad_requests_get_the_error_shape(running: Running) -> None:
    url = f"{running.base_url}/v1/chat"
    r = httpx.post(url, content=b'{"message": ', headers={**WIDGET, "Content-Type": "application/json"})
    is_error(r, 400, "malformed_json")
    is_error(chat(running.base_url, {"text": "hi"}, WIDGET), 422, "invalid_request")
    is_error(chat(running.base_url, {"message": ""}, WIDGET), 422, "invalid_request")
    is_error(chat(running.base_url, {"message": "x" * 5000}, WIDGET), 422, "message_too_long")
    is_error(chat(running.base_url, {"message": "x" * 50_000}, WIDGET), 413, "payload_too_large")
    is_error(chat(running.base_url, {"message": "hi", "session_id": "nope"}, WIDGET), 404, "session_not_found")
    is_error(httpx.get(f"{running.base_url}/v1/nothing-here", headers=WIDGET), 404, "not_found")
    is_error(
        httpx.get(f"{running.base_url}/v1/search", params={"q": "x", "k": 0}, headers=WIDGET), 422, "invalid_request"
    )
    r = httpx.get(f"{running.base_url}/v1/search", params={"q": "x", "min_price": 9, "max_price": 1}, headers=WIDGET)
    is_error(r, 422, "invalid_request")
    assert r.json()["error"]["message"] == "invalid filters: min_price 9.0 is above max_price 1.0"


def test_a_failed_request_loses_nothing_already_stored(running: Running) -> None:
    session = chat_events(running.base_url, {"message": "running shoes"})[0]["data"]["session_id"]
    chat(running.base_url, {"message": "x" * 5000, "session_id": session}, WIDGET)
    turns = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
    assert len(turns) == 1 and turns[0]["status"] == "completed"


def test_rate_limit_per_key(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, FakeLLM(), rate_limit_per_minute=2)
    try:
        with serve(services) as url:
            codes = [httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=WIDGET).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            r = httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=WIDGET)
            is_error(r, 429, "rate_limited")
            assert int(r.headers["Retry-After"]) >= 1
            assert httpx.get(f"{url}/v1/search", params={"q": "shoes"}, headers=AGENT).status_code == 200
    finally:
        asyncio.run(services.close())


def test_search_applies_filters(running: Running) -> None:
    r = httpx.get(f"{running.base_url}/v1/search", params={"q": "shoes", "max_price": 60}, headers=WIDGET)
    assert r.status_code == 200
    products = r.json()["products"]
    assert products and all(p["price"] <= 60 for p in products)


def test_search_query_parameters(running: Running) -> None:
    url = f"{running.base_url}/v1/search"
    documented = httpx.get(f"{running.base_url}/openapi.json").json()["paths"]["/v1/search"]["get"]["parameters"]
    filters = {"min_price", "max_price", "brand", "color", "category", "in_stock", "min_rating"}
    assert {p["name"] for p in documented if p["in"] == "query"} == {"q", "k", "shopper_id"} | filters
    # One brand or several (repeated), any of them; an unknown parameter is ignored, as before.
    one = httpx.get(url, params={"q": "shoes", "brand": "Trail", "colour": "red"}, headers=WIDGET)
    assert one.status_code == 200 and {p["brand"] for p in one.json()["products"]} == {"Trail"}
    two = httpx.get(url, params=[("q", "shoes"), ("brand", "Trail"), ("brand", "Swift")], headers=WIDGET)
    assert two.status_code == 200 and {p["brand"] for p in two.json()["products"]} == {"Trail", "Swift"}
    card = two.json()["products"][0]  # the card gained the catalog's category path and rating count
    assert {"category", "category_path", "rating", "rating_count", "score", "breakdown"} <= set(card)
    # A value out of range is a field error in the one shape.
    bad = httpx.get(url, params={"q": "shoes", "min_rating": 7}, headers=WIDGET)
    is_error(bad, 422, "invalid_request")
    assert [d["field"] for d in bad.json()["error"]["details"]] == ["query.min_rating"]


def test_events_without_a_profile_store_are_refused_clearly(running: Running) -> None:
    body = {"events": [{"product_id": "p3", "kind": "purchase"}]}
    is_error(httpx.post(f"{running.base_url}/v1/events", json=body, headers=WIDGET), 503, "unavailable")


def test_events_feed_personalization_and_a_refused_batch_stores_nothing(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, FakeLLM(), profiles=True)
    profiles = services.catalog.profiles
    assert profiles is not None
    try:
        with serve(services) as url:
            body = {"events": [{"product_id": "p3", "kind": "purchase"}, {"product_id": "p4", "kind": "view"}]}
            r = httpx.post(f"{url}/v1/events", json=body, headers=WIDGET)
            assert r.status_code == 202 and r.json() == {"accepted": 2, "shoppers": ["1"]}
            assert [e.product_id for e in profiles.events("1")] == ["p3", "p4"]
            profile = profiles.get("1")
            assert profile is not None and profile.events == 2 and "boots" in profile.categories
            # A batch with one bad event is refused whole: nothing of it is stored.
            bad = {"events": [{"product_id": "p5", "kind": "view"}, {"product_id": "nope", "kind": "view"}]}
            is_error(httpx.post(f"{url}/v1/events", json=bad, headers=WIDGET), 404, "unknown_product")
            wrong = {"events": [{"product_id": "p5", "kind": "view", "shopper_id": "2"}]}
            is_error(httpx.post(f"{url}/v1/events", json=wrong, headers=WIDGET), 403, "forbidden")
            assert len(profiles.events("1")) == 2 and profiles.events("2") == []
            # An agent records for the shopper it names.
            agent = {"events": [{"product_id": "p5", "kind": "click", "shopper_id": "2"}]}
            r = httpx.post(f"{url}/v1/events", json=agent, headers=AGENT)
            assert r.status_code == 202 and r.json()["shoppers"] == ["2"]
    finally:
        asyncio.run(services.close())


def test_health_metrics_and_cors(running: Running) -> None:
    assert httpx.get(f"{running.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{running.base_url}/readyz").status_code == 200
    chat_events(running.base_url, {"message": "running shoes"})
    metrics = httpx.get(f"{running.base_url}/metrics").text
    assert "shop_turns_started_total 1.0" in metrics and "shop_time_to_products_seconds_count 1.0" in metrics
    pre = httpx.options(
        f"{running.base_url}/v1/chat",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert pre.headers.get("access-control-allow-origin") == "http://localhost:3000"


def test_a_session_survives_a_restart(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, FakeLLM(streams=[[" shoes are here."]]))
    try:
        with serve(services) as url:
            events = chat_events(url, {"message": "running shoes"})
            session = events[0]["data"]["session_id"]
    finally:
        asyncio.run(services.close())
    services, _ = build_services(tmp_path, FakeLLM())
    try:
        with serve(services) as url:
            body = httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET).json()
            assert body["turns"][0]["answer"] == "The shoes are here." and body["turns"][0]["status"] == "completed"
            follow = chat_events(url, {"message": "tell me about the first one", "session_id": session})
            assert follow[1]["data"]["references"] == [events[2]["data"]["products"][0]["id"]]
    finally:
        asyncio.run(services.close())


def test_an_unreachable_model_server_gives_an_error_event_not_a_hung_stream(tmp_path: Path) -> None:
    from assistant.llm.openai_compat import OpenAICompatLLM
    from assistant.llm.vllm_server import free_port

    unreachable = OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1", "nobody", timeout=5)
    services, _ = build_services(tmp_path, unreachable)  # type: ignore[arg-type]
    try:
        with serve(services) as url:
            r = chat(url, {"message": "running shoes"}, WIDGET, timeout=20)
            events = [e["event"] for e in parse_sse(r.text)]
            assert events[:3] == ["session", "intent", "products"] and events[-2:] == ["error", "done"]
            assert httpx.get(f"{url}/readyz").status_code == 503
    finally:
        asyncio.run(services.close())


def test_an_app_that_builds_its_services_keeps_them_out_of_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, _ = build_services(tmp_path, FakeLLM())

    async def built(settings: AssistantSettings) -> Services:
        return services

    monkeypatch.setattr(app_module, "build_services", built)
    app = app_module.create_app(services.settings)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            assert app.state.services is services
            assert gc.get_freeze_count() > 0  # start-up objects frozen: full collections skip them
        assert gc.get_freeze_count() == 0 and app.state.services is None

    asyncio.run(run())


def test_metrics_are_for_operators_only(tmp_path: Path) -> None:
    from assistant.api.app import create_app

    # Without a token: loopback clients only (the uvicorn tests above read it from 127.0.0.1).
    services, _ = build_services(tmp_path / "open", FakeLLM())
    try:

        async def from_outside() -> httpx.Response:
            transport = httpx.ASGITransport(app=create_app(services=services), client=("203.0.113.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
                return await client.get("/metrics")

        outside = asyncio.run(from_outside())
        assert outside.status_code == 403 and outside.json()["error"]["code"] == "forbidden"
    finally:
        asyncio.run(services.close())
    # With a token: its bearer, from anywhere; without it or with another, 401 in the one error shape.
    services, _ = build_services(tmp_path / "token", FakeLLM(), metrics_token="scrape-secret-123")
    try:
        with serve(services) as url:
            assert httpx.get(f"{url}/metrics").status_code == 401
            wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
            ok = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
            assert ok.status_code == 200 and "shop_turns_started_total" in ok.text
    finally:
        asyncio.run(services.close())
