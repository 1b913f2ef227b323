"""Personalization on the real demo catalog with real MiniLM: a persona's categories rise for "gift ideas"."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.catalog import load_catalog
from retrieval.factory import Components, build_components
from retrieval.personalization import Event, refresh_profile
from retrieval.personas import load_users, persona_categories, synthesize_events
from retrieval.search import SearchEngine
from retrieval.settings import RetrievalSettings
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration
STORE = SHARED_DATA / "retail-demo-store"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Components, SearchEngine]:
    if not (STORE / "products.yaml").is_file():
        pytest.skip(f"retail-demo-store not found at {STORE}")
    settings = RetrievalSettings(data_dir=tmp_path_factory.mktemp("demo"), collection="demo-store")
    comps = build_components(settings)
    products = load_catalog(STORE / "products.yaml", "retail-demo-store").products
    comps.indexer(show_progress=False).index(products)
    yield comps, comps.engine()
    comps.close()


def _share(results: list, categories: list[str]) -> float:
    return sum(r.product.category_path[0] in categories for r in results) / len(results)


def test_persona_categories_rise_for_an_ambiguous_query(demo: tuple[Components, SearchEngine]) -> None:
    comps, engine = demo
    users = load_users(STORE / "users.json.gz")
    products = engine.get_products(engine.lexical.ids)
    catalog = list(products.values())
    seen_personas: set[str] = set()
    lifts = []
    for user in users:
        if user["persona"] in seen_personas:
            continue
        seen_personas.add(user["persona"])
        cats = persona_categories(user["persona"])
        events = synthesize_events(user, catalog, random.Random(7), n=20, now=NOW)
        assert events and all(products[e.product_id].category_path[0] in cats for e in events)
        comps.profiles.add_events(events)
        profile = refresh_profile(comps.profiles, engine, str(user["id"]), now=NOW)
        plain = engine.search("gift ideas", k=10, mode="full")
        personal = engine.search("gift ideas", k=10, mode="full", profile=profile)
        lifts.append(_share(personal, cats) - _share(plain, cats))
        assert all(r.breakdown.personal >= 0 for r in personal)
        if len(seen_personas) == 8:
            break
    # Every persona's own categories take a larger share of the top 10 than without the profile.
    assert min(lifts) > 0, lifts
    assert sum(lifts) / len(lifts) >= 0.3, lifts


def test_profile_survives_reopening_the_store(demo: tuple[Components, SearchEngine], tmp_path: Path) -> None:
    comps, engine = demo
    pid = engine.lexical.ids[0]
    comps.profiles.add_events([Event(shopper_id="reopen", product_id=pid, kind="purchase", ts=NOW)])
    saved = refresh_profile(comps.profiles, engine, "reopen", now=NOW)
    from retrieval.personalization import ProfileStore

    again = ProfileStore(comps.settings.profiles_path).get("reopen")
    assert again == saved and again.centroid is not None and len(again.centroid) == 384


def test_a_specific_query_stays_on_topic_for_any_persona(demo: tuple[Components, SearchEngine]) -> None:
    from retrieval.personalization import profile_from_interests

    _, engine = demo
    for interests in (["furniture", "homedecor", "housewares"], ["electronics"], ["beauty", "jewelry"]):
        profile = profile_from_interests("x", interests)
        top = engine.search("hiking backpack", k=5, mode="full", profile=profile)
        assert all(r.product.category_path[-1] == "backpack" for r in top), interests
