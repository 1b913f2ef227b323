"""The grounding check: prices, stock claims and product names must come from the turn's facts."""

from __future__ import annotations

import re

from assistant.grounding import CatalogTitles, Facts, GroundingFilter, QualityGate, ground
from assistant.grounding.sentence_check import check_sentence
from retrieval.product import Product

LOAFERS = Product(id="1", title="Sleek Brown Leather Loafers", price=59.99, stock=3, brand="Acme", color="brown")
RUNNERS = Product(id="2", title="Trail Runner Shoes", price=89.0, stock=0)
HAT = Product(id="3", title="Cozy Wool Winter Hat", price=19.0, stock=10)


def facts(*products: Product, amounts: set[float] | None = None) -> Facts:
    return Facts(
        products={p.id: p for p in products},
        amounts=amounts or set(),
        catalog_titles=CatalogTitles([LOAFERS, RUNNERS, HAT]),
    )


def test_catalog_titles_are_found_whole_from_a_word_start_in_text_order() -> None:
    cap = Product(id="4", title="Ball Cap Deluxe", price=9.0)
    titles = CatalogTitles([LOAFERS, HAT, cap, Product(id="5", title="Tiny Hat")])  # short titles are not kept
    assert len(titles) == 3
    text = "Try the Cozy Wool Winter Hat with the SLEEK BROWN LEATHER LOAFERS and a Tiny Hat."
    assert titles.named_in(text) == [("cozy wool winter hat", ("3",)), ("sleek brown leather loafers", ("1",))]
    assert titles.named_in("a football cap deluxe") == []  # "ball" is not a word of the text
    assert titles.named_in("the Sleek Brown Leather") == []


def test_a_wrong_price_of_a_named_product_is_replaced_by_the_catalog_price() -> None:
    text, withheld = ground("The Sleek Brown Leather Loafers cost $45.", facts(LOAFERS, RUNNERS))
    assert "$59.99" in text and "$45" not in text
    assert withheld and "45" in withheld[0]


def test_a_right_price_is_kept_when_other_titles_share_the_named_products_words() -> None:
    """Words inside a full title belong to it: "Ergonomic Office Chair Pro" does not also name the ErgoFlex, whose
    words are mostly there too (the check once 'repaired' $249.99 into the ErgoFlex's $299.99)."""
    pro = Product(id="a", title="Ergonomic Office Chair Pro", price=249.99, stock=5)
    flex = Product(id="b", title="ErgoFlex Pro Office Chair", price=299.99, stock=5)
    mesh = Product(id="c", title="Ergonomic Red Mesh Office Chair", price=299.99, stock=5)
    sentence = "The Ergonomic Office Chair Pro costs $249.99."
    text, withheld = ground(sentence, Facts(products={p.id: p for p in (pro, flex, mesh)}))
    assert (text, withheld) == (sentence, [])
    wrong, withheld = ground("The Ergonomic Office Chair Pro costs $299.99.", Facts(products={"a": pro, "b": flex}))
    assert "$249.99" in wrong and withheld == ["price $299.99 replaced by $249.99"]


def test_products_sharing_a_title_keep_their_own_prices_and_are_not_foreign() -> None:
    """The demo catalog has titles given to two products at different prices: naming one is naming a shown one."""
    a = Product(id="a", title="Adventure-Ready Rugged Backpack", price=89.99, stock=3)
    b = Product(id="b", title="Adventure-Ready Rugged Backpack", price=79.99, stock=3)
    titles = CatalogTitles([a, b])
    assert titles.named_in("the Adventure-Ready Rugged Backpack") == [("adventure-ready rugged backpack", ("a", "b"))]
    only_b = Facts(products={"b": b}, catalog_titles=titles)
    sentence = "The Adventure-Ready Rugged Backpack costs $79.99."
    assert ground(sentence, only_b) == (sentence, [])
    both = Facts(products={"a": a, "b": b}, catalog_titles=titles)
    assert ground(sentence, both) == (sentence, [])


def test_an_unattributable_price_is_withheld() -> None:
    text, withheld = ground("Everything here is only $5 today.", facts(LOAFERS, RUNNERS))
    assert "$5" not in text
    assert withheld


def test_prices_from_the_facts_and_the_shoppers_budget_pass() -> None:
    sentence = "Both are under $100, and the loafers are $59.99."
    text, withheld = ground(sentence, facts(LOAFERS, RUNNERS, amounts={100.0}))
    assert text == sentence
    assert withheld == []


