"""Catalog tools: facts come from the catalog, filters hold, bad arguments come back as named errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.tools import products
from assistant.tools.base import Toolbox, ToolContext, ToolDeps, ToolResult
from retrieval.personalization import ProfileStore, profile_from_interests
from retrieval.search import SearchEngine
from tests.unit.conftest import SMALL_CATALOG

CATALOG = {p.id: p for p in SMALL_CATALOG}
CARD_KEYS = {"id", "title", "price", "currency", "stock", "in_stock", "brand", "color", "category", "category_path"}
CARD_KEYS |= {"rating", "rating_count", "image"}
CTX = ToolContext(shopper_id="s1", session_id="sess", turn_id="t1")


@pytest.fixture
def profiles(tmp_path: Path) -> Iterator[ProfileStore]:
    store = ProfileStore(tmp_path / "profiles.sqlite")
    yield store
    store.close()


@pytest.fixture
def toolbox(engine: SearchEngine, profiles: ProfileStore) -> Toolbox:
    return Toolbox(products.tools(ToolDeps(engine=engine, profiles=profiles)))


def call(toolbox: Toolbox, name: str, args: dict[str, Any], ctx: ToolContext = CTX) -> ToolResult:
    return asyncio.run(toolbox.call(name, args, ctx))


def test_search_cards_carry_catalog_facts_and_citations(toolbox: Toolbox) -> None:
    res = call(toolbox, "search_products", {"query": "running shoes", "limit": 3})
    assert res.ok and res.error is None
    cards = res.data["products"]
    assert 1 <= len(cards) <= 3
    for card in cards:
        p = CATALOG[card["id"]]
        assert (card["title"], card["price"], card["stock"], card["brand"], card["color"], card["rating"]) == (
            p.title,
            p.price,
            p.stock,
            p.brand,
            p.color,
            p.rating,
        )
        assert card["category"] == p.category and card["currency"] == "USD"
        assert set(card) == CARD_KEYS | {"score", "breakdown"}
        assert {"lexical", "dense", "relevance", "final"} <= set(card["breakdown"])
    assert res.citations == [f"product:{c['id']}" for c in cards]
    assert res.data["personalized"] is False
    # How well the best card matches the query, before fusion: the planner's "does the store carry it" signal.
    assert 0.0 < res.data["best_match"] <= 1.0
    assert res.data["best_match"] > call(toolbox, "search_products", {"query": "zzqx vvbn", "limit": 3}).data.get(
        "best_match", 0.0
    )


def test_search_filters_hold(toolbox: Toolbox) -> None:
    res = call(
        toolbox,
        "search_products",
        {"query": "shoes boots", "category": "footwear", "max_price": 100, "in_stock": True, "limit": 10},
    )
    assert res.ok
    assert [c["id"] for c in res.data["products"]] == ["p1"]  # p2 is out of stock, p3/p8 cost more
    assert res.data["filters"] == {"max_price": 100, "category": ["footwear"], "in_stock": True}
    res = call(toolbox, "search_products", {"query": "shoes", "brand": ["trail"], "min_rating": 4.7, "limit": 10})
    assert [c["id"] for c in res.data["products"]] == ["p3"]


def test_search_is_personalised_by_the_shoppers_profile(toolbox: Toolbox, profiles: ProfileStore) -> None:
    profiles.save(profile_from_interests("s2", ["apparel", "hats"]))
    args = {"query": "gift", "limit": 3}
    plain = call(toolbox, "search_products", args, CTX)
    mine = call(toolbox, "search_products", args, ToolContext(shopper_id="s2", session_id="x", turn_id="1"))
    assert plain.data["personalized"] is False and mine.data["personalized"] is True
    assert plain.data["products"][0]["id"] != "p7"
    assert mine.data["products"][0]["id"] == "p7"  # an ambiguous query surfaces the hat for a shopper into hats
    assert mine.data["products"][0]["breakdown"]["personal"] > 0


def test_size_is_not_claimed_when_the_catalog_has_none(toolbox: Toolbox) -> None:
    res = call(toolbox, "search_products", {"query": "running shoes", "size": "42"})
    assert res.ok and "not confirmed" in res.data["notes"][0]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"query": "shoes", "min_price": -1}, "min_price"),
        ({"query": "shoes", "min_price": 90, "max_price": 10}, "min_price 90.0 is above max_price 10.0"),
        ({"query": "shoes", "limit": 0}, "limit"),
        ({"query": "shoes", "min_rating": 9}, "min_rating"),
        ({"query": "   "}, "query"),
        ({"max_price": 10}, "query"),
        ({"query": "shoes", "colour": "red"}, "colour"),
    ],
)
def test_bad_search_arguments_name_the_field(toolbox: Toolbox, args: dict[str, Any], field: str) -> None:
    res = call(toolbox, "search_products", args)
    assert not res.ok and res.error is not None
    assert field in res.error and res.data == {} and res.citations == []
    assert res.arguments == args  # the trace keeps what the model sent


def test_search_names_the_old_price_arguments_unknown(toolbox: Toolbox) -> None:
    """One set of filter names everywhere: min_price / max_price, as in the HTTP API and the LangChain tool."""
    old = call(toolbox, "search_products", {"query": "shoes", "price_max": 50})
    assert not old.ok and "price_max: unknown argument" in (old.error or "")


def test_get_product_and_not_found(toolbox: Toolbox) -> None:
    res = call(toolbox, "get_product", {"product_id": "product:p3"})
    assert res.ok and res.citations == ["product:p3"]
    assert res.data["product"]["title"] == "Leather hiking boots" and res.data["product"]["price"] == 149.0
    assert set(res.data["product"]) == CARD_KEYS | {"description", "bullet_points", "attributes"}
    missing = call(toolbox, "get_product", {"product_id": "nope"})
    assert not missing.ok and missing.error == "That product isn't in our catalog any more."
    assert missing.data == {"product_id": "nope"}


def test_compare_flags_differences_and_best_values(toolbox: Toolbox) -> None:
    res = call(toolbox, "compare_products", {"product_ids": ["p1", "p2"]})
    assert res.ok and res.citations == ["product:p1", "product:p2"]
    rows = {r["field"]: r for r in res.data["rows"]}
    assert rows["price"]["values"] == [59.0, 89.0] and rows["price"]["differs"] and rows["price"]["best"] == "p1"
    assert rows["rating"]["best"] == "p1"
    assert rows["brand"]["values"] == ["Swift", "Swift"] and not rows["brand"]["differs"]
    assert rows["stock"]["values"] == [3, 0] and rows["in_stock"]["values"] == [True, False]
    assert set(res.data["differences"]) == {"price", "rating", "rating_count", "stock", "in_stock", "color"}
    three = call(toolbox, "compare_products", {"product_ids": ["p1", "p3", "p5"]})
    assert [p["id"] for p in three.data["products"]] == ["p1", "p3", "p5"]
    assert set(three.data["products"][0]) == {"id", "title", "image"}
    assert {r["field"]: r["differs"] for r in three.data["rows"]}["category"] is True


@pytest.mark.parametrize(
    "ids", [["p1"], ["p1", "p2", "p3", "p4", "p5"], ["p1", "p1"], ["p1", " "]], ids=["one", "five", "dup", "blank"]
)
def test_compare_needs_two_to_four_distinct_ids(toolbox: Toolbox, ids: list[str]) -> None:
    res = call(toolbox, "compare_products", {"product_ids": ids})
    assert not res.ok and "product_ids" in (res.error or "")


def test_compare_reports_unknown_ids(toolbox: Toolbox) -> None:
    res = call(toolbox, "compare_products", {"product_ids": ["p1", "zz"]})
    assert not res.ok and res.data == {"missing": ["zz"]}  # the ids in the data; the message is for a shopper
    assert res.error == "That product isn't in our catalog any more."
