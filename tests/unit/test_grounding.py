"""The grounding check: prices, stock claims and product names must come from the turn's facts."""

from __future__ import annotations

from assistant.grounding import CatalogTitles, Facts, GroundingFilter, QualityGate, ground
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


def test_plain_text_streams_through_before_the_sentence_ends() -> None:
    f = GroundingFilter(facts(LOAFERS))
    # "are" may still be arriving, but no word starting "are" can be a claim: out at once.
    assert f.feed("Sure, here are") == "Sure, here are"
    assert f.feed(" some good options") == " some good options"
    assert f.feed(" avail") == ""  # may become "available", a stock claim: waits for the word's end
    assert f.feed("able ") == " available "  # the loafers are in stock: backed
    assert f.feed("at $") == "at "
    assert f.feed("45. ") == "$59.99. "
    assert f.finish() == ""
    assert f.text == "Sure, here are some good options available at $59.99. "
    f = GroundingFilter(facts(LOAFERS))
    assert f.feed("Sure, some good options") == "Sure, some good options"
    # A price holds the rest of the sentence until it can be checked.
    assert f.feed(" at $") == " at "
    assert f.feed("45. ") == "$59.99. "
    assert f.finish() == ""
    assert f.text == "Sure, some good options at $59.99. "


def test_a_name_and_price_from_the_facts_stream_without_waiting_for_the_sentence_end() -> None:
    f = GroundingFilter(facts(LOAFERS))
    out = f.feed("The Sleek Brown Leather Loafers cost $59.99 and are a great pick for the")
    assert out == "The Sleek Brown Leather Loafers cost $59.99 and are a great pick for the"


def test_a_first_word_goes_out_while_arriving_unless_it_may_become_a_claim_or_refusal() -> None:
    f, gate = GroundingFilter(facts(LOAFERS)), QualityGate()
    assert [gate.feed(f.feed(d)) for d in ["I", "'d", " recommend"]] == ["", "I'd", " recommend"]
    f, gate = GroundingFilter(facts(LOAFERS)), QualityGate()
    assert [gate.feed(f.feed(d)) for d in ["I", "'m", " sorry", " but"]] == ["", "", "", ""]  # held, then rejected
    assert gate.rejected
    f = GroundingFilter(facts(LOAFERS))
    assert [f.feed(d) for d in ["S", "old", " out"]] == ["", "", ""]  # "Sold out" is a stock claim


def test_a_stock_claim_opener_is_never_emitted_before_its_claim_is_checked() -> None:
    text, withheld = ground("The Trail Runner Shoes are not in stock right now.", facts(RUNNERS))
    assert text == "The Trail Runner Shoes are not in stock right now." and not withheld
    f = GroundingFilter(facts(RUNNERS))
    streamed = "".join(f.feed(w + " ") for w in "The Trail Runner Shoes are in stock today.".split()) + f.finish()
    assert "out of stock" in streamed and "in stock" not in streamed.replace("out of stock", "")


def test_character_by_character_streaming_is_checked_like_the_whole_text() -> None:
    text = "The Sleek Brown Leather Loafers are $45 with 7 left. Also see the Cozy Wool Winter Hat. Enjoy!"
    whole, _ = ground(text, facts(LOAFERS))
    f = GroundingFilter(facts(LOAFERS))
    streamed = "".join([f.feed(ch) for ch in text] + [f.finish()])
    for out in (whole, streamed):
        assert "$59.99" in out and "3 in stock" in out and "Cozy" not in out and out.endswith("Enjoy!")
    # Streaming let "Also see the" through before the name arrived; the cut sentence is marked.
    assert "Also see the … Enjoy!" in streamed


def test_correct_prices_and_stock_levels_stream_word_by_word() -> None:
    f = GroundingFilter(facts(LOAFERS))
    words = "Sleek Brown Leather Loafers, $59.99, 3 in stock, a great pick for the office".split()
    out = [f.feed(w + " ") for w in words]
    # Every word went out as it arrived: the name, price and stock level match the facts.
    assert "".join(out) == "Sleek Brown Leather Loafers, $59.99, 3 in stock, a great pick for the office "
    assert f.finish() == "" and not f.withheld


def test_a_claim_opener_waits_for_the_next_words() -> None:
    f = GroundingFilter(facts(RUNNERS))
    assert f.feed("The Trail Runner Shoes are in ") == "The Trail Runner Shoes are "
    assert f.feed("stock ") == ""  # "in stock" is false for them: held for repair
    assert "out of stock" in f.feed("today. ")


def test_a_wrong_stock_count_still_holds_and_is_repaired() -> None:
    f = GroundingFilter(facts(LOAFERS))
    streamed = "".join(f.feed(w + " ") for w in "Sleek Brown Leather Loafers, 9 left today.".split()) + f.finish()
    assert "3 in stock" in streamed and "9 left" not in streamed
