"""API tests: the real app served by uvicorn on loopback, over fakes for the model and the router.

Real parts: the FastAPI app and SSE, SQLite sessions, the tools (orders, the shipped store policies,
handoffs), the search engine over a small catalog (hashing encoder, ephemeral Chroma).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from assistant.api.app import create_app
from assistant.intents.router import RoutedIntent
from assistant.llm.base import LLM
from assistant.llm.fake import FakeLLM
from assistant.services import Services, assemble, make_live_hub
from assistant.sessions import make_session_store
from assistant.sessions.sqlite_store import SqliteSessionStore
from assistant.settings import SHIPPED_POLICIES, AssistantSettings
from assistant.stores import Order, OrderItem, OrderStore, open_stores
from assistant.tools import ToolDeps, make_toolbox
from retrieval.clip import ImageEncoder
from retrieval.encoders import HashingEncoder
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.personalization import ProfileStore
from retrieval.policies import PolicyIndex
from retrieval.policy_docs import load_passages
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.store import VectorStore, make_chroma_client
from tests.unit.conftest import SMALL_CATALOG

WIDGET = {"Authorization": "Bearer demo-widget-key"}  # shopper "1"
WIDGET_2 = {"Authorization": "Bearer demo-widget-key-2"}  # shopper "2"
AGENT = {"Authorization": "Bearer demo-agent-key"}

# Keyword routing stands in for the trained classifier (tested on its own in tests/unit/test_router.py).
ROUTES = [
    ("to my cart", "cart_add", "SHOPPING"),
    ("out of my cart", "cart_remove", "SHOPPING"),
    ("compare", "compare_products", "SHOPPING"),
    ("cancel", "cancel_order", "ORDER"),
    ("return", "get_refund", "REFUNDS"),
    ("where is my order", "track_order", "ORDER"),
    ("human", "contact_human_agent", "CONTACT"),
    ("shipping", "delivery_options", "DELIVERY"),
    ("hello", "greeting", "CONVERSATION"),
    ("weather", "out_of_scope", "OUT_OF_SCOPE"),
    ("tell me", "product_question", "SHOPPING"),
]


# Words the stand-in classifier is unsure about (for the model's parse of unclear messages).
UNSURE_ROUTES = [("undo", "cancel_order", "ORDER")]


class KeywordRouter:
    def route(self, text: str) -> RoutedIntent:
        low = text.lower()
        for word, intent, group in UNSURE_ROUTES:
            if word in low:
                return RoutedIntent(intent=intent, group=group, confidence=0.2, source="classifier")
        for word, intent, group in ROUTES:
            if word in low:
                return RoutedIntent(intent=intent, group=group, confidence=0.9, source="rule")
        return RoutedIntent(intent="search_products", group="SHOPPING", confidence=0.8, source="classifier")


@dataclass
class Running:
    base_url: str
    services: Services
    llm: FakeLLM
    orders: OrderStore
    data_dir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_order(order_id: str, shopper: str, status: str, product_id: str = "p1", price: float = 59.0) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_id=order_id,
        shopper_id=shopper,
        status=status,  # type: ignore[arg-type]
        items=[OrderItem(product_id=product_id, title="Red running shoes", unit_price=price, quantity=1)],
        created_at=now - timedelta(days=3),
        shipped_at=now - timedelta(days=2) if status != "placed" else None,
        delivered_at=now - timedelta(days=1) if status == "delivered" else None,
        tracking="TRK123" if status != "placed" else None,
    )


def build_services(
    data_dir: Path,
    llm: LLM,
    catalog: list[Product] | None = None,
    profiles: bool = False,
    image_encoder: ImageEncoder | None = None,
    image_root: Path | None = None,
    shared_live: bool = False,
    **overrides: Any,
) -> tuple[Services, OrderStore]:
    """The service over a small catalog; `profiles`: with a personalization store (else none, as without one);
    `image_encoder`: with photo search over the catalog's images under `image_root`; `shared_live`: sessions and
    live delivery behind `session_store_url` too (one replica of several on that URL)."""
    catalog = SMALL_CATALOG if catalog is None else catalog
    options: dict[str, Any] = {"llm_slots": False, "min_relevance": 0.0, **overrides}
    settings = AssistantSettings(
        data_dir=data_dir, llm_mode="external", llm_base_url="http://127.0.0.1:9/v1", **options
    )
    client = make_chroma_client("ephemeral")
    store = VectorStore(client, f"t{uuid.uuid4().hex[:8]}")
    encoder = HashingEncoder()
    lexical = data_dir / "lexical"
    Indexer(store, encoder, lexical, image_encoder=image_encoder, image_root=image_root, show_progress=False).index(
        catalog
    )
    engine = SearchEngine(store, LexicalIndex.load(lexical), encoder, image_encoder)
    # Orders, carts and handoffs behind the sessions' URL, as the service opens them.
    stores = open_stores(settings.resolved_session_store_url)
    orders = stores.orders
    orders.add(
        [
            demo_order("ORD-AAAAAA", "1", "placed"),
            demo_order("ORD-BBBBBB", "1", "delivered", "p3", 149.0),
            demo_order("ORD-CCCCCC", "2", "placed"),
        ]
    )
    policies = PolicyIndex.build(load_passages(SHIPPED_POLICIES))  # BM25 alone: no encoder here
    profile_store = ProfileStore(data_dir / "profiles.sqlite") if profiles else None
    toolbox = make_toolbox(
        ToolDeps(
            engine=engine,
            profiles=profile_store,
            orders=orders,
            carts=stores.carts,
            handoffs=stores.handoffs,
            policies=policies,
        )
    )
    url = settings.resolved_session_store_url
    sessions = make_session_store(url) if shared_live else SqliteSessionStore(data_dir / "sessions.sqlite")
    services = assemble(
        settings,
        llm=llm,
        sessions=sessions,
        engine=engine,
        toolbox=toolbox,
        router=KeywordRouter(),  # type: ignore[arg-type]
        catalog=catalog,
        profiles=profile_store,
        stores=stores,
        hub=make_live_hub(url, sessions) if shared_live else None,
    )
    services.closers = [stores.close, *([profile_store.close] if profile_store else [])]
    return services, orders


@contextmanager
def serve(services: Services, port: int | None = None) -> Iterator[str]:
    """Run the app in a uvicorn thread on `port` (default: a free loopback port); yield its base URL."""
    app = create_app(services=services)
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    llm = FakeLLM()
    services, orders = build_services(tmp_path, llm)
    try:
        with serve(services) as url:
            yield Running(url, services, llm, orders, tmp_path)
    finally:
        asyncio.run(services.close())


def parse_sse(text: str) -> list[dict[str, Any]]:
    """SSE wire format → [{'event', 'id', 'data'}]; comments (heartbeats) are skipped."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        data_lines = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "data":
                data_lines.append(value)
            else:
                fields[key] = value
        if data_lines:
            fields["data"] = json.loads("\n".join(data_lines))
            events.append(fields)
    return events


def chat(base_url: str, body: dict[str, Any], headers: dict[str, str], **kw: Any) -> httpx.Response:
    kw.setdefault("timeout", 30)
    return httpx.post(f"{base_url}/v1/chat", json=body, headers=headers, **kw)


def chat_events(base_url: str, body: dict[str, Any], headers: dict[str, str] = WIDGET) -> list[dict[str, Any]]:
    r = chat(base_url, body, headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse_sse(r.text)


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def answer(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in events if e["event"] == "token")
