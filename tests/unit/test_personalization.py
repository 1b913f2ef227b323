"""Profiles from shopper events, their persistence, and how they move the ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from retrieval.personalization import (
    Event,
    ProfileStore,
    build_profile,
    price_band,
    profile_from_interests,
    refresh_profile,
)
from retrieval.ranking import Candidate, Reranker, RerankWeights
from retrieval.search import SearchEngine
from tests.unit.conftest import SMALL_CATALOG, make_product

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PRODUCTS = {p.id: p for p in SMALL_CATALOG}


def test_profile_weights_event_kinds_and_decays_with_age() -> None:
    events = [
        Event(shopper_id="s", product_id="p5", kind="purchase", ts=NOW - timedelta(days=1)),
        Event(shopper_id="s", product_id="p1", kind="view", ts=NOW - timedelta(days=1)),
        Event(shopper_id="s", product_id="p7", kind="purchase", ts=NOW - timedelta(days=56)),  # 4 half-lives
        Event(shopper_id="s", product_id="gone", kind="purchase", ts=NOW),
    ]
    prof = build_profile("s", events, PRODUCTS, {}, now=NOW)
    assert prof.events == 3
    assert max(prof.categories, key=prof.categories.__getitem__) in {"housewares", "mugs"}
    assert prof.categories["mugs"] > prof.categories["sneakers"] > prof.categories["hats"]
    assert prof.categories["hats"] == pytest.approx(prof.categories["mugs"] / 16, rel=0.1)
    assert sum(prof.brands.values()) == pytest.approx(1.0)
    assert prof.price_bands[price_band(12.5) or ""] > 0.5


def test_centroid_is_the_normalised_weighted_mean() -> None:
    vecs = {"p1": np.array([1, 0], dtype=np.float32), "p5": np.array([0, 1], dtype=np.float32)}
    events = [
        Event(shopper_id="s", product_id="p1", kind="view", ts=NOW),
        Event(shopper_id="s", product_id="p5", kind="add_to_cart", ts=NOW),
    ]
    c = np.array(build_profile("s", events, PRODUCTS, vecs, now=NOW).centroid)
    assert np.linalg.norm(c) == pytest.approx(1.0)
    assert c[1] / c[0] == pytest.approx(4.0)


def test_event_validation() -> None:
    with pytest.raises(ValueError):
        Event(shopper_id="s", product_id="p1", kind="like")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Event(shopper_id="", product_id="p1", kind="view")
    naive = Event(shopper_id="s", product_id="p1", kind="view", ts=datetime(2026, 1, 1))
    assert naive.ts.tzinfo is not None


def test_profiles_and_events_persist_across_reopen(tmp_path: Path, engine: SearchEngine) -> None:
    db = tmp_path / "profiles.sqlite"
    store = ProfileStore(db)
    store.add_events([Event(shopper_id="u1", product_id="p5", kind="purchase", ts=NOW)])
    refresh_profile(store, engine, "u1", now=NOW)
    store.close()
    reopened = ProfileStore(db)
    assert len(reopened.events("u1")) == 1
    prof = reopened.get("u1")
    assert prof is not None and prof.categories and prof.centroid
    assert reopened.get("nobody") is None


def test_personal_affinity_lifts_preferred_category_for_an_ambiguous_query(engine: SearchEngine) -> None:
    plain = engine.search("gift ideas", k=8, mode="full")
    housewares = profile_from_interests("u", ["housewares"])
    personal = engine.search("gift ideas", k=8, mode="full", profile=housewares)

    def rank_of_housewares(results: list) -> float:
        ranks = [i for i, r in enumerate(results) if "housewares" in r.product.category_path]
        return sum(ranks) / len(ranks)

    assert rank_of_housewares(personal) < rank_of_housewares(plain)
    top = personal[0]
    assert "housewares" in top.product.category_path and top.breakdown.personal > 0
    assert all(r.breakdown.personal == 0 for r in plain)


def test_quality_prior_prefers_well_rated_in_stock_products() -> None:
    r = Reranker(RerankWeights())
    good = make_product("a", "x", rating=4.8, rating_count=5000, stock=3)
    few = make_product("b", "x", rating=5.0, rating_count=1, stock=3)
    empty = make_product("c", "x", rating=4.8, rating_count=5000, stock=0)
    assert r.quality(good) > r.quality(few)
    assert r.quality(good) > r.quality(empty)


def test_diversity_penalises_repeats_of_the_same_brand_and_category() -> None:
    same = [make_product(f"s{i}", "x", brand="A", category_path=["c"]) for i in range(3)]
    other = make_product("o", "x", brand="B", category_path=["d"])
    cands = [Candidate(p, {"relevance": 1.0 - 0.001 * i}) for i, p in enumerate([*same, other])]
    ranked = Reranker(RerankWeights(diversity=0.05, quality=0)).rerank(cands, None, k=4)
    assert [c.product.id for c in ranked][:2] == ["s0", "o"]
    assert ranked[1].scores["diversity"] == 0 and ranked[2].scores["diversity"] < 0
    assert [c.scores["final"] for c in ranked] == sorted((c.scores["final"] for c in ranked), reverse=True)
