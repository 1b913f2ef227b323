"""One chat turn: route, call tools, show cards, stream a grounded answer; every event logged as emitted.

Turn flow (see ARCHITECTURE.md): session → intent (+slots, references) → tools → products/action/
handoff → tokens (model text through the GroundingFilter, or a deterministic text) → citation → done.
Cancellation: the client disconnects → the SSE task is cancelled → `CancelledError` reaches the model
stream here (which closes the upstream HTTP request, so vLLM aborts it) → the turn is stored as
cancelled → the error is re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from assistant.api.auth import Principal
from assistant.api.errors import ApiError
from assistant.dialogue.context import approx_tokens, build_history, summarize_turns
from assistant.grounding import Facts, GroundingFilter, LimitGuard, QualityGate, ground
from assistant.intents.router import RoutedIntent
from assistant.llm.base import LLM, ChatMessage, LLMError, LLMUnavailable, StreamInfo
from assistant.metrics import Metrics
from assistant.planner import AnswerPlan, Plan, Planner, TurnInput
from assistant.prompts import PromptRegistry
from assistant.schemas import (
    ChatResponse,
    CitationEvent,
    DoneEvent,
    ErrorBody,
    ErrorEvent,
    ProductsEvent,
    SessionEvent,
    TokenEvent,
)
from assistant.sessions.base import SessionStore
from assistant.sessions.models import InvalidEventId, Session, StoredEvent, Turn, parse_event_id

log = logging.getLogger(__name__)
WORDS = re.compile(r"\S+\s*")
Emit = Callable[[BaseModel], Awaitable["asyncio.Task[None]"]]


@dataclass
class Live:
    """A turn running in this process: its events so far, and who is following it."""

    events: list[StoredEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    task: asyncio.Task[None] | None = None
    followers: int = 0
    orphaned: asyncio.TimerHandle | None = None

    def publish(self, event: StoredEvent) -> None:
        self.events.append(event)
        self.changed.set()


@dataclass
class OpenedTurn:
    """A checked message and the session it goes to (`ChatService.open`); its routing is already under way."""

    session: Session
    message: str
    routing: asyncio.Future[RoutedIntent]


class TurnLog:
    """A turn's events, logged in order and each published once it is logged. `emit` returns as soon as the
    previous event is logged and this one is on its way to the store, so the turn's next step (routing, a
    search) runs while it commits; `flush` waits for the last one. A failed append raises at the next call."""

    def __init__(self, sessions: SessionStore, session_id: str, turn_id: str, live: Live) -> None:
        self.sessions, self.session_id, self.turn_id, self.live = sessions, session_id, turn_id, live
        self._last: asyncio.Task[None] | None = None

    async def emit(self, event: BaseModel) -> asyncio.Task[None]:
        await self.flush()
        data = event.model_dump(mode="json")
        name = data.pop("event")
        self._last = asyncio.create_task(self._append(name, data))
        return self._last

    async def _append(self, name: str, data: dict[str, Any]) -> None:
        self.live.publish(await self.sessions.append_event(self.session_id, self.turn_id, name, data))

    async def flush(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await asyncio.shield(last)  # a cancelled turn still logs and publishes what it emitted


class ChatService:
    """Runs turns for sessions; the HTTP layer only authenticates and streams what this yields."""

    def __init__(
        self,
        *,
        llm: LLM,
        sessions: SessionStore,
        planner: Planner,
        prompts: PromptRegistry,
        metrics: Metrics,
        max_message_chars: int,
        answer_max_tokens: int,
        turn_timeout_s: float = 120.0,
        resume_grace_s: float = 5.0,
        context_tokens: int = 1200,
        history_turns: int = 2,
        summarize_after: int = 4,
    ) -> None:
        self.context_tokens = context_tokens
        self.history_turns = history_turns
        self.summarize_after = summarize_after
        self._background: set[asyncio.Task[None]] = set()
        self.llm = llm
        self.sessions = sessions
        self.planner = planner
        self.prompts = prompts
        self.metrics = metrics
        self.max_message_chars = max_message_chars
        self.answer_max_tokens = answer_max_tokens
        self.turn_timeout_s = turn_timeout_s
        self.resume_grace_s = resume_grace_s
        self._live: dict[str, Live] = {}

    # --- sessions

    async def session_for(self, principal: Principal, session_id: str) -> Session:
        """The session if this caller may read it; 404 otherwise (another shopper's looks absent)."""
        session = await self.sessions.get_session(session_id)
        if session is None or not principal.can_read(session.shopper_id):
            raise ApiError(404, "session_not_found", f"no session {session_id!r} for this key")
        return session

    async def open(self, principal: Principal, message: str, session_id: str | None, shopper: str | None) -> OpenedTurn:
        """Check the message and find or create the session the turn belongs to. The message's routing starts
        first: it runs while the session is read and the turn stored (a few ms of a turn's time to products)."""
        if len(message) > self.max_message_chars:
            raise ApiError(
                413, "message_too_long", f"message has {len(message)} characters; the limit is {self.max_message_chars}"
            )
        if not message.strip():
            raise ApiError(422, "invalid_request", "message is empty")
        routing = self.planner.route_soon(message)
        try:
            if session_id is not None:
                session = await self.session_for(principal, session_id)
            else:
                session = await self.sessions.create_session(principal.shopper_for(shopper))
        except BaseException:
            routing.cancel()
            raise
        return OpenedTurn(session=session, message=message, routing=routing)

    # --- a turn

    async def stream(self, principal: Principal, opened: OpenedTurn) -> AsyncIterator[StoredEvent]:
        """Start the turn and follow it. The turn runs in its own task: when its last follower leaves
        (the client disconnected) it is cancelled after `resume_grace_s`, unless someone resumes it."""
        session = opened.session
        try:
            turn = await self.sessions.begin_turn(session.session_id, opened.message)
        except BaseException:
            opened.routing.cancel()
            raise
        live = self._live[turn.turn_id] = Live()
        live.task = asyncio.create_task(self._drive(principal, opened, turn, live))
        async for event in self._follow_live(live, -1):
            yield event

    async def _follow_live(self, live: Live, after_seq: int) -> AsyncIterator[StoredEvent]:
        """The live turn's events with seq > after_seq, until its done event."""
        live.followers += 1
        if live.orphaned is not None:
            live.orphaned.cancel()
            live.orphaned = None
        try:
            i = after_seq + 1
            while True:
                live.changed.clear()
                while i < len(live.events):
                    yield live.events[i]
                    i += 1
                if live.done:
                    return
                await live.changed.wait()
        finally:
            live.followers -= 1
            if live.followers == 0 and not live.done and live.task is not None:
                if self.resume_grace_s > 0:
                    live.orphaned = asyncio.get_running_loop().call_later(self.resume_grace_s, live.task.cancel)
                else:
                    live.task.cancel()

    async def _drive(self, principal: Principal, opened: OpenedTurn, turn: Turn, live: Live) -> None:
        """Run the turn, logging every event before publishing it; store the outcome whatever happens."""
        started = time.perf_counter()
        session = opened.session
        self.metrics.turns_started.inc()
        events = TurnLog(self.sessions, session.session_id, turn.turn_id, live)
        try:
            await events.emit(
                SessionEvent(session_id=session.session_id, turn_id=turn.turn_id, shopper_id=session.shopper_id)
            )
            async with asyncio.timeout(self.turn_timeout_s):
                await self._run(principal, opened, turn, events.emit, started)
            await events.flush()
        except asyncio.CancelledError:
            turn.status, turn.error = "cancelled", "client disconnected"
            await asyncio.shield(self._close_turn(session, turn, live, events, None))
            raise
        except Exception as e:  # a bug or a store failure: report it on the stream, never hang
            log.exception("turn %s failed", turn.turn_id)
            turn.status, turn.error = "failed", f"{type(e).__name__}: {e}"
            code = "timeout" if isinstance(e, TimeoutError) else "internal"
            msg = "the turn took too long" if code == "timeout" else "internal error; it was logged"
            await self._close_turn(session, turn, live, events, ErrorBody(code=code, message=msg))
            return
        await self._close_turn(session, turn, live, None, None)
        # The session as this process knows it, plus this turn: only re-read it when a summary may be due.
        if self._unsummarised(session.model_copy(update={"turns": [*session.turns, turn]})):
            task = asyncio.create_task(self._summarize(session.session_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _unsummarised(self, session: Session) -> list[Turn]:
        """The completed turns outside the history window the summary should cover, once enough piled up."""
        done = session.completed_turns()
        older = done[: -self.history_turns] if self.history_turns else done
        covered = session.summary_through if session.summary_through is not None else -1
        if len(older) < self.summarize_after or older[-1].index - covered < self.summarize_after:
            return []
        return older

    async def _summarize(self, session_id: str) -> None:
        """Summarise older turns with the model in the background."""
        session = await self.sessions.get_session(session_id)
        older = self._unsummarised(session) if session is not None else []
        if not older:
            return
        prompt = self.prompts.get("summary")
        transcript = summarize_turns(older, max_message_chars=160)
        messages = [ChatMessage(role=r, content=c) for r, c in prompt.messages(transcript=transcript)]  # type: ignore[arg-type]
        text = ""
        try:
            async for delta in self.llm.stream_chat(messages, max_tokens=prompt.max_tokens or 80, temperature=0.0):
                text += delta
        except LLMError as e:
            log.info("no summary for %s: %s", session_id, e)
            return
        grounded, withheld = ground(text, Facts(names={transcript}))
        if grounded.strip() and not withheld:
            await self.sessions.set_summary(session_id, grounded.strip(), through_index=older[-1].index)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _close_turn(
        self,
        session: Session,
        turn: Turn,
        live: Live,
        events: TurnLog | None,
        error: ErrorBody | None,
    ) -> None:
        """Log the closing events an interrupted turn still owes, store the turn, release followers."""
        try:
            if events is not None:
                try:
                    await events.flush()
                except Exception:  # an earlier event was not logged: still try to close the turn's log
                    log.exception("event of turn %s not logged", turn.turn_id)
                if error is not None:
                    await events.emit(ErrorEvent(error=error))
                cancelled = turn.status == "cancelled"
                await events.emit(DoneEvent(turn_id=turn.turn_id, status="cancelled" if cancelled else "failed"))
                await events.flush()
            await self.sessions.complete_turn(session.session_id, turn)
        except Exception:  # the store is failing too: followers must still be released
            log.exception("could not store turn %s", turn.turn_id)
        finally:
            self.metrics.turns_finished.labels(status=turn.status).inc()
            live.done = True
            live.changed.set()
            self._live.pop(turn.turn_id, None)

    async def _run(self, principal: Principal, opened: OpenedTurn, turn: Turn, emit: Emit, started: float) -> None:
        inp = TurnInput(
            session=opened.session,
            turn_id=turn.turn_id,
            message=opened.message,
            role="agent" if principal.role == "agent" else "shopper",
            routing=opened.routing,
        )
        plan = await self.planner.understand(inp)
        try:
            await self._act(inp, plan, turn, emit, started)
        finally:
            self.planner.cancel(plan)

    async def _act(
        self,
        inp: TurnInput,
        plan: Plan,
        turn: Turn,
        emit: Emit,
        started: float,
    ) -> None:
        turn.intent, turn.slots = plan.intent.intent, plan.intent.slots
        await emit(plan.intent)  # logged while the tools run
        async for event in self.planner.act(inp, plan):
            logged = await emit(event)
            if isinstance(event, ProductsEvent):
                logged.add_done_callback(_observe(self.metrics.time_to_products, started))
        answer = plan.answer
        turn.product_ids = [p.id for p in answer.products]
        turn.tool_trace = plan.trace  # the list the tools and the model's slots keep appending to

        text, error = "", None
        first = True
        async for piece in self._answer(answer, inp.session, plan.trace):
            if isinstance(piece, ErrorBody):
                error = piece
                break
            text += piece
            logged = await emit(TokenEvent(text=piece))
            if first:
                logged.add_done_callback(_observe(self.metrics.time_to_first_token, started))
                first = False
        withheld = answer.withheld
        turn.answer = text.strip()
        turn.citations = answer.citations
        turn.slots = await self.planner.finish_slots(plan)
        if error is not None:
            turn.status, turn.error = "failed", error.message
            await emit(ErrorEvent(error=error))
            await emit(DoneEvent(turn_id=turn.turn_id, status="failed", withheld=withheld))
            return
        if answer.citations:
            await emit(CitationEvent(ids=answer.citations))
        turn.status = "completed"
        await emit(DoneEvent(turn_id=turn.turn_id, status="completed", withheld=withheld))

    async def _answer(
        self, answer: AnswerPlan, session: Session, trace: list[dict[str, Any]]
    ) -> AsyncIterator[str | ErrorBody]:
        """The answer's text pieces: the model's through the grounding filter and the quality gate, or the
        fixed text (when the plan has no prompt, or the model's text is unusable). The model call goes in
        the turn's trace: the exact messages, and when its first text came and when the first piece left
        the filters (ms from the request)."""
        if answer.prompt is None:
            for m in WORDS.finditer(answer.fixed or ""):
                yield m.group(0)
            return
        prompt = self.prompts.get(answer.prompt)
        rendered = prompt.messages(**answer.variables)
        max_tokens = prompt.max_tokens or self.answer_max_tokens
        # The context budget: what is left of it after the prompt and the answer goes to history.
        budget = self.context_tokens - max_tokens - sum(approx_tokens(c) + 4 for _, c in rendered)
        history = (
            build_history(session, budget, max_verbatim_turns=self.history_turns, include_product_ids=False)
            if prompt.history
            else []
        )
        # The reply's start (a partial assistant message the model continues) goes out with the model's first
        # words, never before them: it steers the small model, and what follows it is a whole word sooner.
        start = prompt.reply_start or ""
        messages = [
            ChatMessage(role=role, content=content)  # type: ignore[arg-type]
            for role, content in [rendered[0], *history, *rendered[1:], *([("assistant", start)] if start else [])]
        ]
        grounding = GroundingFilter(answer.facts or Facts())
        gate = QualityGate()
        limit = LimitGuard(max_tokens)
        info = StreamInfo()
        produced, model_text, tokens = "", "", 0
        call: dict[str, Any] = {
            "prompt": answer.prompt,
            "messages": [m.model_dump(exclude_none=True) for m in messages],
            "reply_start": start or None,
            "max_tokens": max_tokens,
            "first_text_ms": None,
            "first_piece_ms": None,
            "finish_reason": None,
        }
        entry: dict[str, Any] = {"name": "answer_model", "ok": True, "data": call}
        trace.append(entry)
        sent = time.perf_counter()
        stream = self.llm.stream_chat(messages, max_tokens=max_tokens, temperature=0.0, info=info)
        try:
            async for delta in stream:
                if call["first_text_ms"] is None and delta:
                    call["first_text_ms"] = _ms_since(sent)
                model_text += delta
                tokens += 1  # vLLM streams a chunk per token (or fewer)
                if start:  # held until the model has said a word (whitespace alone may be all it says)
                    if not model_text.strip():
                        continue
                    delta, start = start + model_text, ""
                piece = limit.feed(gate.feed(grounding.feed(delta)), tokens)
                if gate.rejected or gate.looping:
                    break
                if piece:
                    call["first_piece_ms"] = call["first_piece_ms"] or _ms_since(sent)
                    produced += piece
                    yield piece
            else:
                call["finish_reason"] = info.finish_reason
                piece = gate.finish(grounding.finish())
                cut = info.finish_reason == "length"
                piece = "" if gate.rejected else limit.feed(piece, tokens) + limit.finish(cut)
                if piece:
                    call["first_piece_ms"] = call["first_piece_ms"] or _ms_since(sent)
                    produced += piece
                    yield piece
        except LLMUnavailable as e:
            entry.update(ok=False, error=f"{type(e).__name__}: {e}")
            log.warning("model unavailable: %s", e)
            self.metrics.llm_errors.inc()
            yield ErrorBody(code="llm_unavailable", message=f"{e}")
            return
        except LLMError as e:
            entry.update(ok=False, error=f"{type(e).__name__}: {e}")
            log.warning("model error: %s", e)
            self.metrics.llm_errors.inc()
        finally:
            await _aclose(stream)
        answer.withheld.extend(grounding.withheld)
        if limit.dropped.strip():
            answer.withheld.append(f"cut at the {max_tokens}-token limit: {limit.dropped.strip()!r}")
        if gate.rejected:
            answer.withheld.append(f"model text rejected: {gate.rejected}")
        unusable = not produced.strip() or gate.rejected or (grounding.cut and not grounding.kept)
        if unusable and answer.fixed:
            # Nothing usable came from the model: say the catalog facts plainly (on a new line after any words
            # that went out before the model's text turned out unusable).
            if produced.strip():
                yield "\n"
            for m in WORDS.finditer(answer.fixed):
                yield m.group(0)

    # --- resume and non-streaming

    async def resume(self, principal: Principal, session_id: str, last_event_id: str) -> AsyncIterator[StoredEvent]:
        """Events after `last_event_id`, following the turn live while it runs in this process."""
        session = await self.session_for(principal, session_id)
        try:
            turn_id, _ = parse_event_id(last_event_id)
        except InvalidEventId as e:
            raise ApiError(400, "invalid_last_event_id", str(e)) from e
        if not any(t.turn_id == turn_id for t in session.turns):
            raise ApiError(404, "event_not_found", f"no turn {turn_id!r} in session {session_id!r}")
        return self._follow(session_id, turn_id, last_event_id)

    async def _follow(self, session_id: str, turn_id: str, last_event_id: str) -> AsyncIterator[StoredEvent]:
        live = self._live.get(turn_id)
        if live is not None:
            async for event in self._follow_live(live, parse_event_id(last_event_id)[1]):
                yield event
            return
        try:
            events = await self.sessions.events_after(session_id, last_event_id, turn_id=turn_id)
        except InvalidEventId as e:
            raise ApiError(404, "event_not_found", str(e)) from e
        for ev in events:
            yield ev
        last = events[-1] if events else None
        if (last.event if last else "") != "done":
            # The turn ended without its done event (its process was killed): close it for the client.
            seq = (last.seq if last else parse_event_id(last_event_id)[1]) + 1
            done = DoneEvent(turn_id=turn_id, status="failed").model_dump(mode="json", exclude={"event"})
            yield StoredEvent(id=f"{turn_id}:{seq}", event="done", data=done)

    async def collect(self, principal: Principal, opened: OpenedTurn) -> ChatResponse:
        """The non-streaming variant: run the same turn and gather its events."""
        session_id = opened.session.session_id
        out: dict[str, Any] = {"session_id": session_id, "turn_id": "", "status": "failed", "actions": []}
        parts: list[str] = []
        async for ev in self.stream(principal, opened):
            d = ev.data
            match ev.event:
                case "session":
                    out["turn_id"] = d["turn_id"]
                case "intent":
                    out["intent"] = {"event": "intent", **d}
                case "products":
                    out["products"] = d["products"]
                case "token":
                    parts.append(d["text"])
                case "citation":
                    out["citations"] = d["ids"]
                case "action":
                    out["actions"].append({"event": "action", **d})
                case "handoff":
                    out["handoff"] = {"event": "handoff", **d}
                case "error":
                    out["error"] = d["error"]
                case "done":
                    out["status"], out["withheld"] = d["status"], d["withheld"]
        out["answer"] = "".join(parts).strip()
        return ChatResponse.model_validate(out)


def _observe(histogram: Any, started: float) -> Callable[[object], None]:
    """A done-callback that observes the seconds since `started` (when an event is logged and published)."""
    return lambda _: histogram.observe(time.perf_counter() - started)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
