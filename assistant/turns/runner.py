"""One turn, top to bottom: understand the message, let its handler call the tools, show what they found, write
the answer, cite, done — every event logged before it is published, and the turn stored whatever happens.

Cancellation: the client disconnects → the turn's task is cancelled (`live.py`) → `CancelledError` reaches the
model stream inside the answer (which closes the upstream request, so vLLM aborts it) → the turn is stored as
cancelled → the error is re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

from pydantic import BaseModel

from assistant.errors import Unavailable
from assistant.metrics import Metrics
from assistant.planning import Planner, TurnInput
from assistant.schemas import (
    CitationEvent,
    DoneEvent,
    ErrorBody,
    ErrorEvent,
    HandoffEvent,
    ProductsEvent,
    SessionEvent,
    TokenEvent,
)
from assistant.sessions.base import SessionStore
from assistant.sessions.models import Session, Turn
from assistant.trace import Trace
from assistant.turns.answer import AnswerWriter
from assistant.turns.live import Live, TurnLog
from assistant.turns.summaries import Summarizer
from retrieval.store import VectorStoreUnavailable

log = logging.getLogger(__name__)


class TurnRunner:
    """Runs turns: the steps of one, and its lifecycle (timeout, failure, cancellation, storing the outcome)."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        planner: Planner,
        writer: AnswerWriter,
        summarizer: Summarizer,
        metrics: Metrics,
        turn_timeout_s: float = 120.0,
    ) -> None:
        self.sessions = sessions
        self.planner = planner
        self.writer = writer
        self.summarizer = summarizer
        self.metrics = metrics
        self.turn_timeout_s = turn_timeout_s
        # Takeover: called when the turn hands off to a person; returns the `state` event to log, if it changed.
        self.on_handoff: Callable[[Session, Turn, HandoffEvent], Awaitable[BaseModel | None]] | None = None

    async def run(self, inp: TurnInput, turn: Turn, live: Live, opening: Sequence[BaseModel] = ()) -> None:
        """Run the turn, logging every event before publishing it; store the outcome whatever happens."""
        started = time.perf_counter()
        session = inp.session
        self.metrics.turns_started.inc()
        events = TurnLog(self.sessions, session.session_id, turn.turn_id, live)
        try:
            await events.emit(
                SessionEvent(session_id=session.session_id, turn_id=turn.turn_id, shopper_id=session.shopper_id)
            )
            for event in opening:  # e.g. the `state` of a closed session the shopper reopened
                await events.emit(event)
            async with asyncio.timeout(self.turn_timeout_s):
                done = await self.steps(inp, turn, events, started)
            await events.flush()
            # Stored before the client is told: a `done` a client saw is never a turn the store does not have.
            await self.sessions.complete_turn(session.session_id, turn)
        except asyncio.CancelledError:
            turn.status, turn.error = "cancelled", live.cancel_reason or "client disconnected"
            await asyncio.shield(self._close(inp, turn, events, None))
            raise
        except Exception as e:  # a bug or a store failure: report it on the stream, never hang
            turn.status, turn.error = "failed", f"{type(e).__name__}: {e}"
            if isinstance(e, Unavailable | VectorStoreUnavailable):  # a store is down: not a bug
                log.warning("turn %s failed: %s", turn.turn_id, e)
            else:
                log.exception("turn %s failed", turn.turn_id)
            await self._close(inp, turn, events, _error_body(e))
            return
        self.metrics.turns_finished.labels(status=turn.status).inc()
        await asyncio.shield(events.close_with([done]))  # logged, or (the store just went) published unlogged
        self.summarizer.after_turn(session, turn)

    async def steps(self, inp: TurnInput, turn: Turn, events: TurnLog, started: float) -> DoneEvent:
        """intent → products / action / handoff → tokens → citation; the `done` to send once the turn is stored."""
        trace = Trace()
        turn.tool_trace = trace.entries  # records added until the turn is stored are stored with it
        understood = await self.planner.understand(inp, trace)
        try:
            turn.intent, turn.slots = understood.event.intent, understood.event.slots
            await events.emit(understood.event)  # logged while the tools run
            plan = await self.planner.plan(inp, understood, trace)
            for event in plan.events:
                logged = await events.emit(event)
                if isinstance(event, ProductsEvent):
                    logged.add_done_callback(_observe(self.metrics.time_to_products, started))
                if isinstance(event, HandoffEvent) and self.on_handoff is not None:
                    state = await self.on_handoff(inp.session, turn, event)
                    if state is not None:
                        await events.emit(state)
            reply = plan.reply
            turn.product_ids = [p.id for p in reply.products]

            answer = self.writer.stream(reply, inp.session, trace)
            text, first = "", True
            async with aclosing(answer.pieces()) as pieces:
                async for piece in pieces:
                    text += piece
                    logged = await events.emit(TokenEvent(text=piece))
                    if first:
                        logged.add_done_callback(_observe(self.metrics.time_to_first_token, started))
                        first = False
            turn.answer, turn.citations = text.strip(), reply.citations
            turn.slots = await self.planner.finish_slots(understood, trace)

            if answer.error is not None:
                turn.status, turn.error = "failed", answer.error.message
                await events.emit(ErrorEvent(error=answer.error))
                return DoneEvent(turn_id=turn.turn_id, status="failed", withheld=answer.withheld)
            if reply.citations:
                await events.emit(CitationEvent(ids=reply.citations))
            turn.status = "completed"
            return DoneEvent(turn_id=turn.turn_id, status="completed", withheld=answer.withheld)
        finally:
            understood.cancel()

    async def _close(self, inp: TurnInput, turn: Turn, events: TurnLog, error: ErrorBody | None) -> None:
        """Log the closing events an interrupted turn still owes, and store the turn."""
        try:
            logged = True
            try:
                await events.flush()
            except Exception:  # an earlier event was not logged (the store is away): the end goes out unlogged
                log.warning("event of turn %s not logged", turn.turn_id, exc_info=True)
                logged = False
            cancelled = turn.status == "cancelled"
            done = DoneEvent(turn_id=turn.turn_id, status="cancelled" if cancelled else "failed")
            await events.close_with([ErrorEvent(error=error), done] if error is not None else [done], logged)
            await self.sessions.complete_turn(inp.session.session_id, turn)
        except Exception:  # the store is failing too: followers are still released (live.py)
            log.exception("could not store turn %s", turn.turn_id)
        finally:
            self.metrics.turns_finished.labels(status=turn.status).inc()


def _error_body(e: Exception) -> ErrorBody:
    """What the shopper's stream says about a turn that failed with `e`."""
    if isinstance(e, TimeoutError):
        return ErrorBody(code="timeout", message="the turn took too long")
    if isinstance(e, Unavailable):  # a part it needs is away, e.g. the session store's disk is full
        return ErrorBody(code=e.code, message=e.message)
    if isinstance(e, VectorStoreUnavailable):
        return ErrorBody(code="unavailable", message="the product index is unavailable; try again shortly")
    return ErrorBody(code="internal", message="internal error; it was logged")


def _observe(histogram: Any, started: float) -> Callable[[object], None]:
    """A done-callback that observes the seconds since `started` (when an event is logged and published)."""
    return lambda _: histogram.observe(time.perf_counter() - started)
