"""The model's parse of unclear messages: when it is asked, the schema it decodes under, and what validates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from assistant.intents.classifier import IntentScore
from assistant.intents.model_parse import (
    MAX_CHOICES,
    ModelParse,
    ParseContext,
    candidates,
    leans_on_context,
    parse_message,
    parse_schema,
    why_parse,
)
from assistant.intents.router import RoutedIntent
from assistant.intents.slots import CatalogVocabulary
from assistant.llm.base import ChatMessage, T
from assistant.llm.fake import FakeLLM
from assistant.prompts import PromptRegistry
from retrieval.product import Product

SHOWN = [
    Product(id="p1", title="Trail Runner Shoes", price=89.99, category_path=["shoes"], color="blue"),
    Product(id="p2", title="Road Racer Shoes", price=119.0, category_path=["shoes"], color="black"),
]
VOCAB = CatalogVocabulary.from_products(SHOWN)
PROMPT = PromptRegistry.load().get("parse")
CHOICES = ["product_question", "search_products", "out_of_scope"]


def routed(intent: str, confidence: float, source: str = "classifier", runners_up: Sequence[str] = ()) -> RoutedIntent:
    scores = [IntentScore(intent=intent, score=confidence), *(IntentScore(intent=r, score=0.1) for r in runners_up)]
    return RoutedIntent(intent=intent, group="X", confidence=confidence, source=source, scores=scores)  # type: ignore[arg-type]


def parse(
    reply: dict[str, Any] | None,
    message: str,
    ctx: ParseContext | None = None,
    choices: Sequence[str] = CHOICES,
    *,
    llm: FakeLLM | None = None,
    describe: dict[str, str] | None = None,
    timeout_s: float = 5,
) -> ModelParse:
    """The model's parse of `message` with `reply` scripted (or `llm` as given)."""
    llm = llm if llm is not None else FakeLLM(json_replies=[reply] if reply is not None else [])
    ctx = ctx if ctx is not None else ParseContext(shown=SHOWN)
    return asyncio.run(
        parse_message(
            llm,
            PROMPT,
            message,
            ctx,
            reason="context",
            choices=choices,
            describe=describe or {},
            vocab=VOCAB,
            timeout_s=timeout_s,
        )
    )


def test_the_model_reads_unsure_and_context_leaning_messages_only() -> None:
    assert why_parse(routed("track_order", 0.2), "where is it", has_context=False, below=0.35) == "low_confidence"
    assert why_parse(routed("track_order", 0.9), "where is my parcel today", has_context=True, below=0.35) is None
    assert why_parse(routed("search_products", 0.9), "the blue one", has_context=True, below=0.35) == "context"
    assert why_parse(routed("search_products", 0.9), "the blue one", has_context=False, below=0.35) is None
    assert why_parse(routed("greeting", 0.1, source="rule"), "hi", has_context=True, below=0.35) is None
    assert leans_on_context("no, I meant something for running in the rain")
    assert leans_on_context("what about the most recent one you showed me earlier")
    assert not leans_on_context("show me waterproof hiking boots under 150")


def test_choices_are_the_classifiers_top_scores_then_the_context_known_intents_only() -> None:
    route = routed("get_refund", 0.2, runners_up=["check_refund_policy", "not_an_intent", "get_refund"])
    known = ["get_refund", "check_refund_policy", "product_question", "out_of_scope"]
    got = candidates(route, known=known, context=["product_question", "out_of_scope", "get_refund"])
    assert got == ["get_refund", "check_refund_policy", "product_question", "out_of_scope"]
    many = candidates(routed("a", 0.1, runners_up=list("bcdefgh")), known=list("abcdefgh"))
    assert len(many) == MAX_CHOICES


def test_the_schema_allows_only_what_the_message_and_the_turn_allow() -> None:
    schema = parse_schema(("product_question", "out_of_scope"), 2, (("color", ("black",)), ("price_max", (50.0,))))
    props = schema.model_json_schema()["properties"]
    assert props["intent"]["enum"] == ["product_question", "out_of_scope"]
    assert props["product"]["maximum"] == 2
    assert set(props) == {"intent", "product", "color", "price_max"}  # no order id, category or brand to choose
    assert "product" not in parse_schema(("out_of_scope",), 0, ()).model_json_schema()["properties"]


