"""Slot extraction: the LLM fills a JSON schema, deterministic rules cross-check it; unstated slots stay empty.

Rules (slot_rules.py's regexes for order ids, sizes, prices and quantities, and catalog-vocabulary matches)
always run.
An LLM value survives only when the shopper's message supports it: its number occurs in the text, or it
names a vocabulary entry mentioned (not negated) in the text. Rules win numeric conflicts; the LLM picks
among several vocabulary mentions. Without a usable LLM reply the rules alone decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.intents.slot_rules import (
    MAX_QUANTITY,
    ORDER_ID,
    PricePhrase,
    extract_prices,
    extract_quantity,
    extract_sizes,
    normalise_order_id,
    normalise_size,
    price_phrase,
    text_numbers,
    words_to_numbers,
)
from assistant.intents.vocabulary import CatalogVocabulary, Mention
from assistant.llm.base import LLM, ChatMessage, LLMError, LLMUnavailable
from retrieval.filters import Filters

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SlotName = Literal["category", "brand", "color", "size", "price_min", "price_max", "order_id", "quantity"]
SlotSource = Literal["llm", "rules", "both"]
SLOT_NAMES: tuple[SlotName, ...] = (
    "category",
    "brand",
    "color",
    "size",
    "price_min",
    "price_max",
    "order_id",
    "quantity",
)


class Slots(BaseModel):
    """What the shopper asked for; every slot is optional and None unless the message states it."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = None
    brand: str | None = None
    color: str | None = None
    size: str | None = None
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    order_id: str | None = None
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)

    @field_validator("order_id", mode="before")
    @classmethod
    def _normalise_order_id(cls, v: object) -> object:
        if v is None:
            return None
        normal = normalise_order_id(v) if isinstance(v, str) else None
        if normal is None:
            raise ValueError(f"order id {v!r} does not look like ORD-XXXXXX")
        return normal

    @model_validator(mode="after")
    def _check_range(self) -> Slots:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(f"price_min {self.price_min} is above price_max {self.price_max}")
        return self

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())

    def filled(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def to_filters(self, vocab: CatalogVocabulary | None = None, *, in_stock: bool | None = None) -> Filters:
        """Search filters; with `vocab`, every catalog spelling of a value (Grey, gray) is accepted."""

        def values(kind: Literal["category", "brand", "color"], value: str | None) -> list[str] | None:
            if value is None:
                return None
            return vocab.variants(kind, value) if vocab else [value]

        return Filters(
            min_price=self.price_min,
            max_price=self.price_max,
            category=values("category", self.category),
            brand=values("brand", self.brand),
            color=values("color", self.color),
            in_stock=in_stock,
        )


class LlmSlots(BaseModel):
    """The JSON schema the LLM fills; loose on purpose so one bad field does not void the reply."""

    category: str | None = Field(default=None, max_length=100, description="product category, as the shopper said")
    brand: str | None = Field(default=None, max_length=100)
    color: str | None = Field(default=None, max_length=60)
    size: str | None = Field(default=None, max_length=20, description="clothing or shoe size: S, M, L, XL, 42")
    price_min: float | None = Field(default=None, description="lowest acceptable price")
    price_max: float | None = Field(default=None, description="highest acceptable price")
    order_id: str | None = Field(default=None, max_length=20, description="order id like ORD-AB12CD")
    quantity: int | None = Field(default=None, description="how many items")

    @field_validator("category", "brand", "color", "size", "order_id", mode="before")
    @classmethod
    def _null_words(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in ("", "null", "none", "n/a", "unknown", "any"):
            return None
        return v


class SlotResult(BaseModel):
    """The merged slots plus where each came from and what the cross-check threw away."""

    slots: Slots
    sources: dict[str, SlotSource] = Field(default_factory=dict)
    llm_status: Literal["ok", "error", "unavailable", "timeout", "skipped"] = "skipped"
    dropped: dict[str, str] = Field(default_factory=dict, description="LLM slot -> why it was rejected")
    ambiguous: dict[str, list[str]] = Field(default_factory=dict, description="slot -> several values mentioned")
    excluded: dict[str, list[str]] = Field(default_factory=dict, description="slot -> values the shopper negated")


# --- deterministic extraction ----------------------------------------------------------------------------


class _Evidence(BaseModel):
    """Everything the rules found: the slots they decide, every mention, and the numbers the text holds."""

    slots: Slots
    mentions: dict[str, list[str]]
    excluded: dict[str, list[str]]
    category_ancestors: dict[str, set[str]]
    price_numbers: set[float]
    quantity_numbers: set[int]


def _analyse(text: str, vocab: CatalogVocabulary) -> _Evidence:
    mentions: dict[str, list[str]] = {}
    order_ids = [f"ORD-{m.group(1).upper()}" for m in ORDER_ID.finditer(text)]
    if order_ids:
        mentions["order_id"] = list(dict.fromkeys(order_ids))
    work = ORDER_ID.sub(lambda m: " " * len(m.group(0)), text)
    vocab_text = work
    work = words_to_numbers(work)
    work, sizes = extract_sizes(work)
    if sizes:
        mentions["size"] = sizes
    price_numbers, quantity_numbers = text_numbers(work)
    work, lo, hi = extract_prices(work)
    quantity = extract_quantity(work)

    excluded: dict[str, list[str]] = {}
    found: list[Mention] = vocab.find(vocab_text)
    for mention in found:
        target = excluded if mention.negated else mentions
        if mention.value not in target.setdefault(mention.kind, []):
            target[mention.kind].append(mention.value)
    ancestors = {c: vocab.ancestors(c) for c in mentions.get("category", [])}

    values: dict[str, Any] = {"price_min": lo, "price_max": hi, "quantity": quantity}
    for name in ("brand", "color", "size", "order_id"):
        if len(mentions.get(name, [])) == 1:
            values[name] = mentions[name][0]
    values["category"] = _deepest(mentions.get("category", []), ancestors)
    return _Evidence(
        slots=Slots(**values),
        mentions=mentions,
        excluded=excluded,
        category_ancestors=ancestors,
        price_numbers=price_numbers,
        quantity_numbers=quantity_numbers,
    )


def _deepest(categories: list[str], ancestors: dict[str, set[str]]) -> str | None:
    """The one category every other mentioned category is an ancestor of ("footwear sneakers" -> sneakers)."""
    for c in categories:
        if all(o == c or o in ancestors[c] for o in categories):
            return c
    return None


def extract_deterministic(text: str, vocab: CatalogVocabulary) -> Slots:
    """Slots from rules alone: order ids, sizes, prices, quantities, and unambiguous vocabulary mentions."""
    return _analyse(text, vocab).slots


def find_budget(text: str) -> PricePhrase | None:
    """How the message states its budget ("about $40": around 40), read the way the rules read price slots."""
    work = ORDER_ID.sub(lambda m: " " * len(m.group(0)), text)
    work, _ = extract_sizes(words_to_numbers(work))
    return price_phrase(work)


# --- the prompt ----------------------------------------------------------------------------------------------


class SlotPrompt(BaseModel):
    """prompts/slots.yaml: metadata plus system and user templates with `{variable}` placeholders."""

    name: str
    description: str
    variables: list[str]
    system: str
    user: str

    def render(self, **values: object) -> tuple[str, str]:
        missing = set(self.variables) - values.keys()
        if missing:
            raise ValueError(f"prompt {self.name!r} is missing variables {sorted(missing)}")
        return self.system.format(**values), self.user.format(**values)


class RendersPrompt(Protocol):
    def render(self, **values: object) -> tuple[str, str]: ...


def load_slot_prompt(path: Path = PROMPTS_DIR / "slots.yaml") -> SlotPrompt:
    """Read the slot prompt; a stand-in until the shared prompt registry is wired in."""
    return SlotPrompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def render_slot_messages(
    prompt: RendersPrompt,
    text: str,
    vocab: CatalogVocabulary,
    history: Sequence[ChatMessage] | None = None,
    *,
    max_history: int = 4,
    max_vocab: int = 30,
) -> list[ChatMessage]:
    turns = [f"{m.role}: {m.content}" for m in (history or [])[-max_history:] if m.role in ("user", "assistant")]
    system, user = prompt.render(
        text=text,
        history="\n".join(turns) or "(none)",
        categories=", ".join(vocab.prompt_values("category", text, max_vocab)) or "(none)",
        brands=", ".join(vocab.prompt_values("brand", text, max_vocab)) or "(none)",
        colors=", ".join(vocab.prompt_values("color", text, max_vocab)) or "(none)",
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


# --- LLM + cross-check ---------------------------------------------------------------------------------------


def _check_llm_value(name: str, value: Any, ev: _Evidence, vocab: CatalogVocabulary) -> tuple[Any, str | None]:
    """(accepted value, None) or (None, why it was dropped)."""
    if name in ("category", "brand", "color"):
        canonical = vocab.canonical(name, value)  # type: ignore[arg-type]
        if canonical is None:
            return None, "not in the catalog vocabulary"
        if canonical in ev.excluded.get(name, []):
            return None, "the shopper excluded it"
        said = ev.mentions.get(name, [])
        # An ancestor of a mentioned category is not supported: "sneakers" does not say "footwear".
        return (canonical, None) if canonical in said else (None, "not stated in the message")
    if name in ("size", "order_id"):
        normal = normalise_size(value) if name == "size" else normalise_order_id(value)
        if normal is None:
            return None, f"not a valid {name.replace('_', ' ')}"
        return (normal, None) if normal in ev.mentions.get(name, []) else (None, "not stated in the message")
    if name == "quantity":
        if not 1 <= value <= MAX_QUANTITY:
            return None, "out of range"
        return (value, None) if value in ev.quantity_numbers else (None, "no such number in the message")
    if value < 0:
        return None, "negative price"
    ok = any(abs(value - n) < 0.005 for n in ev.price_numbers)
    return (float(value), None) if ok else (None, "no such number in the message")


def merge_slots(llm: LlmSlots | None, ev: _Evidence, vocab: CatalogVocabulary) -> SlotResult:
    """Cross-check the LLM's slots against the rules' evidence and merge the two."""
    rules = ev.slots
    accepted: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for name in SLOT_NAMES:
        raw = getattr(llm, name) if llm is not None else None
        if raw is None:
            continue
        value, why = _check_llm_value(name, raw, ev, vocab)
        if why:
            dropped[name] = why
        else:
            accepted[name] = value
    if rules.price_min is not None or rules.price_max is not None:
        # The rules parsed the whole price phrase; a stray LLM bound (an age, a model number) would not fit it.
        for name in ("price_min", "price_max"):
            if name in accepted and accepted[name] != getattr(rules, name):
                dropped[name] = "conflicts with the stated price range"
                del accepted[name]
    elif "price_min" in accepted and "price_max" in accepted and accepted["price_min"] > accepted["price_max"]:
        accepted["price_min"], accepted["price_max"] = accepted["price_max"], accepted["price_min"]

    values: dict[str, Any] = {}
    sources: dict[str, SlotSource] = {}
    for name in SLOT_NAMES:
        mine, theirs = getattr(rules, name), accepted.get(name)
        llm_first = name in ("category", "brand", "color")
        if mine is not None and theirs is not None:
            values[name] = theirs if llm_first else mine
            sources[name] = "both" if mine == theirs else ("llm" if llm_first else "rules")
        elif mine is not None or theirs is not None:
            values[name] = mine if mine is not None else theirs
            sources[name] = "rules" if mine is not None else "llm"
    ambiguous = {k: v for k, v in ev.mentions.items() if len(v) > 1 and values.get(k) is None}
    return SlotResult(
        slots=Slots(**values), sources=sources, dropped=dropped, ambiguous=ambiguous, excluded=ev.excluded
    )


def stated(text: str, vocab: CatalogVocabulary) -> dict[str, list[Any]]:
    """Every value the message states for the slots a parse may fill: catalog categories, colours and brands it
    mentions (not negated), order ids, and the numbers that could be a price."""
    ev = _analyse(text, vocab)
    out: dict[str, list[Any]] = {k: list(ev.mentions.get(k, [])) for k in ("category", "color", "brand", "order_id")}
    out["price_max"] = sorted(ev.price_numbers)
    return {k: v for k, v in out.items() if v}


def cross_check(text: str, llm: LlmSlots, vocab: CatalogVocabulary) -> SlotResult:
    """Slots someone else read from `text` (the model's parse), kept where the message states them; `dropped` says
    which were not and why."""
    return merge_slots(llm, _analyse(text, vocab), vocab)


async def extract_slots(
    llm: LLM | None,
    text: str,
    vocab: CatalogVocabulary,
    *,
    history: Sequence[ChatMessage] | None = None,
    prompt: RendersPrompt | None = None,
    timeout_s: float | None = None,
    max_tokens: int = 160,
) -> SlotResult:
    """LLM slots (JSON-schema constrained) cross-checked by the rules; rules only when the LLM fails or is None."""
    ev = _analyse(text, vocab)
    if llm is None:
        return merge_slots(None, ev, vocab)
    messages = render_slot_messages(prompt or load_slot_prompt(), text, vocab, history)
    status: Literal["ok", "error", "unavailable", "timeout"] = "ok"
    reply: LlmSlots | None = None
    try:
        reply = await asyncio.wait_for(llm.complete_json(messages, LlmSlots, max_tokens=max_tokens), timeout_s)
    except TimeoutError:
        status = "timeout"
    except LLMUnavailable:
        status = "unavailable"
    except LLMError:
        status = "error"
    result = merge_slots(reply, ev, vocab)
    result.llm_status = status
    return result
