"""Tone and form: a sentence that echoes the shopper's message, a fragment, filler, or a repeat of an earlier
sentence is dropped whole; the answer goes on with the next sentence."""

from __future__ import annotations

import pytest

from assistant.grounding import Facts, FormCheck, GroundingFilter, ground
from retrieval.product import Product

PACK = Product(id="p", title="Tactical Explorer Backpack", price=89.99, stock=15)


def facts(message: str) -> Facts:
    return Facts(products={"p": PACK}, message=message)


def test_a_sentence_echoing_the_shoppers_message_is_dropped() -> None:
    message = "how much is the second one and do you have it in stock?"
    text, withheld = ground("Second one and do you have it in stock? It is $89.99.", facts(message))
    assert text == "It is $89.99." and withheld == ["echo of the shopper's message (sentence dropped)"]
    # A short question asked back is an echo too; answering in the shopper's words is not.
    assert ground("Do you sell snow blowers?", facts("do you sell snow blowers"))[0] == ""
    assert ground("Yes, we sell backpacks.", facts("do you sell backpacks"))[0] == "Yes, we sell backpacks."


def test_naming_the_product_the_shopper_named_is_no_echo() -> None:
    message = "is the Tactical Explorer Backpack in stock for my trip"
    sentence = "The Tactical Explorer Backpack is in stock for your trip."
    assert ground(sentence, facts(message)) == (sentence, [])


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        ("The.", "fragment 'The.'"),
        ("It is.", "fragment 'It is.'"),
        ("1.", "fragment '1.'"),
        ("I'm ready.", 'filler "I\'m ready."'),
        ("I am ready to help you!", "filler 'I am ready to help you!'"),
        ("It is a great pick for the.", "unfinished sentence 'It is a great pick for the.'"),
    ],
)
def test_fragments_and_filler_are_dropped(sentence: str, why: str) -> None:
    text, withheld = ground(f"Nice. {sentence} It is a good bag.", facts("a backpack"))
    assert text == "Nice. It is a good bag." and withheld == [f"{why} (sentence dropped)"]


def test_a_sentence_repeating_an_earlier_one_is_dropped() -> None:
    text, withheld = ground("It is a great backpack for hiking. It is great for hiking! Enjoy!", facts("a bag"))
    assert text == "It is a great backpack for hiking. Enjoy!"
    assert withheld == ["repeats an earlier sentence (sentence dropped)"]
    # Word for word again: the model is looping, and the filter says so (the answer stops there).
    f = GroundingFilter(facts("a bag"))
    f.feed("It is a great backpack. It is a great backpack. ")
    assert f.text == "It is a great backpack. " and f.looping


def test_at_most_three_sentences() -> None:
    text = "It is roomy. It has many pockets. It fits a laptop. It has a rain cover."
    assert ground(text, facts("a bag"))[0] == "It is roomy. It has many pockets. It fits a laptop. "


def test_form_check_alone() -> None:
    check = FormCheck("what colour is it")
    assert check.problem("What colour is it?") == "echo of the shopper's message"
    assert check.problem("Enjoy!") is None and check.problem("Enjoy!") == "repeats an earlier sentence"
    assert check.repeated_exactly
