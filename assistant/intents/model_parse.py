"""The model's parse of a message the classifier can't settle alone.

The trained classifier reads each message by itself. When it is unsure (low confidence) or the message leans on
the conversation (a short reply, a correction, "that one"), the model reads it together with the assistant's last
question and the products last shown, and answers in JSON constrained by a schema built for this turn: the intent
is one of a few candidates (the classifier's top scores and what the context makes likely), the product reference
a number within the products shown, the slots nullable strings and numbers.

The parse counts only when it validates: an intent among the candidates, a product reference the message can make
(it has a pointing word) to a product that was shown, and every slot one the message itself states (cross-checked
by the slot rules; an order id may also be one of the options the last question listed). Otherwise it is rejected,
and the caller keeps the classifier's reading or asks.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from assistant.intents.router import RoutedIntent
from assistant.intents.slots import CatalogVocabulary, LlmSlots, Slots, cross_check, stated
from assistant.llm.base import LLM, ChatMessage, LLMError, LLMUnavailable
from assistant.prompts import Prompt
from retrieval.product import Product

Mode = Literal["off", "shadow", "on"]
Reason = Literal["low_confidence", "context"]
Status = Literal["accepted", "rejected", "error", "timeout", "unavailable"]

MAX_CHOICES = 6
MAX_SHOWN = 6
_CORRECTION = re.compile(r"^\s*(?:no|nope|not (?:that|those|this)|actually|i meant|i mean|rather|instead)\b", re.I)
_POINTS = re.compile(
    r"\b(?:the (?:most recent|latest|newest|oldest|other|same|last|cheaper|cheapest) one|that one|this one|the one"
    r"|those|these)\b",
    re.I,
)
# Words a message uses to point at something shown: without one, a product reference is the model's invention.
_POINTING_WORD = re.compile(
    r"\b(?:it|its|this|that(?!'s| is)|these|those|them|they|one|ones|first|second|third|fourth|fifth|last|other|former"
    r"|latter|both|\d(?:st|nd|rd|th))\b",
    re.I,
)
SHORT_REPLY_WORDS = 3
# Intents that change something: the model's reading alone never turns a message into one (the classifier's must
# agree), however well the rest of its parse validates.
WRITES = frozenset({"cancel_order", "change_order", "get_refund", "cart_add", "cart_remove", "delete_account"})
# Intents about products already shown: without a product to be about, the message does not support them.
ABOUT_SHOWN = frozenset({"product_question", "compare_products", "variant_question", "cart_add", "cart_remove"})


def leans_on_context(message: str) -> bool:
    """A short reply, a correction or a pointer whose meaning depends on what came before."""
    return (
        len(message.split()) <= SHORT_REPLY_WORDS or bool(_CORRECTION.match(message)) or bool(_POINTS.search(message))
    )


def why_parse(route: RoutedIntent, message: str, *, has_context: bool, below: float) -> Reason | None:
    """Why the model should read this message, or None when the classifier's reading stands by itself."""
    if route.source != "classifier":  # a rule (greeting, thanks) or an empty message: nothing to add
        return None
    if route.confidence < below:
        return "low_confidence"
    if has_context and leans_on_context(message):
        return "context"
    return None


def candidates(route: RoutedIntent, *, known: Sequence[str], context: Sequence[str] = ()) -> list[str]:
    """The intents the model may choose from: the classifier's top scores, then what the context suggests."""
    names = set(known)
    out: list[str] = []
    for name in [route.intent, *(s.intent for s in route.scores), *context]:
        if name in names and name not in out:
            out.append(name)
    return out[:MAX_CHOICES]


SLOTS = ("order_id", "category", "color", "brand", "price_max")


@lru_cache(maxsize=256)
def parse_schema(
    choices: tuple[str, ...], shown: int, values: tuple[tuple[str, tuple[Any, ...]], ...]
) -> type[BaseModel]:
    """The JSON schema for one turn. The decoder can only write what this turn allows: an intent among the
    choices, a product number within those shown, and for each slot one of the values the message (or the last
    question's options) states, or null; a slot with no such value is not in the schema at all."""
    fields: dict[str, Any] = {"intent": (Literal[choices], ...)}  # type: ignore[valid-type]
    if shown:
        fields["product"] = (int, Field(ge=0, le=shown))
    for name, allowed in values:
        fields[name] = (Literal[allowed] | None, ...)  # type: ignore[valid-type]
    return create_model("MessageParse", __config__=ConfigDict(extra="forbid"), **fields)


@dataclass
class ParseContext:
    """What the model reads beside the message: the assistant's last question and the products last shown."""

    question: str | None = None
    order_options: list[str] = field(default_factory=list)
    shown: list[Product] = field(default_factory=list)
    resolved: bool = False  # the message's reference was already resolved by the rules


@dataclass
class ModelParse:
    """What the model's parse decided, and why it was asked; `intent` etc. are set only when it was accepted."""

    reason: Reason
    status: Status
    choices: list[str]
    raw: dict[str, Any] | None = None
    intent: str | None = None
    product_ids: list[str] = field(default_factory=list)
    slots: Slots | None = None
    problems: list[str] = field(default_factory=list)
    ms: float = 0.0

    def record(self) -> dict[str, Any]:
        """The trace entry: enough to see why the model was asked and what became of its answer."""
        return {
            "reason": self.reason,
            "status": self.status,
            "choices": self.choices,
            "raw": self.raw,
            "intent": self.intent,
            "product_ids": self.product_ids,
            "slots": self.slots.model_dump(exclude_none=True) if self.slots else {},
            "problems": self.problems,
            "ms": round(self.ms, 1),
        }


