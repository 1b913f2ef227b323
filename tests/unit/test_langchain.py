"""ProductRetriever and the search_products tool over a small in-memory index."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage

from retrieval.encoders import HashingEncoder
from retrieval.filters import Filters
from retrieval.indexer import Indexer
from retrieval.langchain import ProductRetriever, make_search_tool
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.store import VectorStore, make_chroma_client

PRODUCTS = [
    Product(id="bp-1", title="Trail hiking backpack 30L", price=89.0, stock=4, category_path=["outdoors", "backpack"]),
    Product(id="bp-2", title="Expedition hiking backpack 65L", price=220.0, stock=2, category_path=["outdoors"]),
    Product(id="bp-3", title="City laptop backpack", price=60.0, stock=0, category_path=["accessories", "backpack"]),
    Product(id="mug-1", title="Enamel camping mug", price=12.5, stock=30, category_path=["housewares"]),
    Product(id="tent-1", title="Two person hiking tent", price=150.0, category_path=["outdoors", "camping"]),
]


@pytest.fixture()
def outdoor_engine(tmp_path: Path) -> SearchEngine:
    store = VectorStore(make_chroma_client("ephemeral"), f"t-{uuid.uuid4().hex[:12]}")
    encoder = HashingEncoder()
    Indexer(store, encoder, tmp_path / "lexical", show_progress=False).index(PRODUCTS)
    return SearchEngine(store, LexicalIndex.load(tmp_path / "lexical"), encoder)


def test_retriever_returns_documents_ranked_with_breakdown(outdoor_engine: SearchEngine) -> None:
    retriever = ProductRetriever(engine=outdoor_engine, k=3)
    docs = retriever.invoke("hiking backpack")
    assert docs and len(docs) <= 3
    assert all(isinstance(d, Document) for d in docs)
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    top = docs[0]
    assert top.metadata["id"] in {"bp-1", "bp-2"}
    assert set(top.metadata) >= {"id", "title", "price", "currency", "score", "breakdown", "category_path", "in_stock"}
    assert set(top.metadata["breakdown"]) >= {"lexical", "dense", "personal", "quality", "diversity", "final"}
    assert top.metadata["breakdown"]["final"] == pytest.approx(top.metadata["score"])
    assert top.page_content.startswith(top.metadata["title"])
    json.dumps([d.metadata for d in docs])  # serialisable as is


def test_retriever_applies_filters_and_mode(outdoor_engine: SearchEngine) -> None:
    retriever = ProductRetriever(engine=outdoor_engine, k=10, mode="bm25", filters=Filters(category=["outdoors"]))
    docs = retriever.invoke("backpack")
    assert {d.metadata["id"] for d in docs} <= {"bp-1", "bp-2", "tent-1"}
    assert docs[0].metadata["breakdown"]["dense"] == 0.0


def test_tool_respects_max_price(outdoor_engine: SearchEngine) -> None:
    tool = make_search_tool(outdoor_engine)
    assert tool.name == "search_products"
    out = tool.invoke({"query": "hiking backpack", "max_price": 100, "k": 5})
    assert out, "expected at least one product under 100"
    assert all(item["price"] is not None and item["price"] <= 100 for item in out)
    assert "bp-2" not in {item["id"] for item in out}
    assert set(out[0]) == {"id", "title", "price", "currency", "in_stock", "score", "breakdown"}
    json.dumps(out)


def test_tool_reports_contradictory_filters_as_text(outdoor_engine: SearchEngine) -> None:
    out = make_search_tool(outdoor_engine).invoke({"query": "backpack", "min_price": 100, "max_price": 10})
    assert isinstance(out, str) and "min_price" in out


def test_tool_call_gives_json_tool_message(outdoor_engine: SearchEngine) -> None:
    call = {"name": "search_products", "args": {"query": "mug"}, "id": "call-1", "type": "tool_call"}
    msg = make_search_tool(outdoor_engine).invoke(call)
    assert isinstance(msg, ToolMessage)
    assert json.loads(msg.content)[0]["id"] == "mug-1"
