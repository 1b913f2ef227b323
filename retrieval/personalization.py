"""Shopper behaviour -> persisted profiles: a decayed embedding centroid and attribute affinities."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, field_validator

from retrieval import sqlite
from retrieval.product import Product

EventKind = Literal["view", "click", "add_to_cart", "purchase"]
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
PRICE_BANDS = (25.0, 50.0, 100.0, 250.0, 500.0)


def price_band(price: float | None) -> str | None:
    """A coarse, log-spaced price band label."""
    if price is None:
        return None
    low = 0.0
    for edge in PRICE_BANDS:
        if price < edge:
            return f"{low:g}-{edge:g}"
        low = edge
    return f"{low:g}+"


class Event(BaseModel):
    """One shopper interaction with a product."""

    shopper_id: str = Field(min_length=1, max_length=256)
    product_id: str = Field(min_length=1, max_length=256)
    kind: EventKind
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("ts")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class Profile(BaseModel):
    """What a shopper tends to like; affinities are normalised to sum to 1 per facet."""

    shopper_id: str
    centroid: list[float] | None = None
    categories: dict[str, float] = Field(default_factory=dict)
    brands: dict[str, float] = Field(default_factory=dict)
    price_bands: dict[str, float] = Field(default_factory=dict)
    events: int = 0
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def centroid_array(self) -> np.ndarray | None:
        return np.asarray(self.centroid, dtype=np.float32) if self.centroid else None

    def is_empty(self) -> bool:
        return not (self.centroid or self.categories or self.brands or self.price_bands)


def build_profile(
    shopper_id: str,
    events: Sequence[Event],
    products: dict[str, Product],
    vectors: dict[str, np.ndarray],
    now: datetime | None = None,
    half_life_days: float = 14.0,
) -> Profile:
    """Fold events into a profile; each event's weight halves every `half_life_days`."""
    now = now or datetime.now(UTC)
    cats: dict[str, float] = defaultdict(float)
    brands: dict[str, float] = defaultdict(float)
    bands: dict[str, float] = defaultdict(float)
    centroid: np.ndarray | None = None
    used = 0
    for ev in events:
        product = products.get(ev.product_id)
        if product is None:
            continue  # product left the catalog: its event no longer says anything
        age_days = max((now - ev.ts).total_seconds() / 86_400, 0.0)
        w = EVENT_WEIGHTS[ev.kind] * 0.5 ** (age_days / half_life_days)
        used += 1
        for cat in {c.lower() for c in product.category_path}:
            cats[cat] += w
        if product.brand:
            brands[product.brand.lower()] += w
        band = price_band(product.price)
        if band:
            bands[band] += w
        vec = vectors.get(ev.product_id)
        if vec is not None:
            centroid = w * vec if centroid is None else centroid + w * vec
    if centroid is not None:
        norm = float(np.linalg.norm(centroid))
        centroid = centroid / norm if norm else None
    return Profile(
        shopper_id=shopper_id,
        centroid=[float(x) for x in centroid] if centroid is not None else None,
        categories=_normalised(cats),
        brands=_normalised(brands),
        price_bands=_normalised(bands),
        events=used,
        updated_at=now,
    )


def profile_from_interests(shopper_id: str, categories: Iterable[str]) -> Profile:
    """A cold-start profile from declared interests (e.g. a persona's categories)."""
    cats = {c.strip().lower(): 1.0 for c in categories if c.strip()}
    return Profile(shopper_id=shopper_id, categories=_normalised(cats))


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in sorted(weights.items(), key=lambda kv: -kv[1])} if total > 0 else {}


class ProfileStore:
    """Events and built profiles in SQLite; a completed write survives a crash."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite.connect(path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS events (
                shopper_id TEXT NOT NULL, product_id TEXT NOT NULL, kind TEXT NOT NULL, ts TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS events_shopper ON events (shopper_id, ts);
            CREATE TABLE IF NOT EXISTS profiles (shopper_id TEXT PRIMARY KEY, body TEXT NOT NULL);
            """
        )
        self._lock = threading.Lock()

    def add_events(self, events: Sequence[Event]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                [(e.shopper_id, e.product_id, e.kind, e.ts.isoformat()) for e in events],
            )

    def events(self, shopper_id: str) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT shopper_id, product_id, kind, ts FROM events WHERE shopper_id = ? ORDER BY ts", (shopper_id,)
            ).fetchall()
        return [Event(shopper_id=r[0], product_id=r[1], kind=r[2], ts=datetime.fromisoformat(r[3])) for r in rows]

    def save(self, profile: Profile) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?)", (profile.shopper_id, profile.model_dump_json())
            )

    def get(self, shopper_id: str) -> Profile | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM profiles WHERE shopper_id = ?", (shopper_id,)).fetchone()
        return Profile.model_validate_json(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


def refresh_profile(
    profiles: ProfileStore, store: _ProductSource, shopper_id: str, now: datetime | None = None
) -> Profile:
    """Rebuild a shopper's profile from all their events and persist it (`store`: e.g. a SearchEngine)."""
    events = profiles.events(shopper_id)
    ids = sorted({e.product_id for e in events})
    profile = build_profile(shopper_id, events, store.get_products(ids), store.get_text_vectors(ids), now)
    profiles.save(profile)
    return profile


class _ProductSource(Protocol):
    def get_products(self, ids: Sequence[str]) -> dict[str, Product]: ...

    def get_text_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