def test_a_stock_claim_about_a_product_of_unknown_stock_is_repaired() -> None:
    lamp = Product(id="9", title="Brass Reading Lamp", price=40.0)
    text, withheld = ground("The Brass Reading Lamp is in stock.", facts(lamp))
    assert text == "The Brass Reading Lamp is not confirmed in stock."
    assert withheld == ["stock claim 'in stock' not backed"]


def test_a_false_stock_claim_is_corrected() -> None:
    text, withheld = ground("The Trail Runner Shoes are in stock!", facts(LOAFERS, RUNNERS))
    assert "out of stock" in text
    assert withheld


def test_a_product_from_outside_the_results_is_cut() -> None:
    text, withheld = ground("Great choice. You might also like the Cozy Wool Winter Hat.", facts(LOAFERS))
    assert "Cozy" not in text and "Great choice." in text
    assert any("cozy wool winter hat" in w.lower() for w in withheld)


def test_an_invented_product_name_is_cut() -> None:
    text, withheld = ground("Try our Mega Hiker Boots instead.", facts(LOAFERS))
    assert "Mega" not in text
    assert withheld


def test_a_sentence_goes_out_once_it_ends_repaired_and_nothing_of_it_before() -> None:
    """Nothing of a sentence goes out before it is judged, so a dropped one leaves no words behind."""
    f = GroundingFilter(facts(LOAFERS))
    assert f.feed("Here are") == ""
    assert f.feed(" some good options avail") == ""
    assert f.feed("able at $45") == ""
    assert f.feed(".") == ""  # "." alone does not end it: "$45.99" may follow
    assert f.feed(" Enjoy them!") == "Here are some good options available at $59.99. "  # the price repaired
    assert f.finish() == "Enjoy them!"
    assert f.text == "Here are some good options available at $59.99. Enjoy them!"
    assert f.withheld == ["price $45 replaced by $59.99"]


def test_a_name_price_and_stock_from_the_facts_go_out_unchanged() -> None:
    f = GroundingFilter(facts(LOAFERS))
    words = "The Sleek Brown Leather Loafers cost $59.99, 3 in stock, a great pick for the office. ".split(" ")
    out = "".join(f.feed(w + " ") for w in words) + f.finish()
    assert out.strip() == "The Sleek Brown Leather Loafers cost $59.99, 3 in stock, a great pick for the office."
    assert not f.withheld and f.kept == 1 and f.cut == 0


def test_an_opener_goes_out_with_the_models_first_word_and_the_rest_with_its_sentence() -> None:
    """The answer prompt's reply start ("The") goes out as soon as the model's first word arrives, before its second
    token: the first-token latency does not wait for the sentence's end. So does a greeting or interjection."""
    f, gate = GroundingFilter(facts(LOAFERS)), QualityGate()
    assert gate.feed(f.feed("The" + " Sle")) == "The "  # the reply start and the model's first token
    assert gate.feed(f.feed("ek Brown Leather Loafers")) == ""
    assert gate.feed(f.feed(" are $59.99. ")) == "Sleek Brown Leather Loafers are $59.99. "
    assert f.finish() == "" and f.text == "The Sleek Brown Leather Loafers are $59.99. "
    f, gate = GroundingFilter(Facts()), QualityGate()
    assert [gate.feed(f.feed(d)) for d in ["Hello", " there", ", how can I help?"]] == ["", "Hello", ""]
    assert f.finish() == " there, how can I help?"
    # "These" is not "The"; without a product to finish it with, "The" waits; so do "Yes" and "I".
    assert GroundingFilter(facts(LOAFERS)).feed("These are") == ""
    assert GroundingFilter(Facts()).feed("The weather is") == ""
    assert GroundingFilter(facts(LOAFERS)).feed("Yes, they are") == ""
    assert GroundingFilter(facts(LOAFERS)).feed("I think") == ""


def test_a_dropped_first_sentence_after_its_opener_is_finished_as_a_whole_sentence() -> None:
    """The opener went out; its sentence names a product the turn did not show: "The" is finished with the top
    result's catalog fact, and the answer goes on with the next sentence. No "…", no cut sentence."""
    f = GroundingFilter(facts(LOAFERS, HAT))
    out = f.feed("The Trail")
    out += "".join(f.feed(w) for w in [" Runner", " Shoes", " are", " great,", " but", " pricey.", " Enjoy!"])
    out += f.finish()
    assert out == "The Sleek Brown Leather Loafers costs $59.99; see the cards for one more option. Enjoy!"
    assert f.withheld == ["product not in the results: trail runner shoes"] and "…" not in out
    # The token limit cut the first sentence: it is finished the same way.
    f = GroundingFilter(facts(LOAFERS))
    out = f.feed("The loafers are great for the") + f.finish(cut=True)
    assert out == "The Sleek Brown Leather Loafers costs $59.99. " and f.cut == 1
    assert f.withheld == ["unfinished at the token limit (sentence dropped): 'loafers are great for the'"]
    # An interjection is finished with "!".
    f = GroundingFilter(Facts())
    assert f.feed("Sure, it was made in 2031. ") + f.feed("How can I help?") + f.finish() == "Sure! How can I help?"


