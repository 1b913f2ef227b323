"""The quality gate: refusals and confusion are caught in the first words, loops are stopped."""

from __future__ import annotations

from assistant.grounding import QualityGate


def gate_run(chunks: list[str]) -> tuple[str, QualityGate]:
    gate = QualityGate()
    out = ""
    for c in chunks:
        out += gate.feed(c)
        if gate.rejected or gate.looping:
            return out, gate
    return out + gate.finish(), gate


def test_the_quality_gate_rejects_a_refusal_before_anything_is_shown() -> None:
    out, gate = gate_run(["I'm sorry ", "for your loss, ", "but I can't help. ", "Bye."])
    assert out == "" and gate.rejected


def test_the_quality_gate_holds_only_words_that_may_begin_a_refusal() -> None:
    gate = QualityGate()
    assert gate.feed("The") == "The"  # no junk begins with "the": out at once, even before the word is whole
    assert gate.feed(" Arctic ") == " Arctic "
    gate = QualityGate()
    assert gate.feed("Your ") == ""  # "your loss" is junk
    assert gate.feed("Arctic ") == "Your Arctic "  # "your arctic" is not
    gate = QualityGate()
    assert gate.feed("I") == "" and gate.feed("'m ") == "" and gate.feed("sorry") == ""
    assert gate.feed(", ") == "" and gate.rejected == "im sorry"
    # A refusal after safe words is still caught (the caller replaces the answer with the facts).
    out, gate = gate_run(["Yes! ", "I am sorry ", "to hear it."])
    assert out == "Yes! " and gate.rejected == "i am sorry"
    # Past the first words nothing is judged any more.
    out, gate = gate_run(["The Arctic Parka is warm; ", "I'm sorry it is sold out."])
    assert out == "The Arctic Parka is warm; I'm sorry it is sold out." and not gate.rejected


def test_the_quality_gate_strips_a_list_number_and_passes_good_text() -> None:
    out, gate = gate_run(["1. ", "Classic Blue Jacket, ", "$59.99. ", "Great for spring."])
    assert out == "Classic Blue Jacket, $59.99. Great for spring." and not gate.rejected
    out, gate = gate_run(["1", ". ", "Classic ", "Blue Jacket."])  # the list mark arrives in pieces
    assert out == "Classic Blue Jacket." and not gate.rejected


def test_the_quality_gate_stops_a_repeating_model() -> None:
    chunks = ["Nice pick. ", "It is warm. ", "It is ", "warm. ", "It is warm. "]
    out, gate = gate_run(chunks)
    assert out == "Nice pick. It is warm. " and gate.looping


def test_the_quality_gate_releases_a_short_answer_without_a_full_stop() -> None:
    out, gate = gate_run(["Happy ", "to help"])
    assert out == "Happy to help" and not gate.rejected
