"""Slot extraction: the rules, the catalog vocabulary, and the LLM cross-check with the scripted fake LLM."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from assistant.intents.slot_rules import find_sizes, normalise_size
from assistant.intents.slots import (
    PROMPTS_DIR,
    LlmSlots,
    SlotResult,
    Slots,
    extract_deterministic,
    extract_slots,
    find_budget,
    load_slot_prompt,
)
from assistant.intents.vocabulary import CatalogVocabulary, singular, tokens
from assistant.llm import ChatMessage, FakeLLM
from assistant.llm.base import LLMError, T
from tests.unit.conftest import SMALL_CATALOG, make_product


@pytest.fixture(scope="module")
def vocab() -> CatalogVocabulary:
    extra = [
        make_product("g1", "Grey hoodie", brand="Cozy", color="Grey", category_path=["apparel", "hoodies"]),
        make_product("g2", "Grey beanie", brand="Cozy", color="gray", category_path=["apparel", "hats"]),
        make_product("g3", "Charcoal tee", brand="Black Diamond", color="Grey", category_path=["apparel", "T-Shirts"]),
        make_product("g4", "Socks", brand="Cozy", category_path=["Sports & Outdoors", "Socks"], color="Navy"),
    ]
    return CatalogVocabulary.from_products([*SMALL_CATALOG, *extra])


def rules(text: str, vocab: CatalogVocabulary) -> dict[str, Any]:
    return extract_deterministic(text, vocab).filled()


# --- the model ---------------------------------------------------------------------------------------------


def test_slots_are_empty_by_default_and_validate() -> None:
    assert Slots().is_empty()
    assert Slots(order_id=" ord-ab12cd ").order_id == "ORD-AB12CD"
    assert Slots(order_id="ORDXY12Z9").order_id == "ORD-XY12Z9"
    for bad in ({"order_id": "12345"}, {"order_id": "ORD-123"}, {"quantity": 0}, {"price_min": -1}):
        with pytest.raises(ValidationError):
            Slots(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="price_min 50.0 is above price_max 20.0"):
        Slots(price_min=50, price_max=20)


def test_to_filters_expands_every_catalog_spelling(vocab: CatalogVocabulary) -> None:
    filters = Slots(color="Grey", brand="Cozy", price_max=30).to_filters(vocab, in_stock=True)
    assert set(filters.color or []) == {"grey", "gray"}
    assert filters.brand == ["cozy"] and filters.max_price == 30 and filters.in_stock is True
    assert Slots().to_filters().is_empty()


# --- vocabulary --------------------------------------------------------------------------------------------


def test_singular_maps_both_forms_to_one_key() -> None:
    for plural, single in [
        ("hoodies", "hoodie"),
        ("boxes", "box"),
        ("dresses", "dress"),
        ("accessories", "accessory"),
        ("shoes", "shoe"),
        ("ties", "tie"),
        ("watches", "watch"),
    ]:
        assert singular(plural) == singular(single), (plural, single)
    assert singular("glass") == "glass" and singular("bus") == "bus"
    assert tokens("Men's T-Shirts, GRAY") == ["men", "t", "shirt", "grey"]
    assert tokens("tees") == ["t", "shirt"]


def test_vocabulary_normalises_case_plurals_and_synonyms(vocab: CatalogVocabulary) -> None:
    assert vocab.canonical("color", "gray") == "Grey"  # the most frequent spelling wins
    assert vocab.canonical("category", "Hoodie") == "hoodies"
    assert vocab.canonical("category", "tshirt") == "T-Shirts"
    assert vocab.canonical("brand", "black diamond") == "Black Diamond"
    assert vocab.canonical("brand", "Nike") is None
    assert vocab.canonical("category", "sports and outdoors") == "Sports & Outdoors"
    assert vocab.canonical("category", "outdoors") is None  # no partial matches of joined categories
    assert vocab.canonical("color", "navy") == "Navy"
    assert vocab.ancestors("sneakers") == {"footwear"}
    assert vocab.values("brand")[0] in ("Trail", "Cozy")


def test_vocabulary_matches_whole_words_longest_first(vocab: CatalogVocabulary) -> None:
    found = {(m.kind, m.value) for m in vocab.find("a Black Diamond tee and some redwood")}
    assert found == {("brand", "Black Diamond"), ("category", "T-Shirts")}  # no "Black" colour, no "Red"
    negated = [(m.value, m.negated) for m in vocab.find("no red, I don't want Swift, blue is fine")]
    assert negated == [("Red", True), ("Swift", True), ("Blue", False)]


def test_colours_need_colour_words_unless_told_otherwise() -> None:
    odd = [make_product("o1", "Cap", color="Dad"), make_product("o2", "Mug", color="Light Pink")]
    assert CatalogVocabulary.from_products(odd).values("color") == ["Light Pink"]
    assert set(CatalogVocabulary.from_products(odd, color_words=None).values("color")) == {"Dad", "Light Pink"}


def test_a_catalog_without_a_colour_field_takes_its_colours_from_titles() -> None:
    titles = ["Urban Stride Blue Runner", "Light Grey Hoodie", "Classic Sunglasses", "Crimson Red Scarf"]
    vocab = CatalogVocabulary.from_products([make_product(f"t{i}", t) for i, t in enumerate(titles)])
    assert set(vocab.values("color")) == {"Blue", "Grey", "Red"}  # "Light" only shades another colour
    assert extract_deterministic("blue running shoes", vocab).color == "Blue"
    assert extract_deterministic("classic sunglasses", vocab).color is None
    # A catalog with colour fields keeps to them: a title word is not a colour there.
    fielded = [make_product("f1", "Blue Runner", color="Black")]
    assert CatalogVocabulary.from_products(fielded).values("color") == ["Black"]


def test_prompt_values_put_words_from_the_message_first(vocab: CatalogVocabulary) -> None:
    assert vocab.prompt_values("brand", "something from homely", 2)[0] == "Homely"
    assert len(vocab.prompt_values("category", "", 3)) == 3


# --- deterministic extraction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("red running shoes under $50", {"color": "Red", "price_max": 50}),
        ("sneakers between 20 and 40 dollars", {"category": "sneakers", "price_min": 20, "price_max": 40}),
        ("less than 100", {"price_max": 100}),
        ("anything over 30?", {"price_min": 30}),
        ("boots $25-$40", {"category": "boots", "price_min": 25, "price_max": 40}),
        ("mugs from 10 to 15 euros", {"category": "mugs", "price_min": 10, "price_max": 15}),
        ("a hat for €19.99 or less", {"category": "hats", "price_max": 19.99}),
        ("kitchen stuff $1,200 and up", {"category": "kitchen", "price_min": 1200}),
        ("my budget is 2k", {"price_max": 2000}),
        ("around $50", {"price_min": 40, "price_max": 60}),
        ("under fifty dollars", {"price_max": 50}),
        ("hats under 50 in blue", {"category": "hats", "price_max": 50, "color": "Blue"}),
        ("a 15 inch bag under 40", {"price_max": 40}),
        ("between forty and twenty", {"price_min": 20, "price_max": 40}),
        ("looking for a guitar, nothing over $500", {"price_max": 500}),
        ("nothing more than 80 dollars", {"price_max": 80}),
    ],
)
def test_prices(text: str, expected: dict[str, Any], vocab: CatalogVocabulary) -> None:
    assert rules(text, vocab) == expected


@pytest.mark.parametrize(
    ("text", "kind", "amount", "currency"),
    [
        ("any gift ideas for my brother? About $40.", "around", 40, True),
        ("around forty dollars", "around", 40, True),
        ("under 50", "max", 50, False),
        ("nothing over $500", "max", 500, True),
        ("$30-60", "range", None, True),
        ("over $100", "min", 100, True),
    ],
)
def test_the_budget_phrase_keeps_how_it_was_said(text: str, kind: str, amount: float | None, currency: bool) -> None:
    """ "About $40" is a budget around 40 (a suggestion searches a soft range about it), not only 32-48."""
    said = find_budget(text)
    assert said is not None and (said.kind, said.amount, said.currency) == (kind, amount, currency)


@pytest.mark.parametrize("text", ["a gift for my dad, he is around 40", "size 10 boots", "order ORD-AB1234"])
def test_no_budget_phrase(text: str) -> None:
    assert find_budget(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "a toy for kids over 3 years",
        "a laptop under 15 inches",
        "over 4 stars",
        "it has a $50 sticker",
        "room for 2 to 4",
    ],
)
def test_numbers_that_are_not_prices(text: str, vocab: CatalogVocabulary) -> None:
    slots = extract_deterministic(text, vocab)
    assert slots.price_min is None and slots.price_max is None


@pytest.mark.parametrize(
    ("text", "quantity"),
    [
        ("I'll take 2 of them", 2),
        ("three of those please", 3),
        ("add three packs of coffee", 3),
        ("qty: 4", 4),
        ("mug x2", 2),
        ("a couple of mugs", 2),
        ("buy 5", 5),
        ("add the second one", None),
        ("the cheaper one", None),
        ("add 1000 of them", None),
    ],
)
def test_quantities(text: str, quantity: int | None, vocab: CatalogVocabulary) -> None:
    assert extract_deterministic(text, vocab).quantity == quantity


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("grey hoodie in size M", "M"),
        ("add this jacket in medium", "M"),
        ("do you have it in XL", "XL"),
        ("is it available in M?", "M"),
        ("boots size 42", "42"),
        ("size 10.5 please", "10.5"),
        ("jeans size 32x34", "32X34"),
        ("I'm looking for a large mug", None),
        ("a medium roast coffee", None),
        ("shoes in s", None),
    ],
)
def test_sizes(text: str, size: str | None, vocab: CatalogVocabulary) -> None:
    assert extract_deterministic(text, vocab).size == size


def test_size_helpers() -> None:
    assert find_sizes("size S or in XL") == ["S", "XL"]
    assert normalise_size(" x-large ") == "XL" and normalise_size("42") == "42" and normalise_size("huge") is None


def test_order_ids_and_vocabulary(vocab: CatalogVocabulary) -> None:
    assert rules("where is order ord-ab12cd?", vocab) == {"order_id": "ORD-AB12CD"}
    assert rules("refund for ORD 9X8Y7Z please", vocab) == {"order_id": "ORD-9X8Y7Z"}
    assert rules("WORD-ABCDEF and ORD-ABCDEFG are not ids", vocab) == {}
    assert rules("Swift footwear sneakers in blue", vocab) == {
        "brand": "Swift",
        "category": "sneakers",
        "color": "Blue",
    }
    assert rules("gray hoodies", vocab) == {"color": "Grey", "category": "hoodies"}
    assert rules("not red, maybe blue", vocab) == {"color": "Blue"}
    # Two colours, or two unrelated categories: the rules do not pick one.
    assert rules("red or blue hats", vocab) == {"category": "hats"}
    assert rules("mugs and boots", vocab) == {}


def test_what_the_shopper_did_not_say_stays_empty(vocab: CatalogVocabulary) -> None:
    for text in ["hello there", "what do you recommend?", "is it waterproof", "the second one", ""]:
        assert extract_deterministic(text, vocab).is_empty(), text


# --- LLM + cross-check -------------------------------------------------------------------------------------


def run(llm: FakeLLM | None, text: str, vocab: CatalogVocabulary, **kw: Any) -> SlotResult:
    return asyncio.run(extract_slots(llm, text, vocab, **kw))


def test_hallucinated_llm_slots_are_dropped(vocab: CatalogVocabulary) -> None:
    llm = FakeLLM(
        json_replies=[
            {
                "category": "footwear",
                "brand": "Nike",
                "color": "red",
                "size": "M",
                "price_min": 20,
                "price_max": 50,
                "order_id": "ORD-ZZZZZZ",
                "quantity": 1,
            }
        ]
    )
    result = run(llm, "red sneakers under $50", vocab)
    assert result.llm_status == "ok"
    assert result.slots.filled() == {"category": "sneakers", "color": "Red", "price_max": 50}
    assert result.sources == {"category": "rules", "color": "both", "price_max": "both"}
    assert set(result.dropped) == {"category", "brand", "size", "price_min", "order_id", "quantity"}
    assert result.dropped["brand"] == "not in the catalog vocabulary"
    assert result.dropped["category"] == "not stated in the message"  # an ancestor, not what was said


def test_llm_fills_what_the_rules_cannot_parse_when_the_text_supports_it(vocab: CatalogVocabulary) -> None:
    llm = FakeLLM(json_replies=[{"price_max": 60, "color": "blue", "quantity": 2}])
    result = run(llm, "I've got 60 bucks, want a couple hats, red or blue", vocab)
    assert result.slots.filled() == {"category": "hats", "color": "Blue", "price_max": 60, "quantity": 2}
    assert result.sources["price_max"] == "llm" and result.sources["color"] == "llm"
    assert result.sources["quantity"] == "both"  # "want a couple" is a rule too


def test_llm_picks_among_mentions_but_rules_win_numbers(vocab: CatalogVocabulary) -> None:
    llm = FakeLLM(json_replies=[{"color": "Red", "price_min": 20, "price_max": 50, "quantity": 6}])
    result = run(llm, "red or blue for my 20 year old, under $50, 2 packs of 6", vocab)
    assert result.slots.color == "Red" and result.sources["color"] == "llm"
    assert result.slots.price_min is None and result.slots.price_max == 50
    assert result.dropped["price_min"] == "no such number in the message"  # 20 is an age
    assert result.slots.quantity == 2 and result.sources["quantity"] == "rules"
    llm = FakeLLM(json_replies=[{"price_min": 20, "price_max": 50}])
    result = run(llm, "a gift between 20 and 50 bucks, or over 50", vocab)
    assert (result.slots.price_min, result.slots.price_max) == (20, 50) and result.sources["price_min"] == "both"


def test_llm_cannot_bring_back_a_negated_value(vocab: CatalogVocabulary) -> None:
    result = run(FakeLLM(json_replies=[{"color": "Red", "brand": "Swift"}]), "any shoes but not red, from Swift", vocab)
    assert result.slots.filled() == {"brand": "Swift"}
    assert result.dropped == {"color": "the shopper excluded it"} and result.excluded == {"color": ["Red"]}


def test_llm_range_is_ordered_and_kept_when_numbers_appear(vocab: CatalogVocabulary) -> None:
    result = run(FakeLLM(json_replies=[{"price_min": 80, "price_max": 40}]), "somewhere 40 80 bucks", vocab)
    assert (result.slots.price_min, result.slots.price_max) == (40, 80)


@pytest.mark.parametrize("mode", ["unavailable", "invalid", "no_reply", "none"])
def test_llm_failures_fall_back_to_rules(mode: str, vocab: CatalogVocabulary) -> None:
    llm: FakeLLM | None = FakeLLM(json_replies=['{"quantity": "lots"}'] if mode == "invalid" else [])
    if mode == "unavailable":
        llm.available = False  # type: ignore[union-attr]
    if mode == "none":
        llm = None
    result = run(llm, "2 of the blue ones under $100", vocab)
    assert result.slots.filled() == {"color": "Blue", "price_max": 100, "quantity": 2}
    assert set(result.sources.values()) == {"rules"}
    expected = {"unavailable": "unavailable", "invalid": "error", "no_reply": "error", "none": "skipped"}[mode]
    assert result.llm_status == expected


class SlowLLM(FakeLLM):
    async def complete_json(self, messages: Any, schema: type[T], *, max_tokens: int = 256) -> T:
        await asyncio.sleep(5)
        raise LLMError("unreachable")


def test_llm_timeout_falls_back_to_rules(vocab: CatalogVocabulary) -> None:
    result = run(SlowLLM(), "red hats", vocab, timeout_s=0.01)
    assert result.llm_status == "timeout" and result.slots.filled() == {"color": "Red", "category": "hats"}


def test_prompt_carries_message_history_and_vocabulary(vocab: CatalogVocabulary) -> None:
    llm = FakeLLM(json_replies=[{}])
    history = [ChatMessage(role="user", content="show me hats"), ChatMessage(role="assistant", content="Here are 3.")]
    result = run(llm, "in grey from cozy", vocab, history=history)
    assert result.slots.filled() == {"color": "Grey", "brand": "Cozy"}
    system, user = (m.content for m in llm.calls[0][1])
    assert "null" in system
    assert "user: show me hats\nassistant: Here are 3." in user
    assert "Latest message: in grey from cozy" in user
    assert "Known brands: Cozy" in user


def test_prompt_file_is_valid_and_schema_is_loose(tmp_path: Path) -> None:
    prompt = load_slot_prompt()
    raw = yaml.safe_load((PROMPTS_DIR / "slots.yaml").read_text())
    assert set(raw) == {"name", "description", "variables", "system", "user"} and prompt.name == "slots"
    with pytest.raises(ValueError, match="missing variables"):
        prompt.render(text="hi")
    assert LlmSlots.model_validate({"color": "null", "size": ""}).color is None
    assert set(LlmSlots.model_json_schema()["properties"]) == set(Slots.model_fields)
