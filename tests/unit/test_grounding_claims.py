"""The wider grounding check: every number, year, percentage, measure, size, colour, material, feature and date in
a sentence must be in the turn's facts, or the sentence is dropped whole, naming what was unbacked."""

from __future__ import annotations

import pytest

from assistant.grounding import Check, Facts, check_sentence, claims_in, ground
from retrieval.product import Product

BOOTS = Product(
    id="b",
    title="Trail Leather Hiking Boots",
    price=149.0,
    stock=7,
    brand="Trail",
    color="Brown",
    rating=4.8,
    rating_count=300,
    description="Waterproof boots for long hikes, 6-inch shaft. Since 2019.",
    bullet_points=["Sizes 40-46", "Vibram rubber sole, 20% lighter than our classic boot"],
    attributes={"weight": "1.2 kg", "dimensions": "12 x 8 x 5 in"},
)
NECKLACE = Product(id="n", title="Silver Heart Pendant Necklace", price=39.0, stock=12, color="silver")
TEE = Product(id="t", title="Cotton Crew Tee", price=15.0, stock=30, attributes={"sizes": "S, M, L"})


def facts(*products: Product, message: str = "", names: set[str] | None = None) -> Facts:
    return Facts(products={p.id: p for p in products}, message=message, names=names or set())


def kinds(text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.said.strip()) for c in claims_in(text)]


def test_the_claims_a_sentence_makes_are_found_by_kind() -> None:
    assert kinds("Available in 2023, 20% off, a 12-in chain, 3 in stock, the 2nd one, two colours.") == [
        ("percentage", "20%"),
        ("year", "2023"),
        ("measure", "12-in"),
        ("number", "3"),
        ("ordinal", "2nd"),
        ("number", "two"),
    ]
    assert kinds("Sizes S to XL in navy suede, waterproof and machine-washable, ships Friday.") == [
        ("size", "size S"),
        ("size", "size XL"),
        ("date", "Friday"),
        ("colour", "navy"),
        ("material", "suede"),
        ("feature", "waterproof"),
        ("feature", "machine washable"),
    ]
    # Prices are the price rule's; a rating's scale and digits inside words are no claims.
    assert kinds("It costs $59.99, rated 4.5 out of 5, model X200.") == [("number", "4.5")]


@pytest.mark.parametrize(
    ("sentence", "unbacked"),
    [
        ("The second one was released in 2023.", "year '2023'"),  # a year
        ("They have 250 reviews.", "number '250'"),  # a number
        ("They are 30% off today.", "percentage '30%'"),  # a percentage
        ("The shaft is 10 inches tall.", "measure '10 inches'"),  # a measure: the record says 6-inch
        ("They come in size 48.", "size 'size 48'"),  # a size
        ("They also come in black.", "colour 'black'"),  # a colour
        ("The upper is made of suede.", "material 'suede'"),  # a material
        ("They are fully insulated.", "feature 'insulated'"),  # a feature
        ("They are eco-friendly hiking boots.", "feature 'eco friendly'"),  # a quality claim no record states
        ("The leather is sustainably sourced.", "feature 'sustainably'"),
        ("They ship on Monday.", "date 'Monday'"),  # a date
    ],
)
def test_a_sentence_with_an_unbacked_claim_is_dropped_whole_naming_it(sentence: str, unbacked: str) -> None:
    check = check_sentence(sentence, facts(BOOTS))
    assert check.text == ""
    assert check.withheld == [f"{unbacked} not in the results (sentence dropped)"]


@pytest.mark.parametrize(
    "sentence",
    [
        "The Trail Leather Hiking Boots are rated 4.8 from 300 reviews.",  # rating and count from the record
        "They are brown leather, waterproof, with a rubber sole.",  # colour, materials, feature from the record
        "They are made by Trail since 2019, with a 6-inch shaft.",  # year and measure from the description
        "They come in sizes 40 to 46 and weigh 1.2 kg.",  # sizes and a measure from bullets and attributes
        "The box is 12 x 8 inches.",  # a dimension chain: each number has the unit
        "They are 20% lighter, and 7 are in stock.",  # percentage from a bullet, stock level from the record
        "Rated 4.8 out of 5.",  # the rating's scale is no claim
    ],
)
def test_claims_the_record_holds_pass(sentence: str) -> None:
    assert check_sentence(sentence, facts(BOOTS)) == Check(sentence, [])


def test_the_issues_examples_are_dropped() -> None:
    """Invented years, a necklace length, a stock count run into a name, and qualities: none of them goes out."""
    text, withheld = ground("It is available in 2023 and is available in 2024.", facts(BOOTS))
    assert text == "" and [w.split(" not")[0] for w in withheld] == ["year '2023'", "year '2024'"]
    # Begun with "The" (the answer's opener, out already), it is finished from the record instead.
    text, _ = ground("The second one is available in 2023 and is available in 2024.", facts(BOOTS))
    assert text == "The Trail Leather Hiking Boots costs $149.00. "
    assert ground("It is a 12-in necklace.", facts(NECKLACE))[0] == ""
    assert ground("We have 17-in-stock Retailers.", facts(NECKLACE))[0] == ""
    assert ground("It is hypoallergenic sterling silver.", facts(NECKLACE))[0] == ""
    assert ground("The Silver Heart Pendant Necklace is silver.", facts(NECKLACE))[0] != ""


def test_the_shoppers_message_backs_numbers_but_not_qualities() -> None:
    """Numbers the shopper said ("about $40", "a 10 year old") may be said back; that they asked for red does not
    make the tee red."""
    f = facts(TEE, message="A gift for a 10 year old, about 40 dollars, in red?")
    assert ground("It suits a 10 year old and is under 40.", f)[0] == "It suits a 10 year old and is under 40."
    assert ground("It comes in red.", f)[0] == ""
    assert ground("It comes in size M.", f)[0] == "It comes in size M."  # from the record's sizes
    assert ground("It comes in size XL.", f)[0] == ""


def test_passages_and_tool_results_back_their_own_values() -> None:
    policy = "Returns are accepted within 30 days. Refunds take 5-7 business days. Closed on Sunday."
    f = facts(names={policy})
    assert ground("You can return it within 30 days.", f)[0] == "You can return it within 30 days."
    assert ground("Refunds take 5 to 7 days, never on Sunday.", f)[0] != ""
    assert ground("You can return it within 60 days.", f)[0] == ""
    assert ground("Returns are free until December.", f)[0] == ""


def test_counts_and_list_positions_of_the_products_shown_may_be_said() -> None:
    f = facts(BOOTS, NECKLACE, TEE)
    assert ground("Here are three options; the 2nd is silver.", f)[0] == "Here are three options; the 2nd is silver."
    assert ground("Here are nine options.", f)[0] == ""


def test_a_quality_claim_is_backed_by_the_record_in_its_own_words_or_a_same_meaning_spelling() -> None:
    bag = Product(id="g", title="Canvas Tote", price=20.0, description="An environmentally friendly, non-toxic tote.")
    assert check_sentence("It is an eco-friendly tote.", facts(bag)).text == "It is an eco-friendly tote."
    assert check_sentence("It is nontoxic.", facts(bag)).text == "It is nontoxic."
    assert check_sentence("It is compostable.", facts(bag)).text == ""
