"""What a turn does: understand the message (intent, slots, references), call tools, plan the answer.

Correctness never rests on the small model's judgement: the trained classifier routes, deterministic
extraction drives the tools (LLM slots are validated against the text and the catalog and only
add to them), and the facts of the answer come from the catalog and the tools.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from assistant import answers
from assistant.dialogue.references import Resolution, resolve_references, variant_search
from assistant.grounding import CatalogTitles, Facts, amounts_in
from assistant.intents.router import RoutedIntent
from assistant.intents.slots import CatalogVocabulary, SlotResult, Slots, extract_deterministic, extract_slots
from assistant.llm.base import LLM
from assistant.prompts import Prompt
from assistant.schemas import ActionEvent, HandoffEvent, IntentEvent, ProductCard, ProductsEvent
from assistant.sessions.models import Session
from assistant.tools.base import Toolbox, ToolContext, ToolResult
from retrieval.product import Product
from retrieval.search import ScoreBreakdown

log = logging.getLogger(__name__)

# Intents answered from the store's policies (everything customer-service that is not an order action).
ORDER_STATUS = {"track_order", "track_refund", "change_order"}
HANDOFF = {"contact_human_agent", "complaint"}
SEARCH = {"search_products", "recommendation"}
# Reference kinds that point at shown products even when the classifier heard a new search.
POINTING = {"ordinal", "comparative", "pronoun", "plural", "other"}


class Router(Protocol):
    def route(self, text: str) -> RoutedIntent: ...


@dataclass
class TurnInput:
    session: Session
    turn_id: str
    message: str
    role: Literal["shopper", "agent"] = "shopper"
    routing: asyncio.Future[RoutedIntent] | None = None  # `Planner.route_soon(message)`, started earlier

    def ctx(self, confirmed: bool = False) -> ToolContext:
        return ToolContext(
            shopper_id=self.session.shopper_id,
            session_id=self.session.session_id,
            turn_id=self.turn_id,
            confirmed=confirmed,
            role=self.role,
        )


@dataclass
class AnswerPlan:
    """How the answer is written: a prompt over facts (grounded), or a fixed text; `fixed` is also the fallback."""

    prompt: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    facts: Facts | None = None
    fixed: str | None = None
    products: list[Product] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)


@dataclass
class Plan:
    intent: IntentEvent
    slots: Slots
    resolution: Resolution
    answer: AnswerPlan = field(default_factory=AnswerPlan)
    trace: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    llm_slots: asyncio.Task[SlotResult] | None = None


def _order_context(session: Session) -> str | None:
    """The one order the previous turn was about, if it was about exactly one."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return None
    orders = {c.split(":", 1)[1] for c in last.citations if c.startswith("order:")}
    return orders.pop() if len(orders) == 1 else None