def test_a_stock_claim_is_repaired_when_its_sentence_ends() -> None:
    text, withheld = ground("The Trail Runner Shoes are not in stock right now.", facts(RUNNERS))
    assert text == "The Trail Runner Shoes are not in stock right now." and not withheld
    f = GroundingFilter(facts(RUNNERS))
    streamed = "".join(f.feed(w + " ") for w in "The Trail Runner Shoes are in stock today.".split()) + f.finish()
    assert streamed.strip() == "The Trail Runner Shoes are out of stock today."
    f = GroundingFilter(facts(LOAFERS))
    streamed = "".join(f.feed(w + " ") for w in "Sleek Brown Leather Loafers, 9 left today.".split()) + f.finish()
    assert streamed.strip() == "Sleek Brown Leather Loafers, 3 in stock today."


def test_a_refusal_or_stock_claim_first_is_still_held() -> None:
    f, gate = GroundingFilter(facts(LOAFERS)), QualityGate()
    assert [gate.feed(f.feed(d)) for d in ["I", "'m", " sorry", ", but", " no. "]] == ["", "", "", "", ""]
    assert gate.rejected == "im sorry"
    f = GroundingFilter(facts(RUNNERS))
    assert [f.feed(d) for d in ["S", "old", " out"]] == ["", "", ""]  # "Sold out" waits for its sentence


TEXTS = [
    "The Sleek Brown Leather Loafers are $45 with 7 left. Also see the Cozy Wool Winter Hat. Enjoy!",
    "They were made in 2023. They are brown leather, 3 in stock. They come in red. The loafers are brown.",
    "The second one is available in 2023. I'm ready. The. The Sleek Brown Leather Loafers cost $59.99.",
    "These are 20% off today! Sizes S to XL. A 12-in strap. Made of suede. Waterproof too. Brand Acme, rated 4.5/5.",
    "Sure, they come in navy. Hello! Thanks.",
]


def test_character_by_character_streaming_gives_the_whole_texts_result() -> None:
    for text in TEXTS:
        whole = GroundingFilter(facts(LOAFERS))
        expected = whole.feed(text) + whole.finish()
        f = GroundingFilter(facts(LOAFERS))
        streamed = "".join([f.feed(ch) for ch in text] + [f.finish()])
        assert streamed == expected and f.withheld == whole.withheld, text
        words = GroundingFilter(facts(LOAFERS))
        assert "".join([words.feed(w) for w in re.findall(r"\S+\s*", text)] + [words.finish()]) == expected
        assert "…" not in streamed
    out, withheld = ground(TEXTS[0], facts(LOAFERS))
    assert out == "The Sleek Brown Leather Loafers are $59.99 with 3 in stock. Enjoy!"
    out, withheld = ground(TEXTS[1], facts(LOAFERS))
    assert out == "They are brown leather, 3 in stock. The loafers are brown."
    assert withheld == [
        "year '2023' not in the results (sentence dropped)",
        "colour 'red' not in the results (sentence dropped)",
    ]
    # The first sentence is dropped after "The" went out: finished from the facts; the repeat of it is dropped.
    assert ground(TEXTS[2], facts(LOAFERS))[0] == "The Sleek Brown Leather Loafers costs $59.99. "
    assert ground(TEXTS[3], facts(LOAFERS))[0] == ""
    assert ground(TEXTS[4], facts(LOAFERS))[0] == "Sure! Hello! Thanks."


def test_a_title_assembled_from_words_of_shown_titles_is_caught_before_any_of_it_goes_out() -> None:
    """Each word of "Vintage Sunburst Electric Guitar" is in a shown guitar's title, but the whole title is a
    catalog product this turn did not show: its sentence is dropped before a word of it goes out."""
    acoustic = Product(id="g1", title="Classic Sunburst Acoustic Guitar", price=199.0, stock=4)
    bass = Product(id="g2", title="Vintage Electric Bass Guitar", price=349.0, stock=2)
    foreign = Product(id="g3", title="Vintage Sunburst Electric Guitar", price=499.0, stock=1)
    shown = Facts(products={"g1": acoustic, "g2": bass}, catalog_titles=CatalogTitles([acoustic, bass, foreign]))
    f = GroundingFilter(shown)
    words = "The Vintage Sunburst Electric Guitar is a great choice, but the bass is fun. It plays well.".split(" ")
    pieces = [f.feed(w + " ") for w in words] + [f.finish()]
    assert pieces[0] == "The" and not any("Vintage" in p for p in pieces)
    answer = "The Classic Sunburst Acoustic Guitar costs $199.00; see the cards for one more option. It plays well."
    assert "".join(pieces).strip() == answer
    assert f.withheld == ["product not in the results: vintage sunburst electric guitar"]


