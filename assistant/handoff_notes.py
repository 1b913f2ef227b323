"""What the agent who takes a handoff reads: the deterministic facts (what the shopper asked, the products shown with
their prices, the orders mentioned, the reason), and the model's short summary of the conversation.

The model's summary is written in the background, so the shopper's handoff turn never waits for it; it is bounded by
a timeout and cancelled on shutdown. It is for agents only, and it is kept only when the grounding check finds no
price, order id or product name in it that the facts do not back; otherwise the handoff stores none, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from assistant.dialogue.context import summarize_turns
from assistant.grounding import CatalogTitles, Facts, amounts_in, format_price, ground
from assistant.llm.base import LLM, ChatMessage
from assistant.planning.policy_questions import ORDER_ID
from assistant.prompts import PromptRegistry
from assistant.sessions.models import Session, Turn, utc_now
from assistant.stores.session_control import ControlStore
from assistant.takeover import Control, HandoffFacts, ShownProduct
from retrieval.product import Product

log = logging.getLogger(__name__)

PROMPT = "handoff_summary"
ASKED = 4  # the shopper's latest messages the facts keep
PRODUCTS = 6  # the latest products shown the facts keep
TRANSCRIPT_TURNS = 6


def with_turn(session: Session, turn: Turn) -> list[Turn]:
    """The session's turns with `turn` as it is now (the session may hold an older copy of it, or none)."""
    return [*(t for t in session.turns if t.turn_id != turn.turn_id), turn]


def orders_mentioned(session: Session, turn: Turn) -> list[str]:
    """Order ids the conversation mentions: in what was said and in the tools' arguments and results, in order."""
    texts: list[str] = []
    for t in with_turn(session, turn):
        texts += [t.user_message, t.answer, *(m.text for m in t.messages if not m.internal)]
        for call in t.tool_trace:
            texts += [str(call.get("arguments", "")), str(call.get("data", ""))]
    return list(dict.fromkeys(m.upper() for text in texts for m in ORDER_ID.findall(text or "")))


def handoff_facts(
    session: Session, turn: Turn, reason: str, get_products: Callable[[Sequence[str]], dict[str, Product]]
) -> tuple[HandoffFacts, dict[str, Product]]:
    """The facts of a handoff, and the products shown (the grounding check's products)."""
    asked = [t.user_message for t in with_turn(session, turn) if t.kind == "bot" and t.user_message][-ASKED:]
    shown = [pid for pid in session.products_shown() if pid not in turn.product_ids] + list(turn.product_ids)
    found = get_products(shown[-PRODUCTS:])
    products = [
        ShownProduct(product_id=p.id, title=p.title, price=p.price, currency=p.currency)
        for pid in shown[-PRODUCTS:]
        if (p := found.get(pid)) is not None
    ]
    facts = HandoffFacts(reason=reason, asked=asked, products=products, orders=orders_mentioned(session, turn))
    return facts, {p.product_id: found[p.product_id] for p in products}


def facts_text(facts: HandoffFacts) -> str:
    """The facts as lines for the prompt."""
    lines = [f"Reason for the handoff: {facts.reason}"]
    lines += [f"The shopper said: {a}" for a in facts.asked]
    for p in facts.products:
        price = f", {format_price(p.price, p.currency)}" if p.price is not None else ""
        lines.append(f"Product shown: {p.title}{price}")
    if facts.orders:
        lines.append(f"Orders mentioned: {', '.join(facts.orders)}")
    return "\n".join(lines)


