"""The model's handoff summary is kept only when the facts back its prices, order ids and product names."""

from __future__ import annotations

import pytest

from assistant.grounding import CatalogTitles
from assistant.handoff_notes import check_summary
from assistant.takeover import HandoffFacts, ShownProduct
from retrieval.product import Product

SHOES = Product(id="p1", title="Trail Running Shoes", price=59.0)
BOOTS = Product(id="p2", title="Leather Hiking Boots", price=120.0)  # in the catalog, never shown
FACTS = HandoffFacts(
    reason="I want to talk to a human",
    asked=["running shoes", "where is ORD-AAAAAA"],
    products=[ShownProduct(product_id="p1", title=SHOES.title, price=59.0)],
    orders=["ORD-AAAAAA"],
)


def check(text: str) -> tuple[str | None, str | None]:
    return check_summary(
        text, FACTS, {"p1": SHOES}, '- the shopper asked: "running shoes"', CatalogTitles([SHOES, BOOTS])
    )


def test_a_summary_the_facts_back_is_kept() -> None:
    text = "The shopper looked at the Trail Running Shoes for $59.00 and asks about order ORD-AAAAAA."
    assert check(text) == (text, None)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("The shopper wants the Trail Running Shoes at $45.00.", "$45.00"),
        ("The shopper wants the Leather Hiking Boots.", "leather hiking boots"),
        ("The shopper wants Zephyr Quantum Sneakers.", "Zephyr Quantum Sneakers"),
        ("The shopper asks about order ORD-ZZZZZZ.", "ORD-ZZZZZZ"),
        ("  ", "nothing"),
    ],
)
def test_an_unbacked_price_product_or_order_drops_it_with_the_reason(text: str, why: str) -> None:
    summary, reason = check(text)
    assert summary is None and reason is not None and why in reason
