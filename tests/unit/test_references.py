"""Reference resolution against the products a session showed: ordinals, comparatives, descriptions, pronouns."""

from __future__ import annotations

import pytest

from assistant.dialogue.references import AttributeConstraint, Resolution, resolve_references, variant_search
from assistant.intents.vocabulary import CatalogVocabulary
from retrieval.product import Product
from tests.unit.conftest import SMALL_CATALOG, make_product

BY_ID = {p.id: p for p in SMALL_CATALOG}
# p1 red running shoes $59 (4.5), p2 blue running shoes $89 (4.1), p3 leather hiking boots $149 (4.8)
LAST = [BY_ID["p1"], BY_ID["p2"], BY_ID["p3"]]
EARLIER = [BY_ID["p5"], BY_ID["p6"], BY_ID["p7"]]  # mug $12.5, espresso maker $120 (no rating), wool hat $25


def resolve(text: str, shown: list[Product] = LAST, focus: str | None = None, **kw: object) -> Resolution:
    return resolve_references(text, shown, focus, earlier=EARLIER, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("the second one", ["p2"]),
        ("tell me more about the 3rd", ["p3"]),
        ("first one please", ["p1"]),
        ("second.", ["p2"]),
        ("is #2 waterproof?", ["p2"]),
        ("number two", ["p2"]),
        ("what about option 3", ["p3"]),
        ("the 2nd one", ["p2"]),
        ("the last one", ["p3"]),
        ("add the last pair", ["p3"]),
        ("the second to last", ["p2"]),
        ("compare the first and third", ["p1", "p3"]),
        ("the first two", ["p1", "p2"]),
        ("top 2 please", ["p1", "p2"]),
        ("the last two", ["p2", "p3"]),
        ("the second one is nice but the first one is cheaper", ["p2", "p1"]),
    ],
)
def test_ordinals_count_in_the_last_list(text: str, ids: list[str]) -> None:
    r = resolve(text, focus="p7")
    assert (r.product_ids, r.kind) == (ids, "ordinal")


def test_an_ordinal_beyond_the_list_resolves_nothing_and_says_so() -> None:
    r = resolve("the fifth one")
    assert not r.resolved and r.kind == "ordinal" and "only 3 product(s) were shown" in r.reason
    assert not resolve("the second one", shown=[BY_ID["p1"]]).resolved


@pytest.mark.parametrize(
    "text", ["first time buying boots", "is this your last order?", "last week I bought shoes", "show me 2 hats"]
)
def test_ordinal_words_that_are_not_references(text: str) -> None:
    assert resolve(text).kind != "ordinal"


@pytest.mark.parametrize(
    ("text", "shown", "ids"),
    [
        ("the cheaper one", ["p2", "p3"], ["p2"]),
        ("the cheaper one", ["p3", "p2", "p1"], ["p1"]),  # with more than two: the cheapest of the last list
        ("which is the cheapest?", ["p2", "p7", "p3"], ["p7"]),
        ("the more expensive one", ["p1", "p2"], ["p2"]),
        ("add the priciest", ["p1", "p3", "p2"], ["p3"]),
        ("the best rated one", ["p1", "p2", "p3"], ["p3"]),
        ("the higher rated one", ["p1", "p2"], ["p1"]),
        ("the best rated one", ["p6", "p2"], ["p2"]),  # unknown rating never wins
        ("cheapest?", ["p6", "p5"], ["p5"]),
    ],
)
def test_comparatives_pick_among_the_last_list(text: str, shown: list[str], ids: list[str]) -> None:
    r = resolve(text, shown=[BY_ID[i] for i in shown], focus="p1")
    assert (r.product_ids, r.kind) == (ids, "comparative")


def test_comparatives_that_ask_for_a_new_search_are_not_references() -> None:
    for text in [
        "show me something cheaper",
        "anything cheaper?",
        "do you have a cheaper one",
        "any better rated ones",
    ]:
        assert resolve(text).kind != "comparative", text
    no_prices = [make_product("x1", "Mystery box"), make_product("x2", "Other box")]
    r = resolve("the cheaper one", shown=no_prices)
    assert r.kind == "comparative" and not r.resolved and "none of the shown products" in r.reason