def check_summary(
    text: str, facts: HandoffFacts, products: dict[str, Product], transcript: str, catalog_titles: CatalogTitles
) -> tuple[str | None, str | None]:
    """(the summary, None) when the facts back it, else (None, why it was dropped)."""
    text = " ".join(text.split())
    if not text:
        return None, "the model wrote nothing"
    unknown = [o for o in dict.fromkeys(m.upper() for m in ORDER_ID.findall(text)) if o not in facts.orders]
    if unknown:
        return None, f"order id not in the facts: {', '.join(unknown)}"
    said = facts_text(facts) + "\n" + transcript
    grounding = Facts(products=products, amounts=set(amounts_in(said)), names={said}, catalog_titles=catalog_titles)
    grounded, withheld = ground(text, grounding)
    if withheld:
        return None, "; ".join(withheld)
    if " ".join(grounded.split()) != text:
        return None, "the grounding check changed it"
    return text, None


class HandoffNotes:
    """Writes the model's summary of handed-off sessions in the background and stores it on their handoff."""

    def __init__(
        self,
        *,
        llm: LLM,
        prompts: PromptRegistry,
        controls: ControlStore,
        get_products: Callable[[Sequence[str]], dict[str, Product]],
        catalog_titles: CatalogTitles,
        timeout_s: float = 20.0,
    ) -> None:
        self.llm = llm
        self.prompt = prompts.get(PROMPT)
        self.controls = controls
        self.get_products = get_products
        self.catalog_titles = catalog_titles
        self.timeout_s = timeout_s
        self._background: set[asyncio.Task[None]] = set()

    async def facts(self, session: Session, turn: Turn, reason: str) -> tuple[HandoffFacts, dict[str, Product]]:
        return await asyncio.to_thread(handoff_facts, session, turn, reason, self.get_products)

    def start(
        self, session: Session, turn: Turn, ticket_id: str | None, facts: HandoffFacts, products: dict[str, Product]
    ) -> asyncio.Task[None]:
        """Write the model's summary in the background; the caller does not wait for it."""
        done = [t for t in session.completed_turns() if t.turn_id != turn.turn_id][-TRANSCRIPT_TURNS:]
        transcript = summarize_turns([*done, turn], max_message_chars=160)
        task = asyncio.create_task(self.write(session, ticket_id, facts, products, transcript))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def write(
        self,
        session: Session,
        ticket_id: str | None,
        facts: HandoffFacts,
        products: dict[str, Product],
        transcript: str,
    ) -> None:
        """Ask the model, check what it wrote, and store it (or why there is none) on the session's handoff."""
        update: dict[str, Any]
        try:
            text = await asyncio.wait_for(self._ask(facts, transcript), self.timeout_s)
        except TimeoutError:
            update = {"model_summary_status": "failed", "model_summary_note": f"no answer in {self.timeout_s:g} s"}
        except Exception as e:  # the model down or broken: the agent still has the facts
            log.info("no handoff summary for %s: %s", session.session_id, e)
            update = {"model_summary_status": "failed", "model_summary_note": f"the model failed: {e}"[:300]}
        else:
            summary, why = check_summary(text, facts, products, transcript, self.catalog_titles)
            if summary is None:
                log.info("handoff summary for %s dropped: %s", session.session_id, why)
            update = {
                "model_summary": summary,
                "model_summary_status": "written" if summary else "dropped",
                "model_summary_note": why[:300] if why else None,
            }
        update["model_summary_at"] = utc_now()

        def store(current: Control) -> Control:
            handoff = current.handoff
            if handoff is None or handoff.ticket_id != ticket_id:
                return current  # handed back, or another handoff since: this summary is not its
            return current.model_copy(update={"handoff": handoff.model_copy(update=update)})

        await asyncio.to_thread(self.controls.change, session.session_id, session.shopper_id, store)

    async def _ask(self, facts: HandoffFacts, transcript: str) -> str:
        values = {"facts": facts_text(facts), "transcript": transcript or "(none)"}
        messages = [ChatMessage(role=r, content=c) for r, c in self.prompt.messages(**values)]  # type: ignore[arg-type]
        text = ""
        async for delta in self.llm.stream_chat(messages, max_tokens=self.prompt.max_tokens or 80, temperature=0.0):
            text += delta
        return text

    async def aclose(self) -> None:
        """Cancel the summaries still being written (their handoffs keep the facts)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
