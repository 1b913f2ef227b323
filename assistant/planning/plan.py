"""What planning reads and returns: the turn's input, what the message was understood to mean, the context a
handler works in, and the plan a handler returns (events to show, and how the answer is written)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from assistant.dialogue import state
from assistant.dialogue.references import Resolution
from assistant.grounding import CatalogTitles, Facts
from assistant.intents.router import RoutedIntent
from assistant.intents.slots import CatalogVocabulary, SlotResult, Slots
from assistant.schemas import ActionEvent, HandoffEvent, IntentEvent, ProductCard, ProductsEvent
from assistant.sessions.models import Session
from assistant.tools.base import Toolbox, ToolContext, ToolResult
from assistant.trace import Trace
from retrieval.personalization import Profile
from retrieval.product import Product
from retrieval.search import ScoreBreakdown

PlanEvent = ProductsEvent | ActionEvent | HandoffEvent


@dataclass(frozen=True)
class TurnInput:
    """One shopper message in its session; `routing` is the message's routing, started before the turn was stored."""

    session: Session
    turn_id: str
    message: str
    role: Literal["shopper", "agent"] = "shopper"
    routing: asyncio.Future[RoutedIntent] | None = None

    def ctx(self, confirmed: bool = False) -> ToolContext:
        return ToolContext(
            shopper_id=self.session.shopper_id,
            session_id=self.session.session_id,
            turn_id=self.turn_id,
            confirmed=confirmed,
            role=self.role,
        )


@dataclass(frozen=True)
class Understanding:
    """The message understood: intent and slots (the `intent` event), the products it refers to, a change it may
    confirm, and the model's slot extraction running beside the turn (merged at its end)."""

    event: IntentEvent
    slots: Slots
    resolution: Resolution
    pending: dict[str, Any] | None = None
    llm_slots: asyncio.Task[SlotResult] | None = None
    ask: bool = False  # the message is too unclear to act on: ask what the shopper means
    refines: dict[str, Any] | None = None  # the last search's arguments, when the message only changes a constraint

    def cancel(self) -> None:
        if self.llm_slots is not None and not self.llm_slots.done():
            self.llm_slots.cancel()


@dataclass(frozen=True)
class Reply:
    """How the answer is written: a prompt over facts (the model phrases, the grounding check passes or repairs),
    or a fixed text built from records; `fixed` is also what is said when the model's text is unusable. A `lead`
    (fact sentences from the records, `assistant/leads.py`) goes out first; the model then adds at most one
    sentence, and only one that passes the checks and does not repeat the lead."""

    prompt: str | None = None
    lead: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    facts: Facts | None = None
    fixed: str | None = None
    products: list[Product] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What a handler decided: the events to show (cards, actions, handoff), in order, and the reply."""

    events: list[PlanEvent]
    reply: Reply


@dataclass
class Deps:
    """What handlers may use: the tools, the catalog, and the settings that shape a search."""

    toolbox: Toolbox
    get_products: Callable[[Sequence[str]], dict[str, Product]]
    catalog_titles: CatalogTitles
    vocab: CatalogVocabulary
    search_results: int
    min_relevance: float
    color_field: bool = True  # False: this catalog names colours in titles only
    nearest_categories: Callable[[str], list[str]] | None = None  # categories close to a need not carried
    shopper_profile: Callable[[str], Profile | None] | None = None  # behaviour profiles (None: not kept)


@dataclass
class TurnContext:
    """A handler's view of the turn: the message understood, the tools (each call recorded in the trace)."""

    inp: TurnInput
    understood: Understanding
    trace: Trace
    deps: Deps

    @property
    def message(self) -> str:
        return self.inp.message

    @property
    def intent(self) -> str:
        return self.understood.event.intent

    @property
    def slots(self) -> Slots:
        return self.understood.slots

    @property
    def resolution(self) -> Resolution:
        return self.understood.resolution

    async def call(self, name: str, args: dict[str, Any], confirmed: bool = False) -> ToolResult:
        """Run a tool as this turn's shopper (or agent); the call goes in the trace."""
        result = await self.deps.toolbox.call(name, args, self.inp.ctx(confirmed))
        self.trace.record(result)
        return result

    @cached_property
    def shown(self) -> tuple[list[Product], list[Product]]:
        """(the latest result list, every other product shown) in this session."""
        return state.shown_products(self.inp.session, self.deps.get_products)

    def focus(self) -> str | None:
        return state.focus(self.inp.session)

    def products(self, ids: Sequence[str]) -> list[Product]:
        """The catalog records of `ids` that exist, in that order."""
        found = self.deps.get_products(ids)
        return [found[i] for i in ids if i in found]

    def search_results(self, result: ToolResult) -> tuple[dict[str, dict[str, Any]], list[Product]]:
        """A search tool's result items by id, and their catalog records in rank order."""
        items: list[dict[str, Any]] = result.data.get("products", []) if result.ok else []
        return {c["id"]: c for c in items}, self.products([c["id"] for c in items])

    def facts(self, products: Sequence[Product], amounts: set[float] | None = None) -> Facts:
        return Facts(
            products={p.id: p for p in products}, amounts=amounts or set(), catalog_titles=self.deps.catalog_titles
        )


Handler = Callable[[TurnContext], Awaitable[Plan]]


def cards(products: Sequence[Product], results: dict[str, dict[str, Any]] | None = None) -> ProductsEvent:
    """The products event: catalog cards, with the search's score breakdown where the search ranked them."""
    out = []
    for p in products:
        card = ProductCard.of(p)
        extra = (results or {}).get(p.id)
        if extra and extra.get("breakdown"):
            card.score, card.breakdown = extra.get("score"), ScoreBreakdown.model_validate(extra["breakdown"])
        out.append(card)
    return ProductsEvent(products=out)


def product_refs(products: Sequence[Product]) -> list[str]:
    return [f"product:{p.id}" for p in products]


def showing(
    products: Sequence[Product], results: dict[str, dict[str, Any]] | None = None, **reply: Any
) -> Plan:
    """A plan that shows `products` as cards and cites them in a reply built from `reply`'s fields."""
    listed = list(products)
    return Plan([cards(listed, results)], Reply(products=listed, citations=product_refs(listed), **reply))


def saying(text: str, *events: PlanEvent, citations: Sequence[str] = ()) -> Plan:
    """A plan whose reply is a fixed text."""
    return Plan(list(events), Reply(fixed=text, citations=list(citations)))
