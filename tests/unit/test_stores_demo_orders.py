"""Generated demo orders: deterministic, idempotent, consistent with the catalog and each shopper's persona."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assistant.stores.demo_orders import seed_demo_orders
from assistant.stores.orders import Order, OrderStore
from assistant.stores.sqlite_records import SqliteRecordStore
from tests.conftest import SHARED_DATA
from tests.unit.conftest import SMALL_CATALOG

NOW = datetime(2025, 3, 1, tzinfo=UTC)
CATALOG = {p.id: p for p in SMALL_CATALOG}
USERS = [
    {"id": "1", "persona": "footwear_housewares_apparel"},
    {"id": "2", "persona": "accessories_footwear_books"},
    {"id": "3", "persona": "housewares_apparel_footwear"},
    {"id": "4", "persona": "books_groceries_floral"},  # no products in these categories: no orders
    {"id": "5", "persona": ""},
] + [{"id": str(i), "persona": "apparel_footwear_accessories"} for i in range(6, 40)]


@pytest.fixture
def users_path(tmp_path: Path) -> Path:
    path = tmp_path / "users.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(USERS, fh)
    return path


def order_store(path: Path) -> OrderStore:
    return OrderStore(SqliteRecordStore(path))


def _all(store: OrderStore) -> list[Order]:
    return sorted((o for u in USERS for o in store.for_shopper(str(u["id"]), limit=100)), key=lambda o: o.order_id)


def test_same_inputs_give_the_same_orders(tmp_path: Path, users_path: Path) -> None:
    a, b = order_store(tmp_path / "a.sqlite"), order_store(tmp_path / "b.sqlite")
    added = seed_demo_orders(a, SMALL_CATALOG, users_path, now=NOW)
    assert added == seed_demo_orders(b, SMALL_CATALOG, users_path, now=NOW) > len(USERS) - 2
    assert _all(a) == _all(b)
    c = order_store(tmp_path / "c.sqlite")
    seed_demo_orders(c, SMALL_CATALOG, users_path, now=NOW, seed=7)
    assert [o.order_id for o in _all(c)] != [o.order_id for o in _all(a)]


def test_reseeding_adds_nothing_and_keeps_changes(tmp_path: Path, users_path: Path) -> None:
    store = order_store(tmp_path / "orders.sqlite")
    first = seed_demo_orders(store, SMALL_CATALOG, users_path, now=NOW)
    placed = next(o for o in _all(store) if o.status == "placed")
    store.cancel(placed.order_id, NOW)
    assert seed_demo_orders(store, SMALL_CATALOG, users_path, now=NOW) == 0
    # A later start-up (another `now`) still recognises the orders it generated before.
    assert seed_demo_orders(store, SMALL_CATALOG, users_path) == 0
    assert store.count() == first
    assert store.get(placed.order_id).status == "cancelled"  # type: ignore[union-attr]


def test_orders_follow_the_catalog_and_the_persona(tmp_path: Path, users_path: Path) -> None:
    store = order_store(tmp_path / "orders.sqlite")
    seed_demo_orders(store, SMALL_CATALOG, users_path, now=NOW)
    assert store.for_shopper("4") == [] and store.for_shopper("5") == []
    orders = _all(store)
    assert len({o.order_id for o in orders}) == len(orders)
    assert {o.status for o in orders} >= {"placed", "shipped", "delivered"}
    personas = {str(u["id"]): set(str(u["persona"]).split("_")) for u in USERS}
    for o in orders:
        for item in o.items:
            product = CATALOG[item.product_id]
            assert (item.title, item.unit_price) == (product.title, product.price)
            assert personas[o.shopper_id] & {c.lower() for c in product.category_path}
        assert o.created_at <= NOW
        if o.status in ("shipped", "delivered", "returned"):
            assert o.tracking and o.shipped_at and o.shipped_at >= o.created_at
        if o.status in ("delivered", "returned"):
            assert o.delivered_at and o.shipped_at and o.shipped_at <= o.delivered_at <= NOW
        if o.status == "placed":
            assert o.shipped_at is None and o.tracking is None
        if o.status == "returned":
            assert o.returns and set(o.returns[0].product_ids) == {i.product_id for i in o.items}
    # Every shopper with orders has one recent order, so "where is my order?" finds something.
    newest = {u: store.for_shopper(u, limit=1)[0] for u in personas if store.for_shopper(u, limit=1)}
    assert all((NOW - o.created_at).days < 8 for o in newest.values())


def test_seeds_the_real_retail_demo_store_shoppers(tmp_path: Path) -> None:
    users = SHARED_DATA / "retail-demo-store" / "users.json.gz"
    if not users.is_file():
        pytest.skip(f"shared data not found at {users}")
    store = order_store(tmp_path / "orders.sqlite")
    added = seed_demo_orders(store, SMALL_CATALOG, users, now=NOW, limit=30)
    assert added > 0
    first = store.for_shopper("1", limit=10)
    assert first and all(o.order_id.startswith("ORD-") and len(o.order_id) == 10 for o in first)
