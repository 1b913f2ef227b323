"""The dialogue evaluation's checks on hand-made turns: each assertion fails when it should, and says why."""

from __future__ import annotations

from typing import Any

import pytest

from eval.dialogues.checks import arg_matches, check_final, check_trajectory, check_turn
from eval.dialogues.global_checks import catalog_titles, grounding, stream_problems, unknown_products
from eval.dialogues.record import Event, State, TurnRecord
from eval.dialogues.results import figures, pass_hat_k, summary_line
from eval.dialogues.runner import TrialResult
from eval.dialogues.scenario import Expect, Final, Scenario, Trajectory, Turn
from eval.metrics import ndcg_at
from retrieval.product import Product
from tests.unit.conftest import SMALL_CATALOG

TURN = "a" * 32
CATALOG = {p.id: p for p in SMALL_CATALOG}


def card(pid: str) -> dict[str, Any]:
    p = CATALOG[pid]
    return {
        "id": p.id,
        "title": p.title,
        "price": p.price,
        "currency": p.currency,
        "color": p.color,
        "brand": p.brand,
        "category": p.category,
        "category_path": list(p.category_path),
        "stock": p.stock,
        "in_stock": p.in_stock,
        "rating": p.rating,
    }


def turn(
    message: str = "red running shoes",
    intent: str = "search_products",
    cards: list[str] = (),  # type: ignore[assignment]
    answer: str = "",
    refs: list[str] = (),  # type: ignore[assignment]
    slots: dict[str, Any] | None = None,
    extra: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    trace: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> TurnRecord:
    names: list[tuple[str, dict[str, Any]]] = [
        ("session", {"session_id": "s", "turn_id": TURN}),
        ("intent", {"intent": intent, "slots": slots or {}, "references": list(refs)}),
    ]
    if cards:
        names.append(("products", {"products": [card(c) for c in cards]}))
    if answer:
        names.append(("token", {"text": answer}))
    names += list(extra)
    if cards:
        names.append(("citation", {"ids": [f"product:{c}" for c in cards]}))
    names.append(("done", {"turn_id": TURN, "status": "completed", "withheld": []}))
    events = [Event(n, f"{TURN}:{i}", d, 10.0 * (i + 1)) for i, (n, d) in enumerate(names)]
    return TurnRecord(message=message, events=events, session_id="s", turn_id=TURN, turn_ms=100.0, trace=list(trace))


def test_no_citations_and_no_action_can_be_asserted() -> None:
    rec = turn(cards=["p1"], extra=[("action", {"tool": "add_to_cart", "status": "done", "description": "x"})])
    assert failed({"citations": []}, rec) == ["citations"] and failed({"citations": []}, turn()) == []
    assert failed({"no_action": True}, rec) == ["no_action"] and failed({"no_action": True}, turn()) == []


def failed(expect: dict[str, Any], rec: TurnRecord, history: list[TurnRecord] = ()) -> list[str]:  # type: ignore[assignment]
    return [f.check for f in check_turn(len(history) + 1, Expect.model_validate(expect), rec, list(history))]


def test_intent_slots_and_status() -> None:
    rec = turn(slots={"price_max": 100.0, "category": "footwear"})
    assert failed({"intent": ["search_products", "recommendation"], "slots": {"price_max": 100}}, rec) == []
    assert failed({"intent": "product_question"}, rec) == ["intent"]
    assert failed({"slots": {"price_max": 90}}, rec) == ["slots.price_max"]
    assert failed({"slots": {"category": "FOOTWEAR"}}, rec) == []  # strings compare without case
    assert failed({"status": "failed"}, rec) == ["status"]
    broken = TurnRecord(message="x", error="HTTP 413: too long")
    assert failed({}, broken) == ["request"]


def test_references_name_earlier_cards_by_rank() -> None:
    first = turn(cards=["p1", "p2", "p8"])
    second = turn("the second one", "product_question", cards=["p2"], refs=["p2"])
    assert failed({"references": [{"turn": 1, "rank": 2}]}, second, [first]) == []
    assert failed({"references": [{"turn": 1, "rank": 1}]}, second, [first]) == ["references"]
    assert failed({"references": [{"turn": 1, "rank": 7}]}, second, [first]) == ["references"]
    assert failed({"products": {"include": [{"turn": 1, "rank": 2}]}}, second, [first]) == []
    assert failed({"products": {"include": [{"turn": 1, "rank": 3}]}}, second, [first]) == ["products.include"]


def test_every_card_must_meet_the_asked_filters() -> None:
    rec = turn(cards=["p1", "p3"])  # $59 red sneakers, $149 brown boots
    assert failed({"products": {"filters": {"max_price": 150, "category": "footwear"}}}, rec) == []
    assert failed({"products": {"filters": {"max_price": 100}}}, rec) == ["products.filters"]
    assert failed({"products": {"filters": {"color": ["red"]}}}, rec) == ["products.filters"]
    assert failed({"products": {"min": 3}}, rec) == ["products.min"]
    assert failed({"products": {"max": 1}}, rec) == ["products.max"]
    assert failed({"no_products": True}, rec) == ["no_products"]
    assert failed({"no_products": True}, turn(cards=[])) == []


def test_text_citations_actions_handoff_and_not_carried() -> None:
    rec = turn(
        cards=["p1"],
        answer="Sorry, we don't carry snow blowers.",
        extra=[
            ("action", {"tool": "cancel_order", "status": "needs_confirmation", "description": "x"}),
            ("handoff", {"ticket_id": "HO-1", "reason": "x"}),
        ],
    )
    assert failed({"text": {"contains": ["snow blowers"], "not_contains": ["\\$"]}}, rec) == []
    assert failed({"text": {"contains": "in stock"}}, rec) == ["text.contains"]
    assert failed({"text": {"not_contains": "DON'T CARRY"}}, rec) == ["text.not_contains"]
    assert failed({"citations": ["product"]}, rec) == []
    assert failed({"citations": ["policy"]}, rec) == ["citations"]
    assert failed({"action": {"status": "needs_confirmation", "tool": "cancel_order"}}, rec) == []
    assert failed({"action": {"status": "done"}}, rec) == ["action"]
    assert failed({"handoff": True, "not_carried": True}, rec) == []
    assert failed({"handoff": False, "not_carried": False}, rec) == ["handoff", "not_carried"]


def test_states_looks_for_the_shown_cards_record_values() -> None:
    first = turn(cards=["p1", "p2", "p6"])  # p2: Blue running shoes, $89.00, out of stock, Swift, rated 4.1
    said = "The Blue running shoes costs $89.00, and it's out of stock. Swift makes them, rated 4.1 out of 5."
    second = turn("how much is the second one?", "product_question", cards=["p2"], refs=["p2"], answer=said)

    def states(fields: list[str], rank: int = 2, **more: Any) -> dict[str, Any]:
        return {"states": [{"ref": {"turn": 1, "rank": rank}, "fields": fields, **more}]}

    assert failed(states(["name", "price", "stock"]), second, [first]) == []
    # the first sentence by default: the brand and the rating come only after it
    assert failed(states(["brand", "rating"]), second, [first]) == ["states.brand", "states.rating"]
    assert failed(states(["brand", "rating", "colour"], where="answer"), second, [first]) == []
    # another card's values are not this card's ("red" is no word of "rated")
    assert failed(states(["name", "price", "stock", "colour"], rank=1), second, [first]) == [
        "states.name",
        "states.price",
        "states.stock",
        "states.colour",
    ]
    wrong = turn("how much is it?", "product_question", cards=["p2"], answer="The Blue running shoes costs $59.00.")
    assert failed(states(["price"]), wrong, [first]) == ["states.price"]
    near = turn("rated?", "product_question", cards=["p2"], answer="It's rated 4.15 out of 5, or 14.1 by some.")
    assert failed(states(["rating"], where="answer"), near, [first]) == ["states.rating"]
    # this turn's own cards can be named; a card nobody showed, or a field the record lacks, fails saying so
    listed = turn(cards=["p1", "p6"], answer="The Red running shoes costs $59.00, and 3 are in stock.")
    ref_now = {"states": [{"ref": {"turn": 1, "rank": 1}, "fields": ["price", "stock"]}]}
    assert failed(ref_now, listed) == []
    assert failed(states(["price"], rank=5), second, [first]) == ["states"]
    assert failed(states(["rating"], rank=3), second, [first]) == ["states.rating"]  # p6 has no rating


def test_latency_budgets() -> None:
    rec = turn(cards=["p1"], answer="The Red running shoes cost $59.00.")
    assert failed({"latency": {"products_ms": 100, "first_token_ms": 100, "turn_ms": 200}}, rec) == []
    assert failed({"latency": {"products_ms": 5}}, rec) == ["latency.products_ms"]
    assert failed({"latency": {"first_token_ms": 50}}, turn()) == ["latency.first_token_ms"]  # no token at all


def test_trajectories_and_argument_matchers() -> None:
    calls = [
        {"name": "order_status", "arguments": {}},
        {"name": "search_products", "arguments": {"query": "red shoes", "max_price": 100, "color": ["red"]}},
    ]

    def problems(**t: Any) -> list[str]:
        return [p[0] for p in check_trajectory(Trajectory.model_validate(t), calls)]

    assert problems(exact=[{"name": "order_status"}, {"name": "search_products", "args": {"max_price": 100}}]) == []
    assert problems(exact=[{"name": "search_products"}]) == ["tools.exact"]
    assert problems(in_order=[{"name": "order_status"}, {"name": "search_products"}]) == []
    assert problems(in_order=[{"name": "search_products"}, {"name": "order_status"}]) == ["tools.in_order"]
    assert problems(any_order=[{"name": "search_products", "args": {"color": "red"}}]) == []
    assert problems(any_order=[{"name": "search_products", "args": {"max_price": {"lte": 90}}}]) == ["tools.any_order"]
    assert problems(none=["cancel_order"]) == [] and problems(none=["order_status"]) == ["tools.none"]
    assert arg_matches({"regex": "^red"}, "red shoes") and not arg_matches({"regex": "^shoes"}, "red shoes")
    assert arg_matches({"gte": 50, "lte": 100}, 100) and not arg_matches({"gte": 101}, 100)
    assert arg_matches({"absent": True}, None) and not arg_matches({"absent": True}, 3)
    assert arg_matches(["blue", "red"], "Red") and arg_matches(["p2", "p1"], ["p1", "p2"])
    assert arg_matches({"contains": "red"}, ["red", "blue"]) and not arg_matches({"contains": "green"}, ["red"])


def test_end_state_against_the_expected_one() -> None:
    history = [turn(cards=["p1", "p4"])]
    state = State(cart={"p1": 2}, orders={"ORD-AAAAAA": {"status": "cancelled", "returns": []}}, handoffs=[])
    final = Final.model_validate(
        {
            "cart": {"items": [{"ref": {"turn": 1, "rank": 1}, "quantity": 2}], "exact": True},
            "orders": [{"order": 1, "status": "cancelled", "return_started": False}],
            "handoff_open": False,
        }
    )
    assert check_final(final, state, ["ORD-AAAAAA"], history) == []
    wrong = Final.model_validate(
        {
            "cart": {"items": [{"product_id": "p4"}, {"ref": {"turn": 1, "rank": 1}, "quantity": 1}]},
            "orders": [{"order": 1, "status": "placed"}],
            "handoff_open": True,
        }
    )
    checks = [f.check for f in check_final(wrong, state, ["ORD-AAAAAA"], history)]
    assert checks == ["cart", "cart.p1.quantity", "order 1.status", "handoff_open"]


def test_stream_shape_and_catalog_ids() -> None:
    rec = turn(cards=["p1"])
    assert stream_problems(rec) == [] and unknown_products(rec, CATALOG) == []
    rec.events[2].id = f"{TURN}:7"
    assert stream_problems(rec) and "expected" in stream_problems(rec)[0]
    rec.events.pop()  # no done
    assert any("done" in p for p in stream_problems(rec))
    invented = turn(cards=["p1"])
    invented.events[2].data["products"].append({"id": "p999", "title": "Invented", "price": 1.0})
    assert unknown_products(invented, CATALOG) == ["p999"]


def test_grounding_counts_what_the_turn_does_not_back() -> None:
    titles = catalog_titles(CATALOG)
    ok = turn(cards=["p1"], answer="The Red running shoes cost $59.00, and 3 are in stock.")
    assert grounding(ok, CATALOG, titles).violations == 0
    budget = turn("shoes under $60", cards=["p1"], answer="Here is something under $60.")
    assert grounding(budget, CATALOG, titles).violations == 0  # the shopper's own amount
    bad = turn(cards=["p1"], answer="The Red running shoes cost $19.99; 40 left. Try the Leather hiking boots too.")
    g = grounding(bad, CATALOG, titles)
    assert g.prices == [19.99] and g.stock == [40] and g.names == ["leather hiking boots"]
    # A real price, but another card's, said of a product named alone in its sentence.
    search = {"name": "search_products", "arguments": {}, "ok": True, "data": {"products": [card("p1"), card("p4")]}}
    said = "The Red running shoes cost $45.00. The Canvas backpack for hiking too."
    swapped = turn(cards=["p1", "p4"], answer=said, trace=[search])
    assert grounding(swapped, CATALOG, titles).misattributed == ["$45.00 said of Red running shoes (catalog $59.00)"]
    both = turn(cards=["p1", "p4"], answer="The Red running shoes and the Canvas backpack for hiking: $59.00, $45.00.")
    assert grounding(both, CATALOG, titles).violations == 0  # two products in one sentence: not attributed
    from_tool = turn(
        "where is my order",
        "track_order",
        answer="Your order of $118.00 shipped.",
        trace=[{"name": "order_status", "arguments": {}, "ok": True, "data": {"order": {"total": 118.0}}}],
    )
    assert grounding(from_tool, CATALOG, titles).violations == 0


def test_ndcg_and_pass_hat_k() -> None:
    assert ndcg_at(["a", "b"], {"a": 3, "b": 3}, k=5) == pytest.approx(1.0)
    assert ndcg_at(["x", "a"], {"a": 3}, k=5) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert pass_hat_k(3, 3, 3) == 1.0 and pass_hat_k(3, 2, 3) == 0.0 and pass_hat_k(4, 3, 2) == pytest.approx(0.5)


def test_figures_and_the_summary_line() -> None:
    scenarios = [
        Scenario(name="a", tags=["core"], turns=[Turn(say="hi")]),
        Scenario(name="b", tags=["core", "orders"], turns=[Turn(say="hi")]),
        Scenario(name="c", tags=["orders"], turns=[Turn(say="hi")]),
    ]
    trials = [
        TrialResult("a", 1, passed=True),
        TrialResult("a", 2, passed=True),
        TrialResult("b", 1, passed=True),
        TrialResult("b", 2, passed=False),
        TrialResult("c", 1, skipped="needs fixture orders"),
        TrialResult("c", 2, skipped="needs fixture orders"),
    ]
    f = figures(scenarios, trials, k=2)
    assert (f.scenarios, f.passed, f.skipped) == (2, 1, 1)
    assert f.pass1 == pytest.approx(0.75) and f.passk == pytest.approx(0.5)
    assert summary_line(f) == (
        "scenarios=2 passed=1 pass^1=0.750 pass^k=0.500 grounded=na discovery_ndcg@5=na ttft_p95_ms=na"
    )


def test_a_price_or_stock_question_is_answered_in_the_first_sentence() -> None:
    from eval.dialogues.global_checks import direct_answer

    asked = turn("how much is the first one and is it in stock?", "product_question", cards=["p1"], refs=["p1"])
    asked.events.insert(3, Event("token", None, {"text": "The Red running shoes costs $59.00, and 3 are in stock."}, 1))
    assert direct_answer(asked, CATALOG) is True
    vague = turn("how much is the first one?", "product_question", cards=["p1"], refs=["p1"], answer="Great choice!")
    assert direct_answer(vague, CATALOG) is False
    assert direct_answer(turn("red running shoes", cards=["p1"]), CATALOG) is None  # not a direct question


def test_a_price_said_of_a_shortened_title_is_checked_against_that_product() -> None:
    """A model shortens a long title: the shortened title still names its product, and a look-alike's price said of
    it is misattributed (the GoodGlassware set's $15.99 once became the Amazon Basics set's $16.16 unnoticed)."""
    good = Product(
        id="g",
        title="GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz - Crystal Clear Clarity, Classic Bowl Design "
        "Perfect for Red and White Wines - Lead Free, Dishwasher Safe",
        price=15.99,
    )
    basics = Product(id="b", title="Amazon Basics Stemless Wine Glasses (Set of 4), 15 oz", price=16.16)
    catalog = {p.id: p for p in (good, basics)}
    short = "The GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz - Crystal Clear Clarity"
    cards = [{"id": p.id, "title": p.title, "price": p.price} for p in (good, basics)]

    def said(answer: str) -> list[str]:
        names = [("session", {"session_id": "s", "turn_id": TURN}), ("products", {"products": cards})]
        names += [("token", {"text": answer}), ("done", {"turn_id": TURN, "status": "completed", "withheld": []})]
        events = [Event(n, f"{TURN}:{i}", d, 1.0) for i, (n, d) in enumerate(names)]
        rec = TurnRecord(message="wine glasses", events=events, session_id="s", turn_id=TURN, turn_ms=1.0)
        return grounding(rec, catalog, catalog_titles(catalog)).misattributed

    assert said(f"{short} costs $16.16.") == [f"$16.16 said of {good.title} (catalog $15.99)"]
    assert said(f"{short} costs $15.99.") == []
    assert said("The Amazon Basics Stemless Wine Glasses cost $15.99.") == [
        f"$15.99 said of {basics.title} (catalog $16.16)"
    ]
    assert said("Both sets of stemless wine glasses cost $16.16.") == []  # no title's first words: not attributed
