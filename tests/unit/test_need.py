"""The shopping need in a message, and whether results cover it."""

from __future__ import annotations

import pytest

from assistant.intents.need import content_words, covers, shopping_need, singular
from retrieval.product import Product


@pytest.mark.parametrize(
    ("message", "need"),
    [
        ("Do you sell snow blowers?", "snow blowers"),
        ("show me scarves", "scarves"),
        ("I'm looking for a surfboard", "surfboard"),
        ("a warm jacket under $100", "warm jacket"),
        ("hi, could you show me some red running shoes please", "red running shoes"),
        ("do you have anything for my dog?", "dog"),
        ("what laptops do you sell", "laptops"),
        ("hiking boots between $50 and $120", "hiking boots"),
    ],
)
def test_the_need_is_the_message_without_its_framing_and_budget(message: str, need: str) -> None:
    assert shopping_need(message) == need


def test_singular_forms() -> None:
    words = ["scarves", "boxes", "socks", "dresses", "glasses", "batteries", "knives", "shoes", "bus"]
    assert [singular(w) for w in words] == ["scarf", "box", "sock", "dress", "glass", "battery", "knife", "shoe", "bus"]
    assert content_words("something nice for a gift") == set()


def test_results_cover_a_need_when_similar_and_sharing_a_product_word() -> None:
    surf = Product(id="s", title="Urban Surf Home Office Setup", category_path=["furniture", "office"])
    scarf = Product(id="c", title="Frostguard Arctic Wool Scarf", category_path=["apparel", "scarf"])
    assert not covers("surfboard", [surf], 0.55, 0.35)  # "surf" is not "surfboard"
    assert covers("surfboard", [surf], 0.65, 0.35)  # very similar: covered without a shared word
    assert covers("scarves", [scarf], 0.46, 0.35)  # scarves -> scarf
    assert not covers("scarves", [scarf], 0.30, 0.35)  # not similar enough at all
    assert covers("something nice", [surf], 0.40, 0.35)  # no product word to share: similarity decides


def test_a_long_rambling_message_is_searched_by_its_request() -> None:
    from assistant.intents.need import REQUEST_CHARS, request_text

    story = "My partner and I are planning a long trip and I have had bad luck with straps before. " * 8
    message = story + "Sorry for the long message: what hiking backpacks do you have?"
    assert request_text(message) == "what hiking backpacks do you have?"
    assert shopping_need(message) == "hiking backpacks"
    assert request_text("red shoes under $50") == "red shoes under $50"  # short: all of it
    one_long_sentence = "backpack " * 100
    assert 0 < len(request_text(one_long_sentence)) <= REQUEST_CHARS


@pytest.mark.parametrize(
    ("message", "stated", "refines"),
    [
        ("no, I meant the blue one", ["Blue"], True),
        ("sorry, blue ones please", ["Blue"], True),
        ("actually under $60", [], True),
        ("what about size M", ["M"], True),
        ("blue running shoes", ["Blue"], False),  # a new kind of product: a new search
        ("something in red for my wife", ["Red"], False),
    ],
)
def test_a_message_that_only_changes_constraints_refines_the_last_search(
    message: str, stated: list[str], refines: bool
) -> None:
    from assistant.intents.need import only_refines

    assert only_refines(message, stated) is refines


@pytest.mark.parametrize(
    ("need", "thing", "head"),
    [
        ("refrigerator for my kitchen", "refrigerator", "refrigerator"),
        ("wall art in black and white", "wall art", "art"),
        ("new office chair, budget 300", "new office chair", "chair"),
        ("sneakers between 50 and", "sneakers", "sneaker"),
        ("fresh lobster", "fresh lobster", "lobster"),
        ("something for my dog", "something for my dog", "dog"),  # nothing before "for" names a product
    ],
)
def test_the_thing_a_need_names_and_the_noun_it_is_about(need: str, thing: str, head: str) -> None:
    from assistant.intents.need import head_word, thing_named

    assert thing_named(need) == thing
    assert head_word(need) == head


def test_results_that_share_only_a_modifier_do_not_cover_the_need() -> None:
    toothpaste = Product(id="t", title="Natural Wicked Fresh Toothpaste", category_path=["Beauty"])
    lobster_pot = Product(id="l", title="Steel Lobster Pot", category_path=["Kitchen"])
    assert not covers("fresh lobster", [toothpaste], 0.45, 0.35)
    assert covers("fresh lobster", [toothpaste, lobster_pot], 0.45, 0.35)
    assert covers("fresh lobster", [toothpaste], 0.65, 0.35)  # very similar: covered whatever the words


def test_a_condition_the_need_states_must_be_one_a_result_states() -> None:
    toy = Product(id="c", title="Remote Control Car 1:18", category_path=["Toys", "Cars"])
    refurbished = Product(id="r", title="Refurbished Laptop 14 inch", category_path=["Computers"])
    assert not covers("used cars", [toy], 0.7, 0.35)  # however similar: a toy car is not a used car
    assert covers("refurbished laptop", [refurbished], 0.5, 0.35)
    assert covers("cars", [toy], 0.5, 0.35)
