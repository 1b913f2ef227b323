"""Recommendations and gifts, and "something cheaper": a soft budget, the recipient's categories, the shopper's
profile, and never "we don't carry" while the catalog has something in the budget. Over a small catalog with the
real search tool (hashing encoder, ephemeral Chroma) and a real profile store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.dialogue.references import Resolution
from assistant.grounding import CatalogTitles
from assistant.intents.slots import CatalogVocabulary, extract_deterministic
from assistant.planning.handlers import cheaper, handler_for, recommend
from assistant.planning.plan import Deps, Plan, TurnContext, TurnInput, Understanding
from assistant.planning.suggest import soft_budget
from assistant.schemas import IntentEvent
from assistant.sessions.models import Session, Turn
from assistant.tools import products as product_tools
from assistant.tools.base import Toolbox, ToolDeps
from assistant.trace import Trace
from retrieval.encoders import HashingEncoder
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.personalization import Event, ProfileStore, refresh_profile
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.store import VectorStore, make_chroma_client


def item(pid: str, title: str, path: list[str], price: float, stock: int = 5) -> Product:
    return Product(id=pid, title=title, category_path=path, price=price, stock=stock)


CATALOG = [
    item("h1", "Wireless over-ear headphones", ["electronics", "headphones"], 45.0),
    item("h2", "Compact earbuds", ["electronics", "headphones"], 29.0),
    item("h3", "Studio headphones pro", ["electronics", "headphones"], 189.0),
    item("s1", "Portable bluetooth speaker", ["electronics", "speaker"], 39.0),
    item("s2", "Party speaker with lights", ["electronics", "speaker"], 59.0),
    item("f1", "Fly fishing lure collection", ["outdoors", "fishing"], 35.0),
    item("f2", "Carbon fishing rod", ["outdoors", "fishing"], 55.0),
    item("f3", "Tackle box organiser", ["outdoors", "fishing"], 25.0),
    item("c1", "Camping lantern", ["outdoors", "camping"], 42.0),
    item("p1", "Dog chew toy set", ["outdoors", "pet"], 15.0),
    item("p2", "Cosy dog bed", ["outdoors", "pet"], 49.0),
    item("n1", "Silver bar pendant necklace", ["jewelry", "necklace"], 49.0),
    item("n2", "Heart locket necklace", ["jewelry", "necklace"], 39.0),
    item("n3", "Pearl strand necklace", ["jewelry", "necklace"], 129.0),
    item("b1", "Lava stone bracelet", ["jewelry", "bracelet"], 25.0),
    item("e1", "Crystal stud earrings", ["jewelry", "earrings"], 35.0),
    item("k1", "Enamelled dutch oven", ["housewares", "kitchen"], 89.0),
    item("k2", "Pour-over coffee set", ["housewares", "kitchen"], 38.0),
    item("q1", "Blush peony bouquet", ["floral", "bouquet"], 49.0),
    item("q2", "White tulip bouquet", ["floral", "bouquet"], 29.0),
    item("q3", "Bridal rose bouquet", ["floral", "bouquet"], 149.0),
    item("q4", "Wildflower bouquet", ["floral", "bouquet"], 89.0),
    item("q5", "Sunflower bouquet", ["floral", "bouquet"], 39.0),
    item("g1", "Garlic bulb", ["groceries", "vegetables"], 1.99),
    item("g2", "Sesame bagel", ["groceries", "bakery"], 2.49),
    item("g3", "Fresh parsley bunch", ["groceries", "vegetables"], 2.99),
]
BY_ID = {p.id: p for p in CATALOG}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    path = tmp_path_factory.mktemp("recommend")
    store = VectorStore(make_chroma_client("ephemeral"), f"rec-{uuid.uuid4().hex[:12]}")
    encoder = HashingEncoder(dim=128)
    Indexer(store, encoder, path / "lexical", show_progress=False).index(CATALOG)
    return SearchEngine(store, LexicalIndex.load(path / "lexical"), encoder)


@pytest.fixture
def profiles(tmp_path: Path) -> Iterator[ProfileStore]:
    store = ProfileStore(tmp_path / "profiles.sqlite")
    yield store
    store.close()


@pytest.fixture
def deps(engine: SearchEngine, profiles: ProfileStore) -> Deps:
    return Deps(
        toolbox=Toolbox(product_tools.tools(ToolDeps(engine=engine, profiles=profiles))),
        get_products=engine.get_products,
        catalog_titles=CatalogTitles(CATALOG),
        vocab=CatalogVocabulary.from_products(CATALOG),
        search_results=5,
        min_relevance=0.3,
        shopper_profile=profiles.get,
    )


def run(deps: Deps, message: str, intent: str = "recommendation", session: Session | None = None) -> Plan:
    session = session or Session(session_id="s", shopper_id="fresh")
    inp = TurnInput(session=session, turn_id="t", message=message)
    slots = extract_deterministic(message, deps.vocab)
    event = IntentEvent(intent=intent, group="SHOPPING", confidence=0.9, slots=slots.filled())
    understood = Understanding(event=event, slots=slots, resolution=Resolution())
    return asyncio.run(handler_for(intent, "SHOPPING")(TurnContext(inp, understood, Trace(), deps)))


def cards(plan: Plan) -> list[Product]:
    return plan.reply.products


def test_the_handler_table_sends_suggestions_and_cheaper_here() -> None:
    assert handler_for("recommendation", "SHOPPING") is recommend.recommend
    assert handler_for(cheaper.CHEAPER, "SHOPPING") is cheaper.cheaper


@pytest.mark.parametrize(
    ("message", "low", "high", "target", "said"),
    [
        ("any gift ideas for my brother? About $40.", 24.0, 60.0, 40.0, "around $40"),
        ("around 40 dollars", 24.0, 60.0, 40.0, "around $40"),
        ("a present under 50", None, 50.0, 37.5, "under 50"),
        ("something for my mum, $30-60", 30.0, 60.0, 45.0, "in the $30-60 range"),
        ("over $100 please", 100.0, None, 125.0, "over $100"),
    ],
)
def test_a_budget_is_a_soft_range_around_what_was_said(
    message: str, low: float | None, high: float | None, target: float, said: str
) -> None:
    budget = soft_budget(message, extract_deterministic(message, CatalogVocabulary()))
    assert budget is not None
    assert (budget.low, budget.high, budget.target, budget.said) == (low, high, target, said)


def test_no_budget_said_is_none() -> None:
    message = "a gift for my dad, he's around 40"  # an age, not a price
    assert soft_budget(message, extract_deterministic(message, CatalogVocabulary())) is None


def test_a_gift_for_a_brother_about_40_shows_his_kind_of_products_near_40_and_says_why(deps: Deps) -> None:
    plan = run(deps, "Any gift ideas for my brother? About $40.")
    shown = cards(plan)
    assert len(shown) >= 3
    assert all(24 <= (p.price or 0) <= 60 for p in shown)
    assert {p.category for p in shown} <= {"headphones", "speaker", "camping", "fishing"}
    lead = plan.reply.lead or ""
    assert lead.startswith("For your brother, around $40: the ")
    assert f"the {shown[0].title} (${shown[0].price:.2f})" in lead
    assert plan.reply.citations == [f"product:{p.id}" for p in shown]


def test_an_interest_bounds_the_suggestions_more_than_the_recipient(deps: Deps) -> None:
    plan = run(deps, "a present for my dad, he likes fishing, under $60")
    assert {p.category for p in cards(plan)} == {"fishing"}
    assert (plan.reply.lead or "").startswith("For your dad who likes fishing, under $60:")


def test_a_named_kind_of_product_wins_over_the_recipients_categories(deps: Deps) -> None:
    plan = run(deps, "I need a necklace for my wife, under 100 dollars")
    assert cards(plan) and {p.category for p in cards(plan)} == {"necklace"}
    assert all((p.price or 0) <= 100 for p in cards(plan))


def test_when_the_recipients_categories_have_nothing_in_budget_the_rest_of_the_store_does(deps: Deps) -> None:
    plan = run(deps, "gift ideas for my brother under $3")
    shown = cards(plan)
    assert len(shown) == 3 and all((p.price or 0) <= 3 for p in shown)
    assert "across the store" in (plan.reply.lead or "")
    assert "carry" not in (plan.reply.lead or "")


def test_when_nothing_fits_the_budget_it_says_so_and_shows_the_most_affordable(deps: Deps) -> None:
    plan = run(deps, "gift ideas for my brother under $1")
    assert (plan.reply.lead or "").startswith("I couldn't find anything under $1; the most affordable I have are")
    prices = [p.price or 0 for p in cards(plan)]
    assert prices == sorted(prices) and prices[0] == 1.99


def test_a_pet_is_a_recipient(deps: Deps) -> None:
    plan = run(deps, "do you have anything for my dog?")
    assert {p.category for p in cards(plan)} == {"pet"}
    assert (plan.reply.lead or "").startswith("For your dog:")


def test_an_open_request_from_a_new_shopper_spreads_over_the_store(deps: Deps) -> None:
    plan = run(deps, "what do you recommend?")
    tops = [p.category_path[0] for p in cards(plan)]
    assert len(tops) == 5 and len(set(tops)) >= 4
    assert (plan.reply.lead or "").startswith("A few ideas from around the store:")


def test_the_shoppers_profile_leads_an_open_request(deps: Deps, profiles: ProfileStore, engine: SearchEngine) -> None:
    profiles.add_events(
        [Event(shopper_id="jo", product_id=pid, kind="purchase") for pid in ("n1", "b1", "e1")]
        + [Event(shopper_id="jo", product_id="n2", kind="view")]
    )
    refresh_profile(profiles, engine, "jo")
    mine = cards(run(deps, "what do you recommend?", session=Session(session_id="s2", shopper_id="jo")))
    fresh = cards(run(deps, "what do you recommend?"))

    def share(ps: list[Product]) -> float:
        return sum(p.category_path[0] == "jewelry" for p in ps) / len(ps)

    assert share(mine) >= 0.8 > share(fresh)
    plan = run(deps, "what do you recommend?", session=Session(session_id="s3", shopper_id="jo"))
    assert (plan.reply.lead or "").startswith("Based on what you've been browsing (jewelry):")


def test_a_need_the_store_has_nothing_for_is_the_searchs_not_carried(deps: Deps) -> None:
    plan = run(deps, "can you recommend a snow blower")
    assert plan.reply.products == [] and "don't carry" in (plan.reply.fixed or "")


def shown_session(ids: list[str], args: dict[str, Any]) -> Session:
    trace = [{"name": "search_products", "ok": True, "arguments": args, "data": {}}]
    turn = Turn(turn_id="t0", index=0, user_message="show me bouquets", status="completed", product_ids=ids)
    turn.tool_trace = trace
    return Session(session_id="s", shopper_id="fresh", turns=[turn])


def test_something_cheaper_shows_the_same_kind_under_the_cheapest_shown(deps: Deps) -> None:
    session = shown_session(["q1", "q3", "q4"], {"query": "bouquets", "category": "bouquet", "limit": 5})
    plan = run(deps, "show me something cheaper", intent=cheaper.CHEAPER, session=session)
    shown = cards(plan)
    assert {p.id for p in shown} == {"q2", "q5"}  # the bouquets under $49, none of those shown
    assert (plan.reply.lead or "").startswith("Cheaper than the ones I showed:")


def test_when_the_cheapest_was_shown_cheaper_means_under_most_of_those_shown(deps: Deps) -> None:
    session = shown_session(["q2", "q3", "q4"], {"query": "bouquets", "category": "bouquet", "limit": 5})
    plan = run(deps, "anything cheaper?", intent=cheaper.CHEAPER, session=session)
    shown = cards(plan)
    assert shown[0].id == "q2" and {p.id for p in shown[1:]} == {"q1", "q5"}
    assert (plan.reply.lead or "").startswith("The White tulip bouquet ($29.00) is the lowest-priced bouquet here")


def test_something_cheaper_with_nothing_shown_asks(deps: Deps) -> None:
    plan = run(deps, "something cheaper", intent=cheaper.CHEAPER)
    assert plan.reply.products == [] and (plan.reply.fixed or "").startswith("Cheaper than what?")
