"""Texts built from catalog facts: fact lines for prompts and the fixed answers."""

from __future__ import annotations

from assistant.answers import product_answer, products_facts
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
