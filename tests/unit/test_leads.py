"""Fact-first sentences: what was asked, answered from the record alone."""

from __future__ import annotations

import pytest

from assistant.leads import asked, budget_lead, compare_lead, product_lead, products_lead
from retrieval.product import Product

BOOTS = Product(
    id="b",
    title="Trail Leather Hiking Boots",
    price=149.0,
    stock=7,
    brand="Trail",
    rating=4.8,
    rating_count=300,
    description="Waterproof leather boots for long hikes.",
    attributes={"sizes": "40-46"},
)
MUG = Product(id="m", title="Ceramic Coffee Mug", price=12.5, stock=0, category_path=["housewares"])
HAT = Product(id="h", title="Wool Winter Hat", price=25.0, stock=None)


@pytest.mark.parametrize(
    ("message", "aspects"),
    [
        ("how much is it and do you have it in stock?", ["price", "stock"]),
        ("is it available in size 42?", ["stock", "size"]),
        ("what colour is it", ["colour"]),
        ("what is it made of? and the brand?", ["material", "brand"]),
        ("how are the reviews", ["rating"]),
        ("tell me more", []),
    ],
)
def test_the_aspects_a_question_asks(message: str, aspects: list[str]) -> None:
    assert asked(message) == aspects


def test_price_and_stock_come_first_and_exactly_from_the_record() -> None:
    assert product_lead(BOOTS, "how much is the second one and is it in stock?") == (
        "The Trail Leather Hiking Boots costs $149.00, and 7 are in stock."
    )
    assert product_lead(BOOTS, "what does it cost?") == "The Trail Leather Hiking Boots costs $149.00."
    assert product_lead(MUG, "is it in stock?") == "The Ceramic Coffee Mug costs $12.50, and it's out of stock."
    assert product_lead(HAT, "tell me about it") == "The Wool Winter Hat costs $25.00, and its stock isn't listed."


def test_other_aspects_say_what_the_record_holds_or_that_it_does_not() -> None:
    assert product_lead(BOOTS, "what sizes and brand?") == (
        "About the Trail Leather Hiking Boots: It comes in 40-46. It's made by Trail."
    )
    assert "describes it as leather" in product_lead(BOOTS, "what material is it?")
    assert "rated 4.8 out of 5 from 300 reviews" in product_lead(BOOTS, "how is it rated?")
    assert product_lead(MUG, "what brand and colour?") == (
        "About the Ceramic Coffee Mug: The catalog doesn't list its brand. The catalog doesn't list its colour."
    )


def test_several_products_and_a_comparison() -> None:
    assert products_lead([BOOTS, MUG]) == (
        "The Trail Leather Hiking Boots costs $149.00 (7 are in stock); the Ceramic Coffee Mug costs $12.50 "
        "(it's out of stock)."
    )
    lead = compare_lead([BOOTS, MUG])
    assert lead.endswith("The Ceramic Coffee Mug is the cheaper one.")


def test_a_budgeted_search_leads_with_the_best_matchs_price_and_stock() -> None:
    unpriced = Product(id="u", title="Mystery Box")
    lead = budget_lead([unpriced, BOOTS, MUG], None, 150)
    assert lead == "The best match in your price range is the Trail Leather Hiking Boots at $149.00 (7 are in stock)."
    assert budget_lead([BOOTS], None, None) is None  # no budget stated: nothing to lead with
    assert budget_lead([unpriced], 10, 20) is None
