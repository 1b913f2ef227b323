"""The limit guard: an answer the token limit cuts ends at its last whole sentence."""

from __future__ import annotations

from assistant.grounding import LimitGuard


def guarded(pieces: list[str], first_token: int, cut: bool, max_tokens: int = 48) -> tuple[str, str]:
    """What a LimitGuard lets out of pieces arriving one token apart from `first_token` on, and what it dropped."""
    guard = LimitGuard(max_tokens)
    out = "".join(guard.feed(p, first_token + i) for i, p in enumerate(pieces))
    return out + guard.finish(cut), guard.dropped


RECORD = ["Cozy ", "Quilted ", "Parka, ", "$129.99, ", "10 ", "in ", "stock\n", "Stay ", "warm ", "with ", "our "]
RECORD += ["Cozy ", "Quilted ", "Parka. ", "This ", "sleek ", "brown ", "p"]


def test_an_answer_cut_by_the_token_limit_ends_at_its_last_whole_sentence() -> None:
    out, dropped = guarded(RECORD, 30, cut=True)
    assert out == "Cozy Quilted Parka, $129.99, 10 in stock\nStay warm with our Cozy Quilted Parka. "
    assert dropped == "This sleek brown p"


def test_an_answer_that_finished_by_itself_is_said_whole() -> None:
    assert guarded(RECORD, 30, cut=False) == ("".join(RECORD), "")
    assert guarded(["The ", "parka ", "is ", "warm."], 44, cut=True)[0] == "The parka is warm."  # ended at the limit


def test_a_cut_sentence_already_partly_out_is_not_marked_with_an_ellipsis() -> None:
    """Behind the grounding filter nothing of an unfinished sentence is out; from any other source, the held rest
    of one is still left out whole, and no "…" is added."""
    pieces = ["The ", "parka ", "is ", "warm ", "and ", "cozy ", "for ", "winter ", "days ", "in ", "the ", "mount"]
    out, dropped = guarded(pieces, 25, cut=True)  # "The parka … for" went out before the last 16 tokens
    assert out == "The parka is warm and cozy for " and dropped == "winter days in the mount"


def test_far_from_the_limit_nothing_is_held() -> None:
    guard = LimitGuard(48)
    assert [guard.feed(p, i) for i, p in enumerate(["The ", "parka ", "is"])] == ["The ", "parka ", "is"]
    assert guard.finish(cut=False) == ""
