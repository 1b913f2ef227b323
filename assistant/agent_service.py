"""A person in the conversation: the agents' queue, takeover, their messages and notes, typing, hand-back and close;
the shopper's messages while a person owns the session; the session stream.

The rules are `assistant/takeover.py`'s; this applies them. While an agent owns a session, the conversation is one
turn of kind 'person' in the session's event log (`session`, `agent_joined`, `state`, then `message`s, then
`agent_left`, `state`, `done`), so the turn streams and the session stream read one log and resume the same way.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from assistant.chat_service import ChatService
from assistant.console_replies import CannedReplies, RepliesFileError, load_replies
from assistant.errors import FeatureOff, Forbidden, InvalidRequest, StateConflict, Unavailable
from assistant.handoff_notes import HandoffNotes
from assistant.principal import Principal
from assistant.scenario_export import scenario_yaml
from assistant.schemas import (
    AgentActionEvent,
    AgentJoinedEvent,
    AgentLeftEvent,
    AgentTool,
    Delivered,
    DoneEvent,
    HandoffEvent,
    MessageEvent,
    Queue,
    QueueEntry,
    SessionEvent,
    StateEvent,
    TypingEvent,
)
from assistant.sessions.base import SessionStore
from assistant.sessions.models import PersonMessage, Session, StoredEvent, Turn, utc_now
from assistant.stores.feedback import FeedbackStore
from assistant.stores.session_control import ControlStore
from assistant.takeover import STATES, Action, Actor, Control, Handoff, SessionState, decide
from assistant.tools.base import Toolbox, ToolContext
from assistant.turns.live import Live, TurnLog
from assistant.turns.session_stream import check_resume_point, follow_session

TAKEOVER_REASON = "an agent took over the conversation"
NOT_FOR_AGENTS = frozenset({"handoff_to_human"})


def actor_of(principal: Principal, name: str | None = None) -> Actor:
    """The shopper (a widget key or visitor token) or an agent (its key is its identity)."""
    if principal.role == "agent":
        return Actor(kind="agent", agent_id=principal.key_id, name=name)
    return Actor(kind="shopper")


def visible_to(principal: Principal) -> Any:
    """What a caller may see of the log: agents everything, the shopper all but agents' internal notes."""
    if principal.role == "agent":
        return lambda event: True
    return lambda event: not event.data.get("internal")


def state_event(control: Control) -> StateEvent:
    return StateEvent(state=control.state, agent_name=control.agent_name, since=control.since)


