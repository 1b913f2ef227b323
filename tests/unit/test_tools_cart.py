"""Cart tools: catalog prices, quantities capped, out-of-stock refused, personalization fed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.stores import MAX_QUANTITY, CartStore
from assistant.stores.sqlite_records import SqliteRecordStore
from assistant.tools.base import Toolbox, ToolContext, ToolDeps
from assistant.tools.builder import make_toolbox
from retrieval.personalization import ProfileStore
from retrieval.search import SearchEngine

CTX = ToolContext(shopper_id="7", session_id="s", turn_id="t")  # p1: 59.00, in stock; p2: out of stock


@pytest.fixture
def profiles(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "profiles.sqlite")


@pytest.fixture
def box(engine: SearchEngine, profiles: ProfileStore, tmp_path: Path) -> Toolbox:
    carts = CartStore(SqliteRecordStore(tmp_path / "sessions.sqlite"))
    toolbox = make_toolbox(ToolDeps(carts=carts, engine=engine, profiles=profiles))
    assert {"add_to_cart", "remove_from_cart", "view_cart"} <= set(toolbox.names)
    return toolbox


def test_adding_twice_adds_up_and_totals_come_from_the_catalog(box: Toolbox, profiles: ProfileStore) -> None:
    asyncio.run(box.call("add_to_cart", {"product_id": "p1", "quantity": 2}, CTX))
    r = asyncio.run(box.call("add_to_cart", {"product_id": "p1"}, CTX))
    assert r.ok and r.data["quantity"] == 3 and r.data["cart"]["total"] == 177.0
    # Each add is a personalization event, and the shopper's profile is rebuilt from them.
    assert [(e.product_id, e.kind) for e in profiles.events("7")] == [("p1", "add_to_cart")] * 2
    profile = profiles.get("7")
    assert profile is not None and profile.events == 2 and "footwear" in profile.categories
    capped = asyncio.run(box.call("add_to_cart", {"product_id": "p1", "quantity": MAX_QUANTITY}, CTX))
    assert capped.data["quantity"] == MAX_QUANTITY


def test_out_of_stock_unknown_and_bad_arguments_are_refused(box: Toolbox, profiles: ProfileStore) -> None:
    assert "out of stock" in (asyncio.run(box.call("add_to_cart", {"product_id": "p2"}, CTX)).error or "")
    assert not asyncio.run(box.call("add_to_cart", {"product_id": "nope"}, CTX)).ok
    bad = asyncio.run(box.call("add_to_cart", {"product_id": "p1", "quantity": 0}, CTX))
    assert not bad.ok and "quantity" in (bad.error or "")
    view = asyncio.run(box.call("view_cart", {}, CTX))
    assert view.data["cart"]["items"] == [] and profiles.events("7") == []


def test_carts_are_per_shopper_and_removal_reports_what_happened(box: Toolbox) -> None:
    asyncio.run(box.call("add_to_cart", {"product_id": "p1"}, CTX))
    other = CTX.model_copy(update={"shopper_id": "8"})
    assert asyncio.run(box.call("view_cart", {}, other)).data["cart"]["count"] == 0
    assert asyncio.run(box.call("remove_from_cart", {"product_id": "p1"}, other)).data["outcome"] == "not_in_cart"
    assert asyncio.run(box.call("remove_from_cart", {"product_id": "p1"}, CTX)).data["outcome"] == "removed"