def test_a_parse_that_validates_is_accepted_with_its_reference_and_slots() -> None:
    out = parse({"intent": "product_question", "product": 2, "color": "black"}, "is the second one black?")
    assert out.status == "accepted" and out.intent == "product_question"
    assert out.product_ids == ["p2"] and out.slots is not None and out.slots.color == "black"
    assert out.record()["status"] == "accepted"


def test_a_reference_the_message_cannot_make_is_rejected() -> None:
    out = parse({"intent": "search_products", "product": 1}, "do you deliver on sundays")
    assert out.status == "rejected" and out.intent is None
    assert out.problems == ["product 1: the message points at nothing"]


def test_an_answer_outside_the_schema_is_an_error_and_decides_nothing() -> None:
    out = parse({"intent": "cancel_order"}, "the blue one please")  # not a choice: the fake validates the schema
    assert out.status == "error" and out.intent is None


def test_an_order_from_the_questions_options_is_a_slot_the_reply_supports() -> None:
    ctx = ParseContext(question="Which order would you like to cancel?", order_options=["ORD-AAAAAA", "ORD-BBBBBB"])
    out = parse({"intent": "cancel_order", "order_id": "ORD-BBBBBB"}, "the older one", ctx, ["cancel_order"])
    assert out.status == "accepted" and out.slots is not None and out.slots.order_id == "ORD-BBBBBB"


def test_the_prompt_names_the_question_the_shown_products_and_the_choices() -> None:
    llm = FakeLLM(json_replies=[{"intent": "out_of_scope", "product": 0}])
    ctx = ParseContext(question="Which order?", order_options=["ORD-AAAAAA"], shown=SHOWN)
    parse(None, "hmm", ctx, llm=llm, describe={"out_of_scope": "Anything else."})
    user = llm.calls[0][1][1].content
    assert "Which order? Options: ORD-AAAAAA" in user
    assert "1. Trail Runner Shoes" in user and "2. Road Racer Shoes" in user
    assert "- out_of_scope: Anything else." in user and "Latest message: hmm" in user


class SlowLLM(FakeLLM):
    async def complete_json(self, messages: Sequence[ChatMessage], schema: type[T], *, max_tokens: int = 256) -> T:
        await asyncio.sleep(5)
        return schema.model_validate_json(json.dumps({"intent": "out_of_scope"}))


def test_a_slow_model_times_out_and_decides_nothing() -> None:
    out = parse(None, "hmm", ParseContext(), llm=SlowLLM(), timeout_s=0.05)
    assert out.status == "timeout" and out.intent is None


def test_an_unavailable_model_decides_nothing() -> None:
    llm = FakeLLM()
    llm.available = False
    assert parse(None, "hmm", ParseContext(), llm=llm).status == "unavailable"


def test_an_intent_about_shown_products_needs_a_product() -> None:
    out = parse({"intent": "product_question", "product": 0}, "thanks, that's all")
    assert out.status == "rejected" and out.problems == ["product_question: no product it is about"]
    resolved = ParseContext(shown=SHOWN, resolved=True)  # the rules already know which product
    assert parse({"intent": "product_question", "product": 0}, "and its price?", resolved).status == "accepted"


def test_the_model_alone_never_turns_a_message_into_a_change() -> None:
    # "how much does it cost?" read as a refund request: the classifier (choices[0]) read a question.
    out = parse(
        {"intent": "get_refund", "product": 1}, "how much does it cost?", choices=["product_question", "get_refund"]
    )
    assert out.status == "rejected" and out.problems == ["get_refund: a change the classifier did not read"]
    agreed = parse({"intent": "get_refund", "product": 0}, "send it back", choices=["get_refund", "product_question"])
    assert agreed.status == "accepted"