def pending_action(session: Session) -> dict[str, Any] | None:
    """The state change the previous turn asked the shopper to confirm, if any."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return None
    for call in reversed(last.tool_trace):
        if call.get("needs_confirmation"):
            return call
    return None


class Planner:
    """Routes a message and runs the tools its intent needs."""

    def __init__(
        self,
        *,
        router: Router,
        vocab: CatalogVocabulary,
        toolbox: Toolbox,
        get_products: Callable[[Sequence[str]], dict[str, Product]],
        catalog_titles: CatalogTitles,
        min_relevance: float,
        search_results: int,
        llm: LLM | None = None,
        slot_prompt: Prompt | None = None,
        llm_slot_timeout_s: float = 10.0,
        llm_slot_wait_s: float = 1.0,
        probe: Callable[[str], float] | None = None,
        rescue_relevance: float = 0.55,
        color_field: bool = True,
    ) -> None:
        self.color_field = color_field  # False: this catalog names colours in titles only
        self.probe = probe
        self.rescue_relevance = rescue_relevance
        self.llm_slot_wait_s = llm_slot_wait_s
        self.llm = llm
        self.slot_prompt = slot_prompt
        self.llm_slot_timeout_s = llm_slot_timeout_s
        self.router = router
        self.vocab = vocab
        self.toolbox = toolbox
        self.get_products = get_products
        self.catalog_titles = catalog_titles
        self.min_relevance = min_relevance
        self.search_results = search_results

    # --- understanding

    def route_soon(self, message: str) -> asyncio.Future[RoutedIntent]:
        """Start routing a message now, in a worker thread (ONNX releases the GIL: other turns' tokens keep
        flowing), so that it runs while the turn's session is read and its turn stored; `understand` awaits it.
        An error surfaces there; a future nobody awaits (its turn never started) just ends."""
        routing = asyncio.ensure_future(asyncio.to_thread(self.router.route, message))
        routing.add_done_callback(_retrieve)
        return routing

    async def understand(self, inp: TurnInput) -> Plan:
        route = await (inp.routing if inp.routing is not None else self.route_soon(inp.message))
        slots = extract_deterministic(inp.message, self.vocab)
        last, earlier = self._shown(inp.session)
        focus = self._focus(inp.session)
        resolution = resolve_references(inp.message, last, focus, earlier=earlier, vocab=self.vocab)
        refs = list(resolution.product_ids)
        intent, group = route.intent, route.group
        if group == "OUT_OF_SCOPE" and self.probe is not None:
            # The classifier knows shopping only from examples; the catalog knows what the store sells.
            best = await asyncio.to_thread(self.probe, inp.message)
            if best >= self.rescue_relevance:
                intent, group = "search_products", "SHOPPING"
        if refs and (group in {"OUT_OF_SCOPE", "CONVERSATION"} or (intent in SEARCH and resolution.kind in POINTING)):
            intent, group = "product_question", "SHOPPING"
        if intent == "compare_products" and len(refs) == 1:
            intent = "product_question"  # "which one is the cheapest?" picked one product
        if resolution.constraint is not None and refs and intent in SEARCH | {"product_question"}:
            intent, group = "variant_question", "SHOPPING"
        context = _order_context(inp.session)
        if context and not slots.order_id:
            slots = slots.model_copy(update={"order_id": context})  # "cancel it" after an order turn
        low = inp.message.lower()
        # Only a short or pointing message ("cancel it", "return that one") acts on the order just shown.
        about_it = len(low.split()) <= 4 or re.search(r"\b(?:it|this|that|this order|that order)\b", low)
        if context and about_it and re.search(r"\bcancel\b", low):
            intent, group = "cancel_order", "ORDER"
        elif context and about_it and re.search(r"\breturn\b", low):
            intent, group = "get_refund", "REFUNDS"
        pending = pending_action(inp.session)
        if pending and (answers.is_affirmative(inp.message) or answers.is_negative(inp.message)):
            intent, group = "confirm_action", "ACTION"
        filled = slots.model_dump(exclude_none=True)
        event = IntentEvent(
            intent=intent,
            group=group,
            confidence=round(float(route.confidence), 4),
            slots=filled,
            slot_sources=dict.fromkeys(filled, "rules"),
            references=refs,
        )
        plan = Plan(intent=event, slots=slots, resolution=resolution, pending=pending)
        if self.llm is not None and self.slot_prompt is not None and intent not in {"confirm_action", "greeting"}:
            # The model's slots never hold up the cards: they run beside the turn and are merged at its end.
            plan.llm_slots = asyncio.create_task(
                extract_slots(
                    self.llm, inp.message, self.vocab, prompt=self.slot_prompt, timeout_s=self.llm_slot_timeout_s
                )
            )
        return plan

    async def finish_slots(self, plan: Plan) -> dict[str, Any]:
        """The turn's final slots: rules merged with the model's validated ones (when they ran)."""
        slots = plan.slots.model_dump(exclude_none=True)
        task = plan.llm_slots
        if task is None:
            return slots
        try:
            # The answer is out; the model's slots get a short grace, not a say in the turn's latency.
            result = await asyncio.wait_for(task, timeout=self.llm_slot_wait_s)
        except TimeoutError:
            plan.trace.append({"name": "llm_slots", "ok": False, "error": "not ready when the answer was"})
            return slots
        except Exception as e:  # the model's slots are an extra; the rules stand on their own
            plan.trace.append({"name": "llm_slots", "ok": False, "error": f"{type(e).__name__}: {e}"})
            return slots
        plan.trace.append({"name": "llm_slots", "ok": True, "data": result.model_dump(mode="json")})
        return result.slots.model_dump(exclude_none=True)

    def cancel(self, plan: Plan) -> None:
        if plan.llm_slots is not None and not plan.llm_slots.done():
            plan.llm_slots.cancel()

    def _shown(self, session: Session) -> tuple[list[Product], list[Product]]:
        """(the most recent result list — a turn that showed several cards —, every other product shown)."""
        finished = [t for t in reversed(session.turns) if t.finished and t.product_ids]
        last_ids = next((t.product_ids for t in finished if len(t.product_ids) > 1), None)
        if last_ids is None:
            last_ids = finished[0].product_ids if finished else []
        all_ids = session.products_shown()
        found = self.get_products(all_ids)
        last = [found[i] for i in last_ids if i in found]
        earlier = [found[i] for i in all_ids if i in found and i not in set(last_ids)]
        return last, earlier

    @staticmethod
    def _focus(session: Session) -> str | None:
        """The product last discussed on its own (the latest turn showed exactly that card)."""
        latest = next((t for t in reversed(session.turns) if t.finished and t.product_ids), None)
        return latest.product_ids[0] if latest is not None and len(latest.product_ids) == 1 else None

    # --- acting

    async def act(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        """Call the tools for the intent; yield products/action/handoff events; fill `plan.answer`."""
        intent = plan.intent.intent
        group = plan.intent.group
        if intent == "confirm_action":
            handler = self._confirm
        elif intent in SEARCH:
            handler = self._search
        elif intent == "variant_question":
            handler = self._variant
        elif intent in {"cart_add", "cart_remove"}:
            handler = self._cart
        elif intent == "product_question":
            handler = self._product_question
        elif intent == "compare_products":
            handler = self._compare
        elif intent in ORDER_STATUS:
            handler = self._order_status
        elif intent == "cancel_order":
            handler = self._cancel
        elif intent == "get_refund":
            handler = self._return
        elif intent in HANDOFF:
            handler = self._handoff
        elif group == "CONVERSATION":
            handler = self._smalltalk
        elif group == "OUT_OF_SCOPE":
            handler = self._out_of_scope
        else:
            handler = self._policy
        async for event in handler(inp, plan):
            yield event

    async def _call(
        self, plan: Plan, inp: TurnInput, name: str, args: dict[str, Any], confirmed: bool = False
    ) -> ToolResult:
        result = await self.toolbox.call(name, args, inp.ctx(confirmed))
        plan.trace.append(result.as_trace())
        return result

    def _cards(self, plan: Plan, products: list[Product], results: dict[str, Any] | None = None) -> ProductsEvent:
        plan.answer.products = products
        plan.answer.citations = [f"product:{p.id}" for p in products]
        cards = []
        for p in products:
            card = ProductCard.of(p)
            extra = (results or {}).get(p.id)
            if extra and extra.get("breakdown"):
                card.score, card.breakdown = extra.get("score"), ScoreBreakdown.model_validate(extra["breakdown"])
            cards.append(card)
        return ProductsEvent(products=cards)

    def _results(self, result: ToolResult) -> tuple[list[dict[str, Any]], list[Product]]:
        """A search tool's cards, and their catalog records in the same order."""
        items: list[dict[str, Any]] = result.data.get("products", []) if result.ok else []
        found = self.get_products([c["id"] for c in items])
        return items, [found[c["id"]] for c in items if c["id"] in found]

    def _facts(self, products: list[Product], amounts: set[float] | None = None) -> Facts:
        return Facts(products={p.id: p for p in products}, amounts=amounts or set(), catalog_titles=self.catalog_titles)

    async def _search(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        s = plan.slots
        args: dict[str, Any] = {"query": inp.message, "limit": self.search_results}
        for key in ("category", "brand", "color", "size", "price_min", "price_max"):
            value = getattr(s, key, None)
            if value is not None:
                args[key] = value
        colour = args.pop("color", None) if not self.color_field else None  # no field to filter on
        result = await self._call(plan, inp, "search_products", args)
        items, products = self._results(result)
        if colour:
            # The query's words already favour titles naming the colour; put those first.
            products.sort(key=lambda p: colour.lower() not in p.title.lower())
        if products and result.data.get("best_match", 0.0) < self.min_relevance:
            plan.trace.append({"name": "relevance_check", "ok": True, "data": {"verdict": "not carried"}})
            products = []
        yield self._cards(plan, products, {c["id"]: c for c in items})
        budget = {v for v in (s.price_min, s.price_max) if v is not None}
        if not products:
            plan.answer.fixed = answers.not_carried(inp.message if len(inp.message) < 60 else "that")
            plan.answer.citations = []
            return
        plan.answer.prompt = "answer"
        plan.answer.facts = self._facts(products, budget)
        plan.answer.variables = {"facts": answers.products_facts(products), "message": inp.message}
        plan.answer.fixed = answers.list_answer(products, inp.message)

    async def _product_question(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        refs = plan.resolution.product_ids
        if not refs and plan.resolution.kind != "none":
            # "the second one" with nothing (or too little) shown: ask, don't search for the words.
            plan.answer.fixed = answers.unresolved(plan.resolution, shown=len(self._shown(inp.session)[0]))
            return
        if not refs:
            async for event in self._search(inp, plan):
                yield event
            return
        results = [await self._call(plan, inp, "get_product", {"product_id": pid}) for pid in refs[:4]]
        ok = [pid for pid, r in zip(refs[:4], results, strict=True) if r.ok]
        found = self.get_products(ok)
        products = [found[pid] for pid in ok if pid in found]
        yield self._cards(plan, products)
        if not products:
            plan.answer.fixed = answers.NO_REFERENCE
            return
        plan.answer.facts = self._facts(products)
        plan.answer.fixed = answers.product_answer(products[0])
        if plan.resolution.kind == "comparative" and len(products) == 1:
            return  # "the cheaper one" is answered by the catalog fact itself
        if len(products) == 1:
            plan.answer.prompt = "product"
            plan.answer.variables = {"facts": answers.product_details(products[0]), "message": inp.message}
        else:
            plan.answer.prompt = "answer"
            plan.answer.variables = {"facts": answers.products_facts(products), "message": inp.message}

    async def _variant(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        """ "does it come in black": look for the same product in the asked colour (or check its size)."""
        constraint = plan.resolution.constraint
        found = self.get_products(plan.resolution.product_ids[:1])
        if constraint is None or not found:
            async for event in self._product_question(inp, plan):
                yield event
            return
        product = next(iter(found.values()))
        variant = variant_search(product, constraint)
        args: dict[str, Any] = {"query": variant.query, "limit": self.search_results}
        if constraint.color and product.color:
            args["color"] = constraint.color
        elif constraint.color:
            # This catalog keeps colours in titles, not in a field: search for it and check the title.
            args["query"] = f"{constraint.color} {variant.query}"
        if variant.size:
            args["size"] = variant.size
        if product.category:
            args["category"] = product.category
        result = await self._call(plan, inp, "search_products", args)
        items, products = self._results(result)
        if constraint.color and not product.color:
            colour = constraint.color.lower()
            products = [p for p in products if colour in p.title.lower() or colour == (p.color or "").lower()]
        wanted = " ".join(filter(None, [constraint.color, f"size {variant.size}" if variant.size else None]))
        if not products:
            yield self._cards(plan, [product])
            plan.answer.fixed = f"Sorry, I couldn't find the {product.title} in {wanted}."
            return
        yield self._cards(plan, products, {c["id"]: c for c in items})
        plan.answer.prompt = "answer"
        plan.answer.facts = self._facts(products)
        plan.answer.variables = {"facts": answers.products_facts(products), "message": inp.message}
        plan.answer.fixed = f"Here is what we have in {wanted}: " + answers.list_answer(products, inp.message)

    async def _cart(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        """ "add it to my cart" / "remove the second one": the referenced product, or the one in focus."""
        refs = plan.resolution.product_ids or ([f] if (f := self._focus(inp.session)) else [])
        adding = plan.intent.intent == "cart_add"
        tool = "add_to_cart" if adding else "remove_from_cart"
        if tool not in self.toolbox:
            plan.answer.fixed = "The cart isn't available right now."
            return
        if not refs:
            plan.answer.fixed = f"Which product should I {'add to' if adding else 'remove from'} your cart?"
            return
        args: dict[str, Any] = {"product_id": refs[0]}
        if adding and plan.slots.quantity:
            args["quantity"] = plan.slots.quantity
        result = await self._call(plan, inp, tool, args)
        plan.answer.citations = result.citations
        if not result.ok:
            plan.answer.fixed = result.error or "That didn't work."
            yield ActionEvent(tool=tool, status="refused", description=plan.answer.fixed, result=result.data)
            return
        found = self.get_products(refs[:1])
        if found:
            yield self._cards(plan, list(found.values()))
            plan.answer.citations = result.citations
        plan.answer.fixed = answers.cart_message(result.data)
        yield ActionEvent(tool=tool, status="done", description=plan.answer.fixed, result=result.data)

    async def _compare(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        refs = plan.resolution.product_ids
        ids = refs if len(refs) >= 2 else [p.id for p in self._shown(inp.session)[0][:2]]
        if len(ids) < 2:
            plan.answer.fixed = "Which products should I compare? Search first, then ask me to compare them."
            return
        result = await self._call(plan, inp, "compare_products", {"product_ids": ids[:4]})
        found = self.get_products(ids[:4]) if result.ok else {}
        products = [found[i] for i in ids[:4] if i in found]
        yield self._cards(plan, products)
        plan.answer.prompt = "answer"
        plan.answer.facts = self._facts(products)
        plan.answer.variables = {"facts": answers.products_facts(products), "message": inp.message}
        plan.answer.fixed = answers.compare_answer(products)

    async def _order_status(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        args = {"order_id": plan.slots.order_id} if plan.slots.order_id else {}
        result = await self._call(plan, inp, "order_status", args)
        if not result.ok:
            plan.answer.fixed = result.error or "I couldn't find that order."
            return
        orders = result.data.get("orders")
        if orders is not None and len(orders) != 1:
            plan.answer.fixed = answers.orders_list_answer(orders)
        else:
            data = orders[0] if orders else result.data
            plan.answer.fixed = answers.order_answer(data)
        plan.answer.citations = result.citations
        return
        yield  # an async generator without events

    async def _state_change(
        self, inp: TurnInput, plan: Plan, tool: str, args: dict[str, Any], confirmed: bool = False
    ) -> AsyncIterator[BaseModel]:
        """Run a state-changing tool: it asks for confirmation first unless the shopper already confirmed."""
        result = await self._call(plan, inp, tool, args, confirmed=confirmed)
        plan.answer.citations = result.citations
        if not result.ok:
            plan.answer.fixed = result.error or "That can't be done."
            yield ActionEvent(tool=tool, status="refused", description=plan.answer.fixed, result=result.data)
            return
        if result.needs_confirmation:
            what = ((result.confirmation or {}).get("summary") or f"run {tool}").rstrip(".")
            plan.answer.fixed = f"Please confirm: {what}. Reply 'yes' to go ahead or 'no' to keep things as they are."
            yield ActionEvent(
                tool=tool, status="needs_confirmation", description=what, result=result.confirmation or {}
            )
            return
        plan.answer.fixed = answers.action_message(tool, result.data)
        yield ActionEvent(tool=tool, status="done", description=plan.answer.fixed, result=result.data)

    async def _cancel(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        if not plan.slots.order_id:
            async for event in self._ask_order(inp, plan, "cancel"):
                yield event
            return
        async for event in self._state_change(inp, plan, "cancel_order", {"order_id": plan.slots.order_id}):
            yield event

    async def _return(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        if not plan.slots.order_id:
            async for event in self._ask_order(inp, plan, "return"):
                yield event
            return
        args = {"order_id": plan.slots.order_id, "reason": inp.message[:200]}
        async for event in self._state_change(inp, plan, "start_return", args):
            yield event

    async def _ask_order(self, inp: TurnInput, plan: Plan, verb: str) -> AsyncIterator[BaseModel]:
        result = await self._call(plan, inp, "order_status", {})
        orders = result.data.get("orders", []) if result.ok else []
        listed = answers.orders_list_answer(orders)
        plan.answer.fixed = f"Which order would you like to {verb}? {listed}" if orders else listed
        return
        yield

    async def _confirm(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        pending = plan.pending or {}
        tool, args = pending.get("name", ""), dict(pending.get("arguments", {}))
        if answers.is_negative(inp.message):
            plan.answer.fixed = "Okay, I haven't changed anything."
            yield ActionEvent(tool=tool, status="refused", description="the shopper declined")
            return
        async for event in self._state_change(inp, plan, tool, args, confirmed=True):
            yield event

    async def _handoff(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        result = await self._call(plan, inp, "handoff_to_human", {"reason": inp.message[:500]})
        if not result.ok:
            plan.answer.fixed = result.error or "I couldn't reach a human agent right now."
            return
        ticket = result.data.get("ticket_id", "")
        plan.answer.fixed = f"I've asked a human agent to take over (ticket {ticket}). They will reply here shortly."
        yield HandoffEvent(ticket_id=ticket, reason=inp.message[:500])

    async def _policy(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        result = await self._call(plan, inp, "policy_answer", {"question": inp.message})
        passages = result.data.get("passages", []) if result.ok else []
        if not passages:
            plan.answer.fixed = "I'm not sure about that one — I can connect you with a human agent if you like."
            return
        plan.answer.citations = result.citations
        text = "\n".join(f"- {p.get('text', '')[:400]}" for p in passages[:3])
        plan.answer.prompt = "policy"
        plan.answer.facts = Facts(catalog_titles=self.catalog_titles, amounts=set(amounts_in(text)), names={text})
        plan.answer.variables = {"passages": text, "message": inp.message}
        plan.answer.fixed = passages[0].get("text", "")
        return
        yield

    async def _smalltalk(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        plan.answer.prompt = "smalltalk"
        plan.answer.facts = Facts(catalog_titles=self.catalog_titles)
        plan.answer.variables = {"message": inp.message}
        plan.answer.fixed = "Hello! I can help you find products or with an order."
        return
        yield

    async def _out_of_scope(self, inp: TurnInput, plan: Plan) -> AsyncIterator[BaseModel]:
        plan.answer.fixed = answers.OUT_OF_SCOPE
        return
        yield


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's error as seen (whoever awaits it gets it; nobody else should be warned)."""
    if not future.cancelled():
        future.exception()
