"""Persona -> demo events."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retrieval.personas import load_users, persona_categories, synthesize_events
from retrieval.product import Product

NOW = datetime(2025, 1, 15, tzinfo=UTC)


def _catalog() -> list[Product]:
    cats = ["furniture", "homedecor", "housewares", "apparel", "footwear"]
    return [
        Product(id=f"{cat}-{i}", title=f"{cat} item {i}", price=10.0 + i, category_path=[cat, "style"])
        for cat in cats
        for i in range(6)
    ]


def test_persona_categories_splits_lowercases_and_dedupes() -> None:
    assert persona_categories("furniture_homedecor_housewares") == ["furniture", "homedecor", "housewares"]
    assert persona_categories("Books_apparel__books") == ["books", "apparel"]
    assert persona_categories("") == []


def test_events_only_reference_persona_categories() -> None:
    products = _catalog()
    by_id = {p.id: p for p in products}
    user = {"id": "7", "persona": "furniture_homedecor_housewares"}
    events = synthesize_events(user, products, random.Random(1), n=30, now=NOW)
    assert len(events) == 30
    wanted = set(persona_categories(user["persona"]))
    assert all(by_id[e.product_id].category_path[0] in wanted for e in events)
    assert {by_id[e.product_id].category_path[0] for e in events} == wanted  # every interest shows up
    assert all(e.shopper_id == "7" for e in events)
    assert all(NOW - timedelta(days=31) <= e.ts <= NOW for e in events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert {e.kind for e in events} <= {"view", "click", "add_to_cart", "purchase"}


def test_events_are_deterministic_for_a_seed() -> None:
    products = _catalog()
    user = {"id": "7", "persona": "apparel_footwear_accessories"}
    first = synthesize_events(user, products, random.Random(42), now=NOW)
    again = synthesize_events(user, list(reversed(products)), random.Random(42), now=NOW)
    other = synthesize_events(user, products, random.Random(43), now=NOW)
    assert [e.model_dump() for e in first] == [e.model_dump() for e in again]
    assert [e.model_dump() for e in first] != [e.model_dump() for e in other]
    assert {e.product_id.split("-")[0] for e in first} <= {"apparel", "footwear"}  # no accessories in catalog


def test_no_events_without_matching_products_or_persona() -> None:
    products = _catalog()
    assert synthesize_events({"id": "1", "persona": "books_groceries"}, products, random.Random(0), now=NOW) == []
    assert synthesize_events({"id": "1"}, products, random.Random(0), now=NOW) == []
    assert synthesize_events({"persona": "furniture"}, products, random.Random(0), now=NOW) == []


def test_load_users_reads_gzip_and_plain(tmp_path: Path) -> None:
    users = [{"id": "1", "persona": "furniture_homedecor_housewares"}]
    gz = tmp_path / "users.json.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        json.dump(users, fh)
    plain = tmp_path / "users.json"
    plain.write_text(json.dumps(users))
    assert load_users(gz) == users == load_users(plain)
