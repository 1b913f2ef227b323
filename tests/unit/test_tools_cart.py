"""Cart tools: catalog prices, quantities capped, out-of-stock refused, personalization fed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from assistant.tools.base import Toolbox, ToolContext
from assistant.tools.cart import MAX_QUANTITY, CartStore, CartTools
from retrieval.product import Product

SHOES = Product(id="s1", title="Trail Shoes", price=50.0, stock=4)
GONE = Product(id="s2", title="Old Boots", price=80.0, stock=0)
CTX = ToolContext(shopper_id="7", session_id="s", turn_id="t")


def toolbox(tmp_path: Path, seen: list[tuple[str, str]]) -> Toolbox:
    catalog = {p.id: p for p in (SHOES, GONE)}
    tools = CartTools(
        CartStore(tmp_path / "cart.sqlite"),
        lambda ids: {i: catalog[i] for i in ids if i in catalog},
        lambda shopper, pid: seen.append((shopper, pid)),
    )
    return Toolbox(tools.tools())


def test_adding_twice_adds_up_and_totals_come_from_the_catalog(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    box = toolbox(tmp_path, seen)
    asyncio.run(box.call("add_to_cart", {"product_id": "s1", "quantity": 2}, CTX))
    r = asyncio.run(box.call("add_to_cart", {"product_id": "s1"}, CTX))
    assert r.ok and r.data["quantity"] == 3 and r.data["cart"]["total"] == 150.0
    assert seen == [("7", "s1"), ("7", "s1")]
    capped = asyncio.run(box.call("add_to_cart", {"product_id": "s1", "quantity": MAX_QUANTITY}, CTX))
    assert capped.data["quantity"] == MAX_QUANTITY


def test_out_of_stock_unknown_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    box = toolbox(tmp_path, [])
    assert "out of stock" in (asyncio.run(box.call("add_to_cart", {"product_id": "s2"}, CTX)).error or "")
    assert not asyncio.run(box.call("add_to_cart", {"product_id": "nope"}, CTX)).ok
    bad = asyncio.run(box.call("add_to_cart", {"product_id": "s1", "quantity": 0}, CTX))
    assert not bad.ok and "quantity" in (bad.error or "")
    view = asyncio.run(box.call("view_cart", {}, CTX))
    assert view.data["cart"]["items"] == []


def test_carts_are_per_shopper_and_removal_reports_what_happened(tmp_path: Path) -> None:
    box = toolbox(tmp_path, [])
    asyncio.run(box.call("add_to_cart", {"product_id": "s1"}, CTX))
    other = CTX.model_copy(update={"shopper_id": "8"})
    assert asyncio.run(box.call("view_cart", {}, other)).data["cart"]["count"] == 0
    assert asyncio.run(box.call("remove_from_cart", {"product_id": "s1"}, other)).data["outcome"] == "not_in_cart"
    assert asyncio.run(box.call("remove_from_cart", {"product_id": "s1"}, CTX)).data["outcome"] == "removed"
