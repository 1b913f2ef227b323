"""Planning a turn: understand the message (intent, slots, references), then let its handler call the tools and
decide what to show and how to answer.

Correctness never rests on the small model's judgement: the trained classifier routes, deterministic extraction
drives the tools (the model's slots are validated against the text and the catalog and only add to them), and
the facts of the answer come from the catalog and the tools.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from assistant import leads
from assistant.dialogue import state
from assistant.dialogue.references import Resolution, resolve_references
from assistant.dialogue.replies import order_reply
from assistant.intents.model_parse import WRITES, MessageParser, ParseContext
from assistant.intents.need import only_refines
from assistant.intents.router import RoutedIntent
from assistant.intents.slot_rules import ORDER_ID
from assistant.intents.slots import extract_deterministic, extract_slots
from assistant.llm.base import LLM
from assistant.planning.handlers import handler_for
from assistant.planning.handlers.conversation import clarify
from assistant.planning.plan import Deps, Plan, TurnContext, TurnInput, Understanding
from assistant.planning.rewrites import Signals, rewrite
from assistant.prompts import Prompt
from assistant.schemas import IntentEvent
from assistant.trace import Trace

NO_MODEL_SLOTS = frozenset({"confirm_action", "greeting"})  # nothing for the model to add



class Router(Protocol):
    def route(self, text: str) -> RoutedIntent: ...


class Planner:
    """Routes a message, understands it in its session, and plans the turn with the intent's handler."""

    def __init__(
        self,
        *,
        router: Router,
        deps: Deps,
        probe: Callable[[str], float] | None = None,
        rescue_relevance: float = 0.55,
        llm: LLM | None = None,
        slot_prompt: Prompt | None = None,
        llm_slot_timeout_s: float = 10.0,
        llm_slot_wait_s: float = 1.0,
        parser: MessageParser | None = None,
    ) -> None:
        self.router = router
        self.deps = deps
        self.probe = probe  # how well the catalog matches a message (best similarity)
        self.rescue_relevance = rescue_relevance
        self.llm = llm
        self.slot_prompt = slot_prompt
        self.llm_slot_timeout_s = llm_slot_timeout_s
        self.llm_slot_wait_s = llm_slot_wait_s
        self.parser = parser

    def route_soon(self, message: str) -> asyncio.Future[RoutedIntent]:
        """Start routing a message now, in a worker thread (ONNX releases the GIL: other turns' tokens keep
        flowing), so that it runs while the turn's session is read and its turn stored; `understand` awaits it.
        An error surfaces there; a future nobody awaits (its turn never started) just ends."""
        routing = asyncio.ensure_future(asyncio.to_thread(_timed, self.router.route, routing_text(message)))
        routing.add_done_callback(_retrieve)
        return routing

    async def understand(self, inp: TurnInput, trace: Trace) -> Understanding:
        """Intent (the classifier's, rewritten by the conversation's rules), slots and references."""
        route = await (inp.routing if inp.routing is not None else self.route_soon(inp.message))
        if route.ms is not None:
            trace.note("routing", data={"ms": route.ms, "source": route.source})
        if len(route.scores) > 1:  # the classifier's top scores: the runner-up the console's trace shows
            trace.note("router_scores", data=[score.model_dump() for score in route.scores[:3]])
        session, vocab = inp.session, self.deps.vocab
        slots = extract_deterministic(inp.message, vocab)
        last, earlier = state.shown_products(session, self.deps.get_products)
        resolution = resolve_references(inp.message, last, state.focus(session), earlier=earlier, vocab=vocab)
        if not resolution.product_ids and asks_about_a_product(inp.message):
            named = [ids for _, ids in self.deps.catalog_titles.named_in(inp.message)]
            if len(named) == 1:  # one product (or namesakes) named by its full title
                resolution = Resolution(product_ids=list(named[0][:2]), kind="named", reason="named by its title")
        catalog_match = None
        if route.group == "OUT_OF_SCOPE" and self.probe is not None:
            catalog_match = await asyncio.to_thread(self.probe, inp.message)
        context = state.order_context(session)
        if context and not slots.order_id:
            slots = slots.model_copy(update={"order_id": context})  # "cancel it" after an order turn
        pending = state.pending_action(session)
        answers = None
        question = state.pending_question(session)
        if question is not None and question.get("asks") == "order":
            picked = order_reply(inp.message, question.get("options") or [])
            if picked is not None:
                slots = slots.model_copy(update={"order_id": picked})
                answers = (str(question.get("intent")), str(question.get("group")))
        previous = state.last_search(session)
        constraints = [v for v in (slots.color, slots.brand, slots.size) if v]
        refines = (
            previous is not None
            and bool(constraints or slots.price_min is not None or slots.price_max is not None)
            and only_refines(inp.message, constraints)
        )
        signals = Signals(
            message=inp.message,
            intent=route.intent,
            group=route.group,
            refs=tuple(resolution.product_ids),
            reference_kind=resolution.kind,
            has_constraint=resolution.constraint is not None,
            catalog_match=catalog_match,
            rescue_relevance=self.rescue_relevance,
            order_context=context,
            pending=pending is not None,
            answers=answers,
            names_order=bool(ORDER_ID.search(inp.message)),
            refines=refines,
        )
        intent, group, fired = rewrite(signals)
        source: str = "conversation" if fired else route.source
        if fired:
            trace.note("intent_rules", data={"routed": route.intent, "intent": intent, "rules": fired})
        ask = False
        if self.parser is not None and not fired and answers is None:
            reason = self.parser.why(route, inp.message, has_context=bool(last or question))
            if reason is not None:
                ctx = ParseContext(
                    question=str(question.get("text") or "") if question else None,
                    order_options=list(question.get("options") or []) if question else [],
                    shown=last,
                    resolved=bool(resolution.product_ids),
                )
                parse = await self.parser.read(route, inp.message, ctx, reason)
                trace.note("model_parse", ok=parse.status == "accepted", data=parse.record())
                if self.parser.mode == "on" and parse.intent is not None:
                    if parse.product_ids and not resolution.product_ids:
                        resolution = Resolution(product_ids=parse.product_ids, kind="other", reason="the model's parse")
                    if parse.slots is not None:
                        slots = slots.model_copy(update=parse.slots.model_dump(exclude_none=True) | slots.filled())
                    signals = replace(
                        signals,
                        intent=parse.intent,
                        group=self.parser.group_of(parse.intent),
                        refs=tuple(resolution.product_ids),
                        reference_kind=resolution.kind,
                    )
                    intent, group, fired = rewrite(signals)
                    source = "model"
                elif self.parser.mode == "on" and parse.status == "rejected" and intent in WRITES:
                    ask = True  # neither reading can be trusted, and this one would change something: ask first
        filled = slots.model_dump(exclude_none=True)
        event = IntentEvent(
            intent=intent,
            group=group,
            confidence=round(float(route.confidence), 4),
            slots=filled,
            slot_sources=dict.fromkeys(filled, "rules"),
            references=list(resolution.product_ids),
            source=source,
        )
        llm_slots = None
        if self.llm is not None and self.slot_prompt is not None and intent not in NO_MODEL_SLOTS:
            # The model's slots never hold up the cards: they run beside the turn and are merged at its end.
            llm_slots = asyncio.create_task(
                extract_slots(self.llm, inp.message, vocab, prompt=self.slot_prompt, timeout_s=self.llm_slot_timeout_s)
            )
        refined = previous if "changes a constraint of the last search" in fired else None
        return Understanding(
            event=event,
            slots=slots,
            resolution=resolution,
            pending=pending,
            llm_slots=llm_slots,
            ask=ask,
            refines=refined,
        )

    async def plan(self, inp: TurnInput, understood: Understanding, trace: Trace) -> Plan:
        """The intent's handler calls the tools and returns what to show and how to answer."""
        handler = clarify if understood.ask else handler_for(understood.event.intent, understood.event.group)
        return await handler(TurnContext(inp, understood, trace, self.deps))

    async def finish_slots(self, understood: Understanding, trace: Trace) -> dict[str, Any]:
        """The turn's final slots: rules merged with the model's validated ones (when they ran)."""
        slots = understood.slots.model_dump(exclude_none=True)
        task = understood.llm_slots
        if task is None:
            return slots
        try:
            # The answer is out; the model's slots get a short grace, not a say in the turn's latency.
            result = await asyncio.wait_for(task, timeout=self.llm_slot_wait_s)
        except TimeoutError:
            trace.note("llm_slots", ok=False, error="not ready when the answer was")
            return slots
        except Exception as e:  # the model's slots are an extra; the rules stand on their own
            trace.note("llm_slots", ok=False, error=f"{type(e).__name__}: {e}")
            return slots
        trace.note("llm_slots", data=result.model_dump(mode="json"))
        return result.slots.model_dump(exclude_none=True)


_ABOUT = re.compile(
    r"\b(?:tell me (?:more )?about|more about|details|info(?:rmation)? (?:on|about)|is the|does the)\b", re.I
)


def asks_about_a_product(message: str) -> bool:
    """A question about one product ("how much is the …?", "tell me about the …"), not a search for a kind."""
    return bool(leads.asked(message) or _ABOUT.search(message))


def routing_text(message: str) -> str:
    """The message as the classifier reads it: order numbers left out, since their letters carry no intent (they
    once sent "what's the status of order ORD-8MNLZ8" to compare_products)."""
    return " ".join(ORDER_ID.sub(" ", message).split()) or message


def _timed(route: Callable[[str], RoutedIntent], text: str) -> RoutedIntent:
    """The router's answer with how long it took (the console's trace shows it)."""
    started = time.perf_counter()
    routed = route(text)
    return routed.model_copy(update={"ms": round((time.perf_counter() - started) * 1000, 1)})


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's error as seen (whoever awaits it gets it; nobody else should be warned)."""
    if not future.cancelled():
        future.exception()
