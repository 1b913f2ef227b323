"""Scenarios held with the real turn engine (in-process and over HTTP) on the small test catalog: a conversation
that goes right passes, one that goes wrong fails with the check that caught it, and the end state is read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.services import Services
from eval.dialogues.drivers import HttpDriver, InProcessDriver
from eval.dialogues.fake_llm import FactsLLM
from eval.dialogues.runner import Runner, TrialResult
from eval.dialogues.scenario import Scenario
from tests.api.conftest import build_services, serve
from tests.unit.conftest import SMALL_CATALOG

SEARCH_THEN_SECOND = {
    "name": "second-one",
    "turns": [
        {"say": "red running shoes", "expect": {"intent": "search_products", "products": {"min": 2}}},
        {
            "say": "tell me about the second one",
            "expect": {
                "intent": "product_question",
                "references": [{"turn": 1, "rank": 2}],
                "tools": {"exact": [{"name": "get_product"}]},
                "text": {"contains": "\\$\\d"},
            },
        },
    ],
}
CANCEL = {
    "name": "cancel-yes",
    "shopper": {"orders": [{"status": "placed", "items": [{"product_id": "p1"}]}]},
    "turns": [
        {"say": "please cancel order {order}", "expect": {"action": {"status": "needs_confirmation"}}},
        {"say": "yes", "expect": {"intent": "confirm_action", "action": {"status": "done", "tool": "cancel_order"}}},
    ],
    "final": {"orders": [{"order": 1, "status": "cancelled"}]},
}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built, _ = build_services(tmp_path, FactsLLM())  # type: ignore[arg-type]
    try:
        yield built
    finally:
        asyncio.run(built.close())


def run(services: Services, *items: dict[str, Any]) -> list[TrialResult]:
    async def go() -> list[TrialResult]:
        async def build(catalog: str, extra: list[Any]) -> Services:
            return services

        scenarios = [Scenario.model_validate(i) for i in items]
        runner = Runner(InProcessDriver(build, scenarios))
        return [await runner.run(s) for s in scenarios]

    return asyncio.run(go())


def test_a_conversation_that_goes_right_passes_every_check(services: Services) -> None:
    (result,) = run(services, SEARCH_THEN_SECOND)
    assert result.passed, [str(f) for f in result.failures]
    second = result.turns[1]
    assert second.intent["references"] == [result.turns[0].cards[1]["id"]]
    assert [g.violations for g in result.grounding] == [0, 0]


def test_a_wrong_expectation_fails_with_expected_and_got(services: Services) -> None:
    wrong = {"name": "wrong", "turns": [{"say": "red running shoes", "expect": {"intent": "greeting"}}]}
    (result,) = run(services, wrong)
    assert not result.passed
    assert [(f.turn, f.check, f.expected, f.got) for f in result.failures] == [
        (1, "intent", ["greeting"], "search_products")
    ]


def test_the_end_state_comes_from_the_stores(services: Services) -> None:
    (yes,) = run(services, CANCEL)
    assert yes.passed, [str(f) for f in yes.failures]
    assert yes.state is not None and list(yes.state.orders.values())[0]["status"] == "cancelled"
    declined = {**CANCEL, "name": "cancel-no", "turns": [CANCEL["turns"][0], {"say": "no"}]}
    (no,) = run(services, declined)
    assert [f.check for f in no.failures] == ["order 1.status"] and "placed" in repr(no.failures[0].got)


def test_an_invented_price_in_the_answer_is_a_grounding_failure(services: Services) -> None:
    llm = services.llm
    assert isinstance(llm, FactsLLM)
    llm.reply = lambda messages: "The Red running shoes cost $5.00."  # type: ignore[method-assign]
    (result,) = run(services, {"name": "lie", "turns": [{"say": "red running shoes"}]})
    # The grounding filter repairs the price on the way out: the answer states the catalog's.
    assert result.passed and "$59.00" in result.turns[0].answer


def test_a_simulated_shopper_reaches_its_goal(services: Services) -> None:
    goal = {
        "name": "goal-cancel",
        "shopper": {"orders": [{"status": "placed", "items": [{"product_id": "p3"}]}]},
        "goal": {
            "reason": "I ordered by mistake",
            "task": "cancel_order",
            "opening": "please cancel order {order}",
            "known": {"order": 1},
        },
        "final": {"orders": [{"order": 1, "status": "cancelled"}]},
    }
    (result,) = run(services, goal)
    assert result.passed, [str(f) for f in result.failures] + [t.message for t in result.turns]
    assert [t.message for t in result.turns][1:] == ["yes"] and result.turns[-1].actions[-1]["status"] == "done"


def test_over_http_the_same_scenario_passes_and_fixture_orders_are_skipped(services: Services) -> None:
    catalog = {p.id: p for p in SMALL_CATALOG}
    scenarios = [Scenario.model_validate(SEARCH_THEN_SECOND), Scenario.model_validate(CANCEL)]
    cart = Scenario.model_validate(
        {
            "name": "cart",
            "turns": [{"say": "red running shoes"}, {"say": "add it to my cart", "expect": {"intent": "cart_add"}}],
            "final": {"cart": {"items": [{"ref": {"turn": 1, "rank": 1}, "quantity": 1}]}},
        }
    )

    async def go(url: str) -> list[TrialResult]:
        driver = HttpDriver(url, "demo-agent-key", {"demo": catalog})
        try:
            runner = Runner(driver)
            return [await runner.run(s) for s in [*scenarios, cart]]
        finally:
            await driver.aclose()

    with serve(services) as url:
        second, cancel, carted = asyncio.run(go(url))
    assert second.passed, [str(f) for f in second.failures]
    assert cancel.skipped and "fixture orders" in cancel.skipped
    assert carted.state is not None and carted.state.source == "tool results"
    assert carted.passed, [str(f) for f in carted.failures]


def test_the_report_says_which_path_decided_each_intent_and_how_often_it_was_right(services: Services) -> None:
    from eval.dialogues.results import intent_paths

    scenarios = [Scenario.model_validate(i) for i in (SEARCH_THEN_SECOND, CANCEL)]
    trials = run(services, SEARCH_THEN_SECOND, CANCEL)
    paths = intent_paths(scenarios, trials)
    decided = {name: row["turns"] for name, row in paths.items() if name != "model_parse"}
    assert sum(decided.values()) == 4  # every turn's intent was decided by some path
    assert all(row["accuracy"] == 1.0 for name, row in paths.items() if name != "model_parse" and row["checked"])
    # The fake model writes no parse: where the model was asked, it failed, and the classifier decided.
    assert paths["model_parse"]["asked"] == paths["model_parse"].get("error", 0)
    assert paths["model_parse"]["model_right"] == 0


def test_the_fake_model_names_the_first_product_when_none_has_a_price() -> None:
    from assistant.llm.base import ChatMessage

    def reply(facts: str) -> str:
        messages = [ChatMessage(role="system", content="Answer."), ChatMessage(role="assistant", content=facts)]
        return FactsLLM().reply([*messages, ChatMessage(role="user", content="show me slippers")])

    priced = "- UGG Slipper, Black, availability unknown, brand UGG\n- Felt Slipper, $19.99, availability unknown"
    assert reply(priced) == "The Felt Slipper costs $19.99."
    assert reply("- UGG Slipper, Black, availability unknown, brand UGG") == "The UGG Slipper is one option."
    assert reply("Order ORD-ABC123 is placed.") == "I can help you find products or with an order."
