"""The gift words file: it loads and validates, maps the words a shopper uses to the demo store's categories, ignores
categories a catalog lacks, and reads recipients, interests, occasions and what else a message says."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from assistant.intents.vocabulary import CatalogVocabulary
from assistant.planning.gift_words import GIFT_WORDS, GiftWords, GiftWordsFile, load_gift_words, recipient_pattern
from retrieval.catalog import load_catalog
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def demo() -> CatalogVocabulary:
    products = load_catalog(SHARED_DATA / "retail-demo-store" / "products.yaml", "retail-demo-store").products
    return CatalogVocabulary.from_products(products)


def raw() -> dict[str, Any]:
    data = yaml.safe_load(GIFT_WORDS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_shipped_file_loads() -> None:
    words = load_gift_words()
    assert words.spec.recipients and words.spec.interests and words.spec.occasions


@pytest.mark.parametrize(
    "word",
    ["brother", "dad", "mom", "kid", "wife", "gardener", "cook", "runner", "birthday", "wedding", "housewarming",
     "christmas", "weekend", "hiking", "dog"],
)
def test_the_words_a_shopper_uses_reach_the_demo_stores_categories(word: str, demo: CatalogVocabulary) -> None:
    wish = load_gift_words().read(f"a gift for {word}", demo)
    assert wish.found and wish.found[0].categories, f"{word!r} maps to no category of the demo store"


def test_categories_a_catalog_lacks_are_ignored() -> None:
    vocab = CatalogVocabulary(category_paths=[["outdoors", "fishing"], ["kitchen", "bowls"]])
    wish = load_gift_words().read("gift ideas for my brother", vocab)
    assert [f.categories for f in wish.found] == [("fishing",)]


def test_a_message_is_read_into_recipient_interest_occasion_and_content(demo: CatalogVocabulary) -> None:
    words = load_gift_words()
    wish = words.read("Any birthday gift ideas for my mom who loves cooking? About $40.", demo)
    assert [(f.kind, f.entry.word) for f in wish.found] == [
        ("occasion", "birthday"),
        ("recipient", "mom"),
        ("interest", "cooking"),
    ]
    assert wish.request and wish.content == ()
    assert [f.phrase() for f in wish.found] == ["for a birthday", "for your mom", "cooking"]
    assert wish.categories("interest")[:2] == ["kitchen", "cooking"]
    need = words.read("something to keep me warm in winter", demo)
    assert not need.found and not need.request and need.content == ("keep", "warm", "winter")
    assert words.read("what do you recommend?", demo).content == ()


def test_a_word_listed_for_two_things_is_refused() -> None:
    data = raw()
    data["occasions"].append({"words": ["Brother"], "say": "for a brother", "categories": []})
    with pytest.raises(ValidationError, match="'Brother' is listed for both recipient 'brother' and occasion"):
        GiftWordsFile.model_validate(data)


def test_an_interest_needs_how_the_answer_names_it() -> None:
    data = raw()
    data["interests"].append({"words": ["chess"], "categories": ["books"]})
    with pytest.raises(ValidationError, match="interest 'chess' needs `likes`"):
        GiftWordsFile.model_validate(data)


def test_unknown_fields_are_refused() -> None:
    data = raw()
    data["recipients"][0]["categorys"] = ["books"]
    with pytest.raises(ValidationError, match="categorys"):
        GiftWords(GiftWordsFile.model_validate(data))


@pytest.mark.parametrize(
    ("message", "matches"),
    [
        ("do you have anything for my dog?", True),
        ("got something nice for my sister in law", True),
        ("ideas for my dad", True),
        ("anything new on my order?", False),
        ("is there something wrong with my brother's order", False),
    ],
)
def test_a_request_on_someones_behalf(message: str, matches: bool) -> None:
    assert bool(recipient_pattern().search(message.lower())) is matches


def test_an_instrument_is_a_musical_interest_and_the_recipient_is_named_as_said(demo: CatalogVocabulary) -> None:
    wish = load_gift_words().read("my nephew is learning guitar, what could I get him", demo)
    assert [f.phrase() for f in wish.of("recipient")] == ["for your nephew"]
    assert [f.entry.likes for f in wish.of("interest")] == ["music"]
    assert wish.of("interest")[0].categories  # the demo store's instruments
    assert wish.content == ()  # nothing left over to search for, or to report as not found
    lover = load_gift_words().read("gift ideas for a dog lover", demo)
    assert "lover" not in lover.content