def test_pronouns_go_to_the_focus_or_the_top_of_the_last_list() -> None:
    assert resolve("is it waterproof?", focus="p2").product_ids == ["p2"]
    assert resolve("what is that one made of", focus="p3").product_ids == ["p3"]
    r = resolve("is it waterproof?")
    assert r.product_ids == ["p1"] and r.kind == "pronoun" and "no product in focus" in r.reason
    assert resolve("add two of those", focus="p2").product_ids == ["p2"]  # a quantity of one product
    assert not resolve("is it waterproof?", shown=[]).resolved
    assert resolve("this weekend I need shoes").kind == "none"


def test_plural_references() -> None:
    assert resolve("compare them").product_ids == ["p1", "p2", "p3"]
    assert resolve("add all of them").kind == "plural"
    assert resolve("add both", shown=LAST[:2]).product_ids == ["p1", "p2"]
    both = resolve("add both")
    assert not both.resolved and both.candidates == ["p1", "p2", "p3"]


def test_the_other_one() -> None:
    assert resolve("what about the other one", shown=LAST[:2], focus="p1").product_ids == ["p2"]
    r = resolve("the other one", focus="p1")
    assert not r.resolved and r.candidates == ["p2", "p3"]


def test_descriptions_pick_the_products_they_fit() -> None:
    assert resolve("the red one").product_ids == ["p1"]
    assert resolve("is the leather boots' sole rubber?").product_ids == ["p3"]
    assert resolve("does this mug keep coffee hot").product_ids == ["p5"]  # found among earlier lists
    assert resolve("this hat", focus="p7").product_ids == ["p7"]
    ambiguous = resolve("the running shoes")
    assert not ambiguous.resolved and ambiguous.candidates == ["p1", "p2"]
    assert resolve("compare those running shoes").product_ids == ["p1", "p2"]
    assert resolve("show me the best hiking backpacks").kind == "none"  # a new search, not a shown product


@pytest.mark.parametrize(
    ("text", "focus", "ids", "constraint"),
    [
        ("does it come in black", "p1", ["p1"], AttributeConstraint(color="black")),
        ("Is it available in size M?", "p2", ["p2"], AttributeConstraint(size="M")),
        ("what about in blue?", "p3", ["p3"], AttributeConstraint(color="blue")),
        ("and in grey?", "p3", ["p3"], AttributeConstraint(color="grey")),
        ("does the second one come in white, size 42", None, ["p2"], AttributeConstraint(color="white", size="42")),
        ("do they come in XL", None, ["p1", "p2", "p3"], AttributeConstraint(size="XL")),
    ],
)
def test_attribute_follow_ups_carry_a_constraint(
    text: str, focus: str | None, ids: list[str], constraint: AttributeConstraint
) -> None:
    r = resolve(text, focus=focus)
    assert r.product_ids == ids and r.constraint == constraint


def test_a_colour_that_describes_is_not_a_variant_ask() -> None:
    r = resolve("the red one")
    assert r.product_ids == ["p1"] and r.constraint is None


def test_constraint_colours_come_from_the_catalog_vocabulary() -> None:
    vocab = CatalogVocabulary.from_products([*SMALL_CATALOG, make_product("z", "Grey sock", color="Gray")])
    r = resolve("does it come in grey?", focus="p1", vocab=vocab)
    assert r.constraint == AttributeConstraint(color="Gray")


def test_variant_search_keeps_title_words_brand_and_category() -> None:
    search = variant_search(BY_ID["p1"], AttributeConstraint(color="black", size="42"))
    assert search.query == "running shoes"
    assert search.filters.color == ["black"] and search.filters.brand == ["swift"]
    assert search.filters.category == ["sneakers"] and search.size == "42"


@pytest.mark.parametrize("text", ["hello", "show me red running shoes", "where is my order?", "", "thanks!"])
def test_no_reference_gives_an_empty_resolution(text: str) -> None:
    r = resolve(text, focus="p1")
    assert r == Resolution() and not r.resolved
