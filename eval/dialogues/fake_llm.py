"""`--llm fake`: a model that phrases the facts it is given, deterministically and instantly.

It answers like a careful small model would: the first product of the facts with its price (the first product when
none has a price, as in much of the ESCI catalog), the first sentence of a policy passage, a greeting for small talk.
The conversation logic around it (routing, tools, cards, grounding, state changes) runs for real, so a scenario that
fails with it fails for a reason the model is not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.llm.base import ChatMessage
from assistant.llm.fake import FakeLLM

PRICE = re.compile(r"[$€£]\d[\d,]*(?:\.\d\d)?")
# A product's fact line always states its availability (assistant.answers.product_fact), priced or not.
PRODUCT_LINE = re.compile(r", (?:\d+ in stock|out of stock|availability unknown)\b")
PIECE = re.compile(r"\s*\S+")


class FactsLLM(FakeLLM):
    """Streams one sentence built from the prompt's facts, a word at a time."""

    @property
    def model(self) -> str:
        return "facts-fake"

    def reply(self, messages: Sequence[ChatMessage]) -> str:
        system = messages[0].content if messages else ""
        if "Summarise the conversation" in system:
            return "The shopper looked at products in this store."
        if "friendly sentence" in system:
            return "Hello! I can help you find products or with an order."
        # The facts are the last assistant message before the shopper's question (a final assistant message is
        # the reply's start, which the model continues).
        said = list(messages[:-1]) if messages and messages[-1].role == "assistant" else list(messages)
        facts = next((m.content for m in reversed(said) if m.role == "assistant"), "")
        if facts.startswith("Our policy says:"):
            passage = facts.split("\n", 1)[1].lstrip("- ").strip() if "\n" in facts else ""
            sentence = re.split(r"(?<=[.!?])\s", passage, maxsplit=1)[0]
            return sentence or "Please contact customer service about that."
        lines = [line.lstrip("- ").strip() for line in facts.splitlines() if line.strip()]
        first = next((line for line in lines if PRICE.search(line)), "") or next(
            (line for line in lines if PRODUCT_LINE.search(line)), ""
        )
        if not first:
            return "I can help you find products or with an order."
        title = first.split(",", 1)[0].strip()
        price = PRICE.search(first)
        return f"The {title} costs {price.group(0)}." if price else f"The {title} is one option."

    def next_stream(self, messages: Sequence[ChatMessage]) -> list[str]:
        """The reply to these messages, a word at a time; a final assistant message is the reply's start, which
        is already said, so the reply continues it."""
        text = self.reply(messages)
        start = messages[-1].content if messages and messages[-1].role == "assistant" else ""
        if start and text.startswith(start):
            text = text[len(start) :]
        return PIECE.findall(text)


class NonsenseLLM(FactsLLM):
    """`--llm nonsense`: a model that says confident nonsense (an invented product, a discount, a year, a colour)
    in every answer. What reaches the shopper must still be the records' facts: the grounding check drops the
    nonsense and the fact-first sentences and fixed texts carry the answer."""

    @property
    def model(self) -> str:
        return "nonsense-fake"

    def reply(self, messages: Sequence[ChatMessage]) -> str:
        system = messages[0].content if messages else ""
        if "Summarise the conversation" in system:
            return "The shopper bought a Moonwalk 3000 in 2031."
        return "The Moonwalk 3000 Hover Boots are 47% off until 2031, only $3.50, in ultraviolet, with 999 left."
