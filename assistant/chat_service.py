"""The chat front: what the HTTP layer (and anything else that talks to shoppers) calls to run and follow turns.

A turn: `open` checks the message and finds the session (routing starts at once), then `stream` runs it and
follows its events (or `collect` gathers them into one response); `resume` picks a turn up again after a
disconnect. Who may do what is decided here from the caller's Principal; the steps of a turn are in
`assistant/turns/runner.py`, live delivery in `assistant/turns/live.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from assistant.errors import EventNotFound, InvalidLastEventId, MessageEmpty, MessageTooLong, SessionNotFound
from assistant.intents.router import RoutedIntent
from assistant.planning import Planner, TurnInput
from assistant.principal import Principal
from assistant.schemas import ChatResponse
from assistant.sessions.base import SessionStore
from assistant.sessions.models import InvalidEventId, Session, StoredEvent, Turn, parse_event_id
from assistant.turns import transcript
from assistant.turns.hubs import SessionHub
from assistant.turns.live import Live, LiveTurns
from assistant.turns.runner import TurnRunner
from assistant.turns.summaries import Summarizer

if TYPE_CHECKING:
    from assistant.agent_service import AgentService


@dataclass
class OpenedTurn:
    """A checked message and the session it goes to (`ChatService.open`); its routing is already under way."""

    session: Session
    message: str
    routing: asyncio.Future[RoutedIntent]


class ChatService:
    """Runs turns for sessions; the HTTP layer only authenticates and streams what this yields."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        planner: Planner,
        runner: TurnRunner,
        summarizer: Summarizer,
        max_message_chars: int,
        resume_grace_s: float = 5.0,
        hub: SessionHub | None = None,
        turn_lease_s: float = 15.0,
    ) -> None:
        self.sessions = sessions
        self.planner = planner
        self.runner = runner
        self.summarizer = summarizer
        self.max_message_chars = max_message_chars
        self.live = LiveTurns(sessions, resume_grace_s, hub, lease_s=turn_lease_s)
        self.people: AgentService | None = None  # takeover: set by AgentService, which decides who answers

    async def session_for(self, principal: Principal, session_id: str) -> Session:
        """The session if this caller may read it; SessionNotFound otherwise (another shopper's looks absent)."""
        session = await self.sessions.get_session(session_id)
        if session is None or not principal.can_read(session.shopper_id):
            raise SessionNotFound(f"no session {session_id!r} for this key")
        return session

    async def open(self, principal: Principal, message: str, session_id: str | None, shopper: str | None) -> OpenedTurn:
        """Check the message and find or create the session the turn belongs to. The message's routing starts
        first: it runs while the session is read and the turn stored."""
        if len(message) > self.max_message_chars:
            raise MessageTooLong(f"message has {len(message)} characters; the limit is {self.max_message_chars}")
        if not message.strip():
            raise MessageEmpty("message is empty")
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

    async def stream(self, principal: Principal, opened: OpenedTurn) -> AsyncIterator[StoredEvent]:
        """Start the turn and follow it (`start`, then its events)."""
        async for event in await self.start(principal, opened):
            yield event

    async def start(self, principal: Principal, opened: OpenedTurn) -> AsyncIterator[StoredEvent]:
        """Start the turn and return its events to follow. A store that cannot begin it (down, its disk full)
        raises here, before any stream: the client gets the one error shape, not a 200 that ends at once. The
        turn runs in its own task: when its last follower leaves (the client disconnected) it is cancelled after
        the resume grace, unless someone resumes it."""
        session = opened.session
        people = self.people
        try:
            if people is None:
                turn = await self.sessions.begin_turn(session.session_id, opened.message)
                live = self._start(principal, opened, turn, [])
            else:
                # The state check and the turn's start are one step: a takeover cannot slip between them.
                async with people.lock(session.session_id):
                    control, opening = await people.before_bot_turn(session, principal)
                    if not control.bot_answers:  # a person took the session since `open`: the message goes to them
                        opened.routing.cancel()
                        return _one(await people.deliver(session, control, principal, opened.message))
                    turn = await self.sessions.begin_turn(session.session_id, opened.message)
                    live = self._start(principal, opened, turn, opening)
                    if self.live.hub.shared:  # another replica may have handed the session to a person meanwhile
                        try:
                            await people.recheck(session, live)
                        except BaseException:  # unchecked (the store is down): the turn does not run
                            if live.task is not None:
                                live.task.cancel()
                            raise
        except BaseException:
            opened.routing.cancel()
            raise
        return self.live.follow(live)

    def _start(self, principal: Principal, opened: OpenedTurn, turn: Turn, opening: list[BaseModel]) -> Live:
        session = opened.session
        inp = TurnInput(session, turn.turn_id, opened.message, role=principal.speaker, routing=opened.routing)
        return self.live.start(
            turn.turn_id, lambda live: self.runner.run(inp, turn, live, opening), session_id=session.session_id
        )

    async def collect(self, principal: Principal, opened: OpenedTurn) -> ChatResponse:
        """The non-streaming variant: run the same turn and gather its events."""
        return await transcript.fold(opened.session.session_id, self.stream(principal, opened))

    async def resume(self, principal: Principal, session_id: str, last_event_id: str) -> AsyncIterator[StoredEvent]:
        """Events after `last_event_id`, following the turn live while it runs (in this process or another
        replica)."""
        session = await self.session_for(principal, session_id)
        try:
            turn_id, _ = parse_event_id(last_event_id)
        except InvalidEventId as e:
            raise InvalidLastEventId(str(e)) from e
        turn = next((t for t in session.turns if t.turn_id == turn_id), None)
        if turn is None:
            raise EventNotFound(f"no turn {turn_id!r} in session {session_id!r}")
        person, open_person = turn.kind == "person", turn.kind == "person" and not turn.finished
        events = await self.live.replay(
            session_id,
            turn_id,
            last_event_id,
            person=person,
            open_person=open_person,
            running=not turn.finished,
            ended=turn.status,
        )
        if principal.role == "agent":
            return events
        return _without_internal_notes(events)

    async def aclose(self) -> None:
        await self.summarizer.aclose()


async def _one(event: StoredEvent) -> AsyncIterator[StoredEvent]:
    yield event


async def _without_internal_notes(events: AsyncIterator[StoredEvent]) -> AsyncIterator[StoredEvent]:
    """A shopper's view of a log: what is for agents only (notes, proposed actions) left out."""
    async for event in events:
        if not event.data.get("internal"):
            yield event