def test_a_title_inside_a_shown_products_title_is_not_foreign() -> None:
    short = Product(id="x", title="Brown Leather Loafers", price=30.0)
    titles = CatalogTitles([LOAFERS, short])
    shown = Facts(products={"1": LOAFERS}, catalog_titles=titles)
    sentence = "The Sleek Brown Leather Loafers cost $59.99."
    assert ground(sentence, shown) == (sentence, [])
    assert ground("Or the Brown Leather Loafers.", shown)[0] == ""


def test_a_repeating_model_is_stopped_and_nothing_usable_leaves_no_text() -> None:
    f = GroundingFilter(facts(LOAFERS))
    assert f.feed("The loafers are brown. ") == "The loafers are brown. "
    assert f.feed("The loafers are brown. ") == "" and f.looping
    f = GroundingFilter(facts(LOAFERS))
    assert f.feed("Made in 2031. ") + f.finish() == "" and f.cut == 1 and f.kept == 0


GOOD = Product(
    id="g",
    title="GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz - Crystal Clear Clarity, Classic Bowl Design Perfect "
    "for Red and White Wines - Lead Free, Dishwasher Safe, All-Purpose Tumblers",
    price=15.99,
)
BASICS = Product(id="b", title="Amazon Basics Stemless Wine Glasses (Set of 4), 15 oz", price=16.16)
SHORT = "The GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz - Crystal Clear Clarity"


def test_a_shortened_title_names_its_product_and_its_words_name_no_look_alike() -> None:
    """A model shortens a long title; the look-alike sharing most of its words was once taken as named, and the
    right $15.99 "repaired" into the Amazon Basics set's $16.16."""
    both = Facts(products={"g": GOOD, "b": BASICS})
    assert [(m.product.id, m.how) for m in both.named(f"{SHORT} costs $15.99.")] == [("g", "shortened")]
    assert ground(f"{SHORT} costs $15.99.", both) == (f"{SHORT} costs $15.99.", [])
    wrong, withheld = ground(f"{SHORT} costs $9.99.", both)  # named for sure: its own price is put back
    assert wrong == f"{SHORT} costs $15.99." and withheld == ["price $9.99 replaced by $15.99"]
    assert both.named("a set of 4 glasses") == []  # a title's first words must say more than "set of 4"


def test_a_price_that_is_another_named_products_is_never_repaired_into_a_third() -> None:
    swapped = "The Sleek Brown Leather Loafers cost $19.00, and the Cozy Wool Winter Hat costs $59.99."
    dropped = check_sentence(swapped, facts(LOAFERS, HAT))
    assert dropped.text == "" and dropped.withheld == [
        "price $19.00 belongs to the Cozy Wool Winter Hat, said of the Sleek Brown Leather Loafers (sentence dropped)",
        "price $59.99 belongs to the Sleek Brown Leather Loafers, said of the Cozy Wool Winter Hat (sentence dropped)",
    ]


def test_a_price_of_a_product_known_only_by_some_words_is_withheld_when_another_card_has_it() -> None:
    both = Facts(products={"g": GOOD, "b": BASICS})
    # Most of the Basics set's words, and the GoodGlassware's price.
    sentence = "The Amazon Stemless Wine Glasses cost $15.99."
    assert [m.how for m in both.named(sentence)] == ["words"]
    dropped = check_sentence(sentence, both)
    assert dropped.text == "" and dropped.withheld == [
        f"price $15.99 belongs to the {GOOD.title}, said of the {BASICS.title} (sentence dropped)"
    ]
    unknown = check_sentence("The Amazon Stemless Wine Glasses cost $12.00.", both)  # no card's price: repaired
    assert unknown.text == "The Amazon Stemless Wine Glasses cost $16.16."


def test_what_was_repaired_is_told_apart_from_what_was_dropped() -> None:
    """`repaired`: what a sentence that went out had fixed (the console's trace shows it beside what was withheld)."""
    f = GroundingFilter(facts(LOAFERS))
    out = f.feed("Here are good options at $45. They come in 17 sizes. ") + f.finish()
    assert out == "Here are good options at $59.99. "
    assert f.repaired == ["price $45 replaced by $59.99"]
    assert f.withheld[0] == "price $45 replaced by $59.99" and len(f.withheld) == 2
