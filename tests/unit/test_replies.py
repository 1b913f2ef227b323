"""Short replies read as the answer to "which order?": a number, a bare code, an ordinal, newest / oldest."""

from __future__ import annotations

import pytest

from assistant.dialogue.replies import order_reply
from assistant.planning.planner import routing_text

OPTIONS = ["ORD-AAAA2A", "ORD-BBBB3B", "ORD-CCCC4C"]  # newest first, as the question listed them


@pytest.mark.parametrize(
    ("message", "picked"),
    [
        ("ORD-BBBB3B", "ORD-BBBB3B"),
        ("it's ord bbbb3b", "ORD-BBBB3B"),
        ("cccc4c", "ORD-CCCC4C"),
        ("the first one", "ORD-AAAA2A"),
        ("the 2nd please", "ORD-BBBB3B"),
        ("number 3", "ORD-CCCC4C"),
        ("#2", "ORD-BBBB3B"),
        ("the most recent one", "ORD-AAAA2A"),
        ("the oldest", "ORD-CCCC4C"),
        ("the fifth one", None),  # only three were listed
        ("ORD-ZZZZ9Z", None),  # not one of them
        ("yes", None),  # which of three?
        ("thanks", None),
        ("actually I'd like to know how long delivery takes to Hawaii and whether express is available", None),
    ],
)
def test_a_reply_picks_one_of_the_listed_orders(message: str, picked: str | None) -> None:
    assert order_reply(message, OPTIONS) == picked


def test_with_one_order_listed_yes_or_that_one_picks_it() -> None:
    assert order_reply("yes", ["ORD-AAAA2A"]) == "ORD-AAAA2A"
    assert order_reply("that one", ["ORD-AAAA2A"]) == "ORD-AAAA2A"
    assert order_reply("no", ["ORD-AAAA2A"]) is None


def test_the_classifier_reads_messages_without_order_numbers() -> None:
    assert routing_text("what's the status of order ORD-8MNLZ8?") == "what's the status of order ?"
    assert routing_text("ORD-8MNLZ8") == "ORD-8MNLZ8"  # nothing else to read: the number stays
