"""Demo shopper behaviour from Retail Demo Store personas ("furniture_homedecor_housewares" -> events)."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retrieval.personalization import Event, EventKind
from retrieval.product import Product

# Mostly browsing, some clicks, a few strong signals: roughly what a storefront log looks like.
KIND_WEIGHTS: dict[EventKind, float] = {"view": 0.55, "click": 0.25, "add_to_cart": 0.1, "purchase": 0.1}
HISTORY_DAYS = 30.0


def load_users(path: str | Path) -> list[dict[str, Any]]:
    """Shopper records from a JSON list, gzipped (`users.json.gz`) or not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"users file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, list) or not all(isinstance(u, dict) for u in data):
        raise ValueError(f"{path}: expected a JSON list of user objects")
    return data


def persona_categories(persona: str) -> list[str]:
    """Category names a persona declares, in order, lowercased and without repeats."""
    out: list[str] = []
    for part in (persona or "").lower().split("_"):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def products_by_category(products: Sequence[Product], categories: Sequence[str]) -> dict[str, list[Product]]:
    """For each category, the products whose category path (any level) names it, sorted by id."""
    pools: dict[str, list[Product]] = {c: [] for c in categories}
    for p in sorted(products, key=lambda p: p.id):
        levels = {c.lower() for c in p.category_path}
        for c in categories:
            if c in levels:
                pools[c].append(p)
    return pools


def synthesize_events(
    user: dict[str, Any],
    products: Sequence[Product],
    rng: random.Random,
    n: int = 12,
    now: datetime | None = None,
) -> list[Event]:
    """`n` events (oldest first) on products from the user's persona categories, drawn with `rng`.

    Categories take turns so each declared interest shows up; a user with no persona, or whose
    categories have no products, gets no events. With the same `rng` seed, `products` and `now`
    the result is identical.
    """
    shopper_id = str(user.get("id") or "").strip()
    if not shopper_id or n <= 0:
        return []
    categories = persona_categories(str(user.get("persona") or ""))
    pools = products_by_category(products, categories)
    usable = [c for c in categories if pools[c]]
    if not usable:
        return []
    now = now or datetime.now(UTC)
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    events: list[Event] = []
    for i in range(n):
        product = rng.choice(pools[usable[i % len(usable)]])
        ts = now - timedelta(days=rng.uniform(0.0, HISTORY_DAYS))
        kind = rng.choices(kinds, weights)[0]
        events.append(Event(shopper_id=shopper_id, product_id=product.id, kind=kind, ts=ts))
    events.sort(key=lambda e: e.ts)
    return events
