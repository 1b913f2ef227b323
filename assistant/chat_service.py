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

from assistant.errors import EventNotFound, InvalidLastEventId, MessageEmpty, MessageTooLong, SessionNotFound
from assistant.intents.router import RoutedIntent
from assistant.planning import Planner, TurnInput
from assistant.principal import Principal
from assistant.schemas import ChatResponse
from assistant.sessions.base import SessionStore
from assistant.sessions.models import InvalidEventId, Session, StoredEvent, parse_event_id
from assistant.turns import transcript
from assistant.turns.live import LiveTurns
from assistant.turns.runner import TurnRunner
from assistant.turns.summaries import Summarizer


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
    ) -> None:
        self.sessions = sessions
        self.planner = planner
        self.runner = runner
        self.summarizer = summarizer
        self.max_message_chars = max_message_chars
        self.live = LiveTurns(sessions, resume_grace_s)

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
        """Start the turn and follow it. The turn runs in its own task: when its last follower leaves (the client
        disconnected) it is cancelled after the resume grace, unless someone resumes it."""
        session = opened.session
        try:
            turn = await self.sessions.begin_turn(session.session_id, opened.message)
        except BaseException:
            opened.routing.cancel()
            raise
        inp = TurnInput(session, turn.turn_id, opened.message, role=principal.speaker, routing=opened.routing)
        live = self.live.start(turn.turn_id, lambda live: self.runner.run(inp, turn, live))
        async for event in self.live.follow(live):
            yield event

    async def collect(self, principal: Principal, opened: OpenedTurn) -> ChatResponse:
        """The non-streaming variant: run the same turn and gather its events."""
        return await transcript.fold(opened.session.session_id, self.stream(principal, opened))

    async def resume(self, principal: Principal, session_id: str, last_event_id: str) -> AsyncIterator[StoredEvent]:
        """Events after `last_event_id`, following the turn live while it runs in this process."""
        session = await self.session_for(principal, session_id)
        try:
            turn_id, _ = parse_event_id(last_event_id)
        except InvalidEventId as e:
            raise InvalidLastEventId(str(e)) from e
        if not any(t.turn_id == turn_id for t in session.turns):
            raise EventNotFound(f"no turn {turn_id!r} in session {session_id!r}")
        return self.live.replay(session_id, turn_id, last_event_id)

    async def aclose(self) -> None:
        await self.summarizer.aclose()
