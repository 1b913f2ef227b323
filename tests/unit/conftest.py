"""Fast fixtures: fake encoders, in-memory Chroma, small catalogs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from retrieval.encoders import HashingEncoder
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.store import VectorStore, make_chroma_client


def make_product(pid: str, title: str, **kw: object) -> Product:
    return Product(id=pid, title=title, **kw)  # type: ignore[arg-type]


SMALL_CATALOG = [
    make_product(
        "p1",
        "Red running shoes",
        brand="Swift",
        color="Red",
        category_path=["footwear", "sneakers"],
        price=59.0,
        stock=3,
        rating=4.5,
        rating_count=120,
    ),
    make_product(
        "p2",
        "Blue running shoes",
        brand="Swift",
        color="Blue",
        category_path=["footwear", "sneakers"],
        price=89.0,
        stock=0,
        rating=4.1,
        rating_count=40,
    ),
    make_product(
        "p3",
        "Leather hiking boots",
        brand="Trail",
        color="Brown",
        category_path=["footwear", "boots"],
        price=149.0,
        stock=7,
        rating=4.8,
        rating_count=300,
    ),
    make_product(
        "p4",
        "Canvas backpack for hiking",
        brand="Trail",
        color="Green",
        category_path=["accessories", "backpack"],
        price=45.0,
        stock=12,
        rating=3.9,
        rating_count=15,
    ),
    make_product(
        "p5",
        "Ceramic coffee mug",
        brand="Homely",
        color="White",
        category_path=["housewares", "mugs"],
        price=12.5,
        stock=40,
        rating=4.2,
        rating_count=8,
    ),
    make_product(
        "p6",
        "Espresso coffee maker",
        brand="Homely",
        color="Black",
        category_path=["housewares", "kitchen"],
        price=120.0,
        stock=2,
    ),
    make_product(
        "p7",
        "Wool winter hat",
        brand="Cozy",
        color="Red",
        category_path=["apparel", "hats"],
        price=25.0,
        stock=9,
        rating=4.0,
        rating_count=60,
    ),
    make_product(
        "p8",
        "Trail running shoes waterproof",
        brand="Trail",
        color="Black",
        category_path=["footwear", "sneakers"],
        price=130.0,
        stock=5,
        rating=4.6,
        rating_count=90,
    ),
]


@pytest.fixture
def store() -> VectorStore:
    client = make_chroma_client("ephemeral")
    return VectorStore(client, f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder(dim=128)


@pytest.fixture
def indexer(store: VectorStore, encoder: HashingEncoder, tmp_path: Path) -> Indexer:
    return Indexer(store, encoder, tmp_path / "lexical", show_progress=False)


@pytest.fixture
def engine(indexer: Indexer, store: VectorStore, encoder: HashingEncoder, tmp_path: Path) -> SearchEngine:
    indexer.index(SMALL_CATALOG)
    return SearchEngine(store, LexicalIndex.load(tmp_path / "lexical"), encoder)