def render(
    prompt: Prompt, message: str, ctx: ParseContext, choices: Sequence[str], describe: dict[str, str]
) -> list[ChatMessage]:
    shown = "\n".join(f"{i}. {p.title}" for i, p in enumerate(ctx.shown[:MAX_SHOWN], 1))
    question = ctx.question or "(none)"
    if ctx.order_options:
        question += " Options: " + ", ".join(ctx.order_options)
    return [
        ChatMessage(role=role, content=content)  # type: ignore[arg-type]
        for role, content in prompt.messages(
            message=message,
            question=question,
            shown=shown or "(none)",
            choices="\n".join(f"- {c}: {describe.get(c, '')}".rstrip(": ") for c in choices),
        )
    ]


def validate(
    raw: dict[str, Any], message: str, ctx: ParseContext, choices: Sequence[str], vocab: CatalogVocabulary
) -> tuple[str | None, list[str], Slots | None, list[str]]:
    """(intent, product ids, slots, problems): the parse's parts that hold, and what does not. `choices[0]` is the
    classifier's reading."""
    problems: list[str] = []
    intent = raw.get("intent")
    if intent not in choices:
        problems.append(f"intent {intent!r} is not among the choices")
    product_ids: list[str] = []
    index = raw.get("product") or 0
    if index:
        if not _POINTING_WORD.search(message):
            problems.append(f"product {index}: the message points at nothing")
        elif not 1 <= index <= min(len(ctx.shown), MAX_SHOWN):
            problems.append(f"product {index}: only {len(ctx.shown)} shown")
        else:
            product_ids = [ctx.shown[index - 1].id]
    if intent in WRITES and choices and intent != choices[0]:
        problems.append(f"{intent}: a change the classifier did not read")
    if intent in ABOUT_SHOWN and not (product_ids or ctx.resolved):
        problems.append(f"{intent}: no product it is about")
    order_id = raw.get("order_id")
    from_options = None
    if order_id:
        wanted = str(order_id).strip().upper()
        from_options = next((o for o in ctx.order_options if o.upper() == wanted), None)
    read = LlmSlots(
        order_id=None if from_options else order_id,
        category=raw.get("category"),
        color=raw.get("color"),
        brand=raw.get("brand"),
        price_max=raw.get("price_max"),
    )
    checked = cross_check(message, read, vocab)
    problems += [f"{name}: {why}" for name, why in checked.dropped.items()]
    slots = checked.slots
    if from_options:
        slots = slots.model_copy(update={"order_id": from_options})
    return (intent if not problems else None), product_ids, slots, problems


async def parse_message(
    llm: LLM,
    prompt: Prompt,
    message: str,
    ctx: ParseContext,
    *,
    reason: Reason,
    choices: Sequence[str],
    describe: dict[str, str],
    vocab: CatalogVocabulary,
    timeout_s: float,
) -> ModelParse:
    """Ask the model for its parse and validate it; never raises for the model's failures (they are a status)."""
    started = time.perf_counter()
    choices = list(choices)
    shown = min(len(ctx.shown), MAX_SHOWN)
    allowed = stated(message, vocab)
    if ctx.order_options:
        allowed["order_id"] = list(dict.fromkeys([*allowed.get("order_id", []), *ctx.order_options]))
    values = tuple((name, tuple(allowed[name])) for name in SLOTS if name in allowed)
    schema = parse_schema(tuple(choices), shown, values)
    out = ModelParse(reason=reason, status="error", choices=choices)
    try:
        messages = render(prompt, message, ctx, choices, describe)
        reply = await asyncio.wait_for(
            llm.complete_json(messages, schema, max_tokens=prompt.max_tokens or 60), timeout_s
        )
    except TimeoutError:
        out.status = "timeout"
    except LLMUnavailable as e:
        out.status, out.problems = "unavailable", [str(e)]
    except LLMError as e:
        out.status, out.problems = "error", [str(e)]
    else:
        out.raw = reply.model_dump()
        intent, product_ids, slots, problems = validate(out.raw, message, ctx, choices, vocab)
        out.problems = problems
        if intent is None:
            out.status = "rejected"
        else:
            out.status, out.intent, out.product_ids, out.slots = "accepted", intent, product_ids, slots
    out.ms = (time.perf_counter() - started) * 1000
    return out


class MessageParser:
    """Asks the model for its parse when the classifier's reading needs it. Mode "on": an accepted parse decides;
    "shadow": the parse is only recorded (to measure the model against the classifier without acting on it)."""

    def __init__(
        self,
        llm: LLM,
        prompt: Prompt,
        *,
        groups: dict[str, str],
        describe: dict[str, str],
        vocab: CatalogVocabulary,
        below: float,
        timeout_s: float,
        mode: Mode = "on",
    ) -> None:
        self.llm, self.prompt, self.groups, self.describe, self.vocab = llm, prompt, groups, describe, vocab
        self.below, self.timeout_s, self.mode = below, timeout_s, mode

    def group_of(self, intent: str) -> str:
        return self.groups[intent]

    def why(self, route: RoutedIntent, message: str, *, has_context: bool) -> Reason | None:
        return why_parse(route, message, has_context=has_context, below=self.below)

    async def read(self, route: RoutedIntent, message: str, ctx: ParseContext, reason: Reason) -> ModelParse:
        context = [*(["product_question", "compare_products"] if ctx.shown else []), "search_products", "out_of_scope"]
        choices = candidates(route, known=list(self.groups), context=context)
        return await parse_message(
            self.llm,
            self.prompt,
            message,
            ctx,
            reason=reason,
            choices=choices,
            describe=self.describe,
            vocab=self.vocab,
            timeout_s=self.timeout_s,
        )
