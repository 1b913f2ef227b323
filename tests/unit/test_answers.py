"""Texts built from catalog facts: fact lines for prompts and the fixed answers."""

from __future__ import annotations

from typing import Any

import pytest

from assistant import answers
from assistant.answers import product_answer, products_facts
from assistant.tools.base import ToolDeps, ToolResult
from assistant.tools.builder import TOOL_GROUPS
from retrieval.product import Product

LAMP = Product(id="1", title="Brass Reading Lamp", price=40.0, stock=3, brand="Lumo")


def test_fact_lines_are_bullets_with_catalog_price_and_stock() -> None:
    facts = products_facts([LAMP, Product(id="2", title="Oak Desk", price=199.5, stock=0)])
    assert facts == "- Brass Reading Lamp, $40.00, 3 in stock, brand Lumo\n- Oak Desk, $199.50, out of stock"


def test_a_product_answer_states_what_the_catalog_knows() -> None:
    assert product_answer(LAMP) == "The Brass Reading Lamp costs $40.00 and is 3 in stock."
    unlisted = Product(id="3", title="Brass Reading Lamp", price=40.0)
    assert product_answer(unlisted) == "The Brass Reading Lamp costs $40.00; its availability is not listed."
    bare = Product(id="4", title="Brass Reading Lamp")
    assert product_answer(bare) == "The Brass Reading Lamp's availability is not listed."


def failed(name: str, error: str, kind: Any) -> ToolResult:
    return ToolResult(name=name, arguments={}, ok=False, error=error, error_kind=kind)


def test_a_tools_refusal_reaches_the_shopper_as_whole_sentences() -> None:
    refused = failed("cancel_order", "order ORD-AAAAAA has already shipped and can no longer be cancelled", "refused")
    assert answers.tool_failure(refused) == "Order ORD-AAAAAA has already shipped and can no longer be cancelled."
    written = failed("order_status", "I couldn't find order ORD-ZZZZZ9 on this account. Check the number!", "refused")
    assert answers.tool_failure(written) == written.error  # already sentences: kept as written


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("failed", "order_status failed: KeyError: 'shopper_id'"),
        ("invalid", "invalid arguments for order_status: order_id: Value error, expected an order number"),
        (None, "something internal"),
    ],
)
def test_a_tool_that_broke_or_was_misused_shows_no_internals(kind: Any, error: str) -> None:
    text = answers.tool_failure(failed("order_status", error, kind))
    assert text.startswith("Sorry, I couldn't look up that order") and text.endswith(("?", "."))
    assert not any(w in text for w in ("KeyError", "order_id", "invalid arguments", "internal"))


def test_every_tool_has_words_for_its_failure() -> None:
    class Anything:
        def __getattr__(self, name: str) -> Any:
            return self

    deps = ToolDeps(engine=Anything(), orders=Anything(), carts=Anything(), handoffs=Anything(), policies=Anything())
    names = {tool.name for group in TOOL_GROUPS for tool in group(deps)}
    assert names and names <= set(answers.TOOL_TASKS), names - set(answers.TOOL_TASKS)