class AgentService:
    """Applies the state machine to sessions, logs what people say and do, and serves the session stream."""

    def __init__(
        self,
        chat: ChatService,
        controls: ControlStore,
        toolbox: Toolbox | None = None,
        feedback: FeedbackStore | None = None,
        notes: HandoffNotes | None = None,
    ) -> None:
        self.chat = chat
        self.notes = notes
        self.toolbox = toolbox
        self.feedback = feedback
        self.sessions: SessionStore = chat.sessions
        self.live = chat.live
        self.controls = controls
        # One process: a session's state changes and turn starts run one at a time (replicas: the store's atomic
        # update decides the state; the rest follows the decision).
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        chat.people = self
        chat.runner.on_handoff = self.on_handoff

    def lock(self, session_id: str) -> asyncio.Lock:
        return self._locks[session_id]

    # --- state

    async def control(self, session: Session) -> Control:
        found = await asyncio.to_thread(self.controls.get, session.session_id)
        return found or Control(session_id=session.session_id, shopper_id=session.shopper_id)

    async def _decide(self, session: Session, action: Action, actor: Actor, **update: Any) -> tuple[Control, Control]:
        def change(current: Control) -> Control:
            after = decide(current, action, actor)
            return after.model_copy(update=update) if update and after != current else after

        return await asyncio.to_thread(self.controls.change, session.session_id, session.shopper_id, change)

    async def _set(self, session: Session, **update: Any) -> Control:
        _, after = await asyncio.to_thread(
            self.controls.change, session.session_id, session.shopper_id, lambda c: c.model_copy(update=update)
        )
        return after

    # --- the bot's side (called by ChatService and the TurnRunner)

    async def before_bot_turn(self, session: Session, principal: Principal) -> tuple[Control, list[BaseModel]]:
        """The control a shopper's message meets, and the events a bot turn opens with (a reopened session's
        `state`). Stores a control for a session that has none, so the queue lists it."""
        stored = await asyncio.to_thread(self.controls.get, session.session_id)
        if stored is not None and stored.state in ("bot", "waiting_for_agent"):
            return stored, []
        before, after = await self._decide(session, "shopper_message", actor_of(principal))
        return after, [state_event(after)] if after.state != before.state else []

    async def recheck(self, session: Session, live: Live) -> None:
        """Replicas: a takeover decided on another replica between this one's state check and its turn's start
        (their cancel may have come before the turn was here to cancel) stops the turn now."""
        control = await self.control(session)
        if not control.bot_answers and live.task is not None and not live.done:
            live.cancel_reason = TAKEOVER_REASON
            live.task.cancel()

    async def on_handoff(self, session: Session, turn: Turn, event: HandoffEvent) -> StateEvent | None:
        """The bot opened a ticket: the session waits for a person, with the reason and a summary for the agent."""
        handoff = Handoff(ticket_id=event.ticket_id, reason=event.reason, summary=handoff_summary(session, turn))
        if self.notes is not None:
            facts, products = await self.notes.facts(session, turn, event.reason)
            handoff = handoff.model_copy(update={"facts": facts, "model_summary_status": "pending"})
        before, after = await self._decide(session, "handoff", Actor(kind="bot"), handoff=handoff)
        if self.notes is not None and after.handoff is not None and after.handoff.ticket_id == event.ticket_id:
            self.notes.start(session, turn, event.ticket_id, facts, products)  # the turn does not wait for it
        return state_event(after) if after.state != before.state else None

    async def aclose(self) -> None:
        if self.notes is not None:
            await self.notes.aclose()

    async def deliver(self, session: Session, control: Control, principal: Principal, text: str) -> StoredEvent:
        """A shopper's message while a person owns the session: logged in the person turn, on the session stream."""
        log = await self._person_log(session, control)
        message = MessageEvent(sender="shopper", text=text, at=utc_now())
        await log.emit(message)
        await log.flush()
        return log.live.events[-1]

    async def to_person(self, principal: Principal, session: Session, text: str) -> Delivered | None:
        """When a person owns the session, deliver the message to them (no bot turn); None when the bot answers."""
        async with self.lock(session.session_id):
            control = await self.control(session)
            if control.bot_answers:
                return None
            logged = await self.deliver(session, control, principal, text)
        return Delivered(session_id=session.session_id, agent_name=control.agent_name, event_id=logged.id)

    # --- the agents' side

    def _agent(self, principal: Principal, name: str | None = None) -> Actor:
        if principal.role != "agent":
            raise Forbidden("only an agent key may do this")
        return actor_of(principal, name)

    async def queue(
        self,
        principal: Principal,
        states: list[SessionState] | None = None,
        has_handoff: bool | None = None,
        q: str | None = None,
        limit: int = 50,
        mine: bool = False,
        thumbs_down: bool = False,
        intent: str | None = None,
    ) -> Queue:
        """Sessions by state (waiting first, each state's longest-waiting first), with waiting time and handoff.
        `mine`: owned by the calling agent; `thumbs_down`: a turn was rated down; `intent`: the last bot turn's."""
        me = self._agent(principal)
        order: tuple[SessionState, ...] = ("waiting_for_agent", "agent", "bot", "closed")
        wanted = tuple(s for s in order if s in (states or STATES))
        controls = await asyncio.to_thread(self.controls.list, wanted, 1000)
        if has_handoff is not None:
            controls = [c for c in controls if (c.handoff is not None) == has_handoff]
        if mine:
            controls = [c for c in controls if c.state == "agent" and c.agent_id == me.agent_id]
        if thumbs_down:
            controls = [c for c in controls if await self._rated_down(c.session_id)]
        now = utc_now()
        needle = q.strip().lower() if q else None
        entries: list[QueueEntry] = []
        for control in controls:
            if len(entries) >= limit:
                break
            session = await self.sessions.get_session(control.session_id)
            if session is None:
                continue
            if needle and not any(needle in text.lower() for text in conversation_texts(session)):
                continue
            last_intent = next((t.intent for t in reversed(session.turns) if t.kind == "bot" and t.intent), None)
            if intent and last_intent != intent:
                continue
            shopper_says = [m for t in session.turns for m in said_by_shopper(t)]
            waiting = control.state == "waiting_for_agent" and control.handoff is not None
            entries.append(
                QueueEntry(
                    session_id=control.session_id,
                    shopper_id=control.shopper_id,
                    state=control.state,
                    since=control.since,
                    waiting_s=(now - control.handoff.waiting_since).total_seconds()
                    if waiting and control.handoff
                    else None,
                    agent_name=control.agent_name,
                    handoff=control.handoff.model_dump(mode="json") if control.handoff else None,
                    last_message=shopper_says[-1] if shopper_says else None,
                    turns=sum(1 for t in session.turns if t.kind == "bot"),
                    intent=last_intent,
                )
            )
        return Queue(sessions=entries)

    async def replies(self, principal: Principal, path: Path) -> CannedReplies:
        """The canned replies the console offers (agents only)."""
        self._agent(principal)
        try:
            return await asyncio.to_thread(load_replies, path)
        except RepliesFileError as e:
            raise Unavailable(str(e)) from None

    async def _rated_down(self, session_id: str) -> bool:
        if self.feedback is None:
            return False
        found = await asyncio.to_thread(self.feedback.for_session, session_id)
        return any(f.rating == "down" for f in found)

    async def scenario(self, principal: Principal, session_id: str) -> str:
        """Save as test case: the conversation as a scenario file of the offline dialogue evaluation (YAML)."""
        self._agent(principal)
        session = await self.chat.session_for(principal, session_id)
        try:
            return scenario_yaml(session.model_dump(mode="json"))
        except ValueError as e:
            raise StateConflict(str(e)) from None

    async def take(self, principal: Principal, session_id: str, name: str) -> Control:
        """The agent owns the session: a bot turn in flight is cancelled (its model request with it), the person
        turn opens, and the shopper's stream gets `agent_joined`. Taking one's own session again changes nothing."""
        actor = self._agent(principal, name)
        session = await self.chat.session_for(principal, session_id)
        async with self.lock(session_id):
            before, after = await self._decide(session, "take", actor)
            if before.state == "agent":
                return after
            await self.live.cancel_session(session_id, TAKEOVER_REASON)
            turn = await self.sessions.begin_turn(session_id, "", kind="person")
            after = await self._set(session, person_turn_id=turn.turn_id)
            log = self._log(session, turn.turn_id)
            await log.emit(SessionEvent(session_id=session_id, turn_id=turn.turn_id, shopper_id=session.shopper_id))
            await log.emit(AgentJoinedEvent(name=name))
            await log.emit(state_event(after))
            await log.flush()
            return after

    async def say(self, principal: Principal, session_id: str, text: str, internal: bool) -> StoredEvent:
        """The owning agent's message to the shopper (live on their stream), or any agent's internal note."""
        self._agent(principal)
        session = await self.chat.session_for(principal, session_id)
        async with self.lock(session_id):
            control = await self.control(session)
            actor = self._agent(principal, control.agent_name)
            decide(control, "note" if internal else "agent_message", actor)
            log = await self._person_log(session, control)
            name = control.agent_name if not internal else None
            await log.emit(MessageEvent(sender="agent", name=name, text=text, internal=internal, at=utc_now()))
            await log.flush()
            return log.live.events[-1]

    async def act(
        self, principal: Principal, session_id: str, tool: str, arguments: dict[str, Any], confirm: bool
    ) -> StoredEvent:
        """The owning agent uses a tool for the shopper, under the tools' own rules. A change is proposed first (an
        `action` needing confirmation, agents only) and carried out by the same call with `confirm` (409 without a
        proposal); what was done is an `action` on the shopper's stream, by the agent, and in the turn's trace."""
        self._agent(principal)
        session = await self.chat.session_for(principal, session_id)
        if self.toolbox is None or tool not in self.toolbox or tool in NOT_FOR_AGENTS:
            usable = [n for n in (self.toolbox.names if self.toolbox else []) if n not in NOT_FOR_AGENTS]
            if tool in get_args(AgentTool):  # one of the agents' tools, not configured here
                raise FeatureOff(f"the tool {tool!r} is not configured here; use one of: {', '.join(usable)}")
            raise InvalidRequest(f"no tool {tool!r} for agents; use one of: {', '.join(usable)}", {"tools": usable})
        async with self.lock(session_id):
            control = await self.control(session)
            decide(control, "agent_action", self._agent(principal, control.agent_name))
            log = await self._person_log(session, control)
            if confirm and not await self._proposed(session, log.turn_id, tool, arguments):
                raise StateConflict(
                    f"confirm {tool} after proposing it: call it once without confirm",
                    {"state": control.state, "action": "agent_action"},
                )
            ctx = ToolContext(
                shopper_id=session.shopper_id,
                session_id=session_id,
                turn_id=log.turn_id,
                confirmed=confirm,
                # In a conversation the agent acts for its shopper, scoped as the shopper is: another shopper's order
                # reads as absent, so nothing of it reaches this shopper's stream. Who acted is on the action (`by`).
                role="shopper",
            )
            result = await self.toolbox.call(tool, arguments, ctx)
            if not result.ok:
                status, what = "refused", result.error if result.error_kind == "refused" else f"{tool} did not work"
            elif result.needs_confirmation:
                status, what = "needs_confirmation", str((result.confirmation or {}).get("summary") or tool)
            else:
                status, what = "done", f"{tool} done by {control.agent_name or 'an agent'}"
            event = AgentActionEvent(
                tool=tool,
                status=status,  # type: ignore[arg-type]
                description=what or tool,
                result=result.data if status != "needs_confirmation" else result.confirmation or {},
                by=control.agent_name,
                arguments=arguments,
                internal=status != "done",  # proposals and refusals are the agent's business
            )
            await log.emit(event)
            await log.flush()
            return log.live.events[-1]

    async def _proposed(self, session: Session, turn_id: str, tool: str, arguments: dict[str, Any]) -> bool:
        """The person turn's latest action with this tool and these arguments is a proposal awaiting confirmation."""
        events = await self.sessions.events_after(session.session_id, None, turn_id=turn_id)
        same = [
            e
            for e in events
            if e.event == "action" and e.data.get("tool") == tool and e.data.get("arguments") == arguments
        ]
        return bool(same) and same[-1].data.get("status") == "needs_confirmation"

    async def typing(self, principal: Principal, session_id: str) -> bool:
        """Someone types: the other side's stream gets `typing` (live only). False when nobody is there to see it
        (the bot has the session)."""
        session = await self.chat.session_for(principal, session_id)
        control = await self.control(session)
        actor = actor_of(principal, control.agent_name)
        if actor.kind == "shopper" and control.state != "agent":
            return False
        decide(control, "typing", actor)
        event = TypingEvent(sender=actor.kind, name=control.agent_name if actor.kind == "agent" else None)  # type: ignore[arg-type]
        data = event.model_dump(mode="json", by_alias=True)
        name = data.pop("event")
        self.live.hub.publish(session_id, StoredEvent(id="", event=name, data=data))
        return True

    async def hand_back(self, principal: Principal, session_id: str) -> Control:
        """The bot has the session again (`agent_left`); its next turn's context holds what the person said."""
        return await self._release(principal, session_id, "hand_back")

    async def close(self, principal: Principal, session_id: str) -> Control:
        """The conversation is over (a bot turn in flight is cancelled); the shopper writing again reopens it."""
        return await self._release(principal, session_id, "close")

    async def _release(self, principal: Principal, session_id: str, action: Action) -> Control:
        self._agent(principal)
        session = await self.chat.session_for(principal, session_id)
        async with self.lock(session_id):
            control = await self.control(session)
            actor = self._agent(principal, control.agent_name)
            before, after = await self._decide(session, action, actor)
            if before.state == "agent" and before.person_turn_id:
                log = self._log(session, before.person_turn_id)
                await log.emit(AgentLeftEvent(name=before.agent_name, to="bot" if after.state == "bot" else "closed"))
            else:  # closing a session no person holds: a short person turn carries the change
                await self.live.cancel_session(session_id, "an agent closed the conversation")
                turn = await self.sessions.begin_turn(session_id, "", kind="person")
                log = self._log(session, turn.turn_id)
                await log.emit(SessionEvent(session_id=session_id, turn_id=turn.turn_id, shopper_id=session.shopper_id))
            await log.emit(state_event(after))
            await log.emit(DoneEvent(turn_id=log.turn_id, status="completed"))
            await log.flush()
            await self._complete_person_turn(session, log.turn_id)
            return after

    # --- reading

    async def session_view(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """GET /v1/sessions/{id}: the session with its turns and its state; the shopper never sees what is internal
        (agents' notes, and the actions an agent proposed or was refused, kept in a person turn's trace)."""
        session = await self.chat.session_for(principal, session_id)
        control = await self.control(session)
        view = session.model_dump(mode="json")
        if principal.role != "agent":  # what is for agents only: notes, and actions proposed or refused
            for turn in view["turns"]:
                turn["messages"] = [m for m in turn.get("messages", []) if not m.get("internal")]
                turn["tool_trace"] = [t for t in turn.get("tool_trace", []) if not t.get("internal")]
        view["control"] = control.model_dump(mode="json", exclude={"person_turn_id"})
        return view

    async def stream(
        self, principal: Principal, session_id: str, last_event_id: str | None
    ) -> AsyncIterator[StoredEvent]:
        """The session stream: a `state` snapshot (no id), the logged events after `last_event_id`, then live."""
        session = await self.chat.session_for(principal, session_id)
        if last_event_id:
            await check_resume_point(self.sessions, session_id, last_event_id)
        control = await self.control(session)
        data = state_event(control).model_dump(mode="json")
        snapshot = StoredEvent(id="", event=data.pop("event"), data=data)
        return follow_session(
            self.sessions, self.live.hub, session_id, last_event_id or None, visible_to(principal), [snapshot]
        )

    # --- the person turn

    def _log(self, session: Session, turn_id: str) -> TurnLog:
        return TurnLog(self.sessions, session.session_id, turn_id, self.live.person(session.session_id, turn_id))

    async def _person_log(self, session: Session, control: Control) -> TurnLog:
        if control.person_turn_id is None:  # state 'agent' is always stored with its turn; repair if not
            turn = await self.sessions.begin_turn(session.session_id, "", kind="person")
            control = await self._set(session, person_turn_id=turn.turn_id)
        assert control.person_turn_id is not None
        return self._log(session, control.person_turn_id)

    async def _complete_person_turn(self, session: Session, turn_id: str) -> None:
        """Store the person turn with its messages, read back from its log (so a turn begun on another replica or
        before a restart is whole)."""
        events = await self.sessions.events_after(session.session_id, None, turn_id=turn_id)
        messages = [
            PersonMessage(
                sender=e.data["from"],
                name=e.data.get("name"),
                text=e.data["text"],
                internal=bool(e.data.get("internal")),
                at=e.data["at"],
            )
            for e in events
            if e.event == "message"
        ]
        trace = [{"kind": "agent_action", **e.data} for e in events if e.event == "action"]
        current = await self.sessions.get_session(session.session_id)
        turn = next((t for t in current.turns if t.turn_id == turn_id), None) if current else None
        if turn is not None:
            final = turn.model_copy(
                update={"status": "completed", "messages": messages, "tool_trace": trace, "completed_at": utc_now()}
            )
            await self.sessions.complete_turn(session.session_id, final)
        self.live.end(turn_id)


def said_by_shopper(turn: Turn) -> list[str]:
    if turn.kind == "person":
        return [m.text for m in turn.messages if m.sender == "shopper"]
    return [turn.user_message] if turn.user_message else []


def conversation_texts(session: Session) -> list[str]:
    """Everything said in the session, for the queue's text search."""
    out: list[str] = []
    for turn in session.turns:
        out.extend([turn.user_message, turn.answer] if turn.kind == "bot" else [m.text for m in turn.messages])
    return [t for t in out if t]


def handoff_summary(session: Session, turn: Turn) -> str:
    """Facts for the agent who takes the handoff: what the shopper asked, what the bot showed and discussed, and the
    model's summary of older turns when there is one."""
    asked = [t.user_message for t in session.turns if t.kind == "bot" and t.user_message][-3:]
    if turn.user_message and (not asked or asked[-1] != turn.user_message):
        asked.append(turn.user_message)
    lines = [f"The shopper ({session.shopper_id}) asked for a person: {turn.user_message!r}."]
    if len(asked) > 1:
        lines.append("Recent messages: " + "; ".join(repr(a) for a in asked[:-1]) + ".")
    shown = session.products_shown()
    if shown:
        lines.append(f"Products shown: {len(shown)} (latest: {', '.join(shown[-3:])}).")
    intents = [t.intent for t in session.turns if t.intent]
    if intents:
        lines.append(f"Intents so far: {', '.join(dict.fromkeys(intents))}.")
    if session.summary:
        lines.append(f"Earlier: {session.summary}")
    return " ".join(lines)
