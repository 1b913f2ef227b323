"""The session stream: every event of a session as it happens (its turns' events, a person's messages, state
changes, typing), resumable by Last-Event-ID across turns.

It reads the one event log the turn streams read: an id `<turn_id>:<seq>` names a place in the session (that turn,
then every later turn in order), so a client that reconnects with the last id it saw gets the rest, then follows
live. Typing is live only (no id, never logged).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from assistant.errors import EventNotFound, InvalidLastEventId
from assistant.sessions.base import SessionStore
from assistant.sessions.models import InvalidEventId, StoredEvent, parse_event_id
from assistant.turns.hubs import SessionHub

Visible = Callable[[StoredEvent], bool]


async def check_resume_point(sessions: SessionStore, session_id: str, last_event_id: str) -> None:
    """InvalidLastEventId for a malformed id, EventNotFound for one this session never logged."""
    try:
        turn_id, _ = parse_event_id(last_event_id)
    except InvalidEventId as e:
        raise InvalidLastEventId(str(e)) from e
    try:
        await sessions.events_after(session_id, last_event_id, turn_id=turn_id)
    except (InvalidEventId, LookupError) as e:
        raise EventNotFound(str(e)) from e


async def follow_session(
    sessions: SessionStore,
    hub: SessionHub,
    session_id: str,
    last_event_id: str | None,
    visible: Visible,
    first: list[StoredEvent] | None = None,
) -> AsyncIterator[StoredEvent]:
    """`first` (a snapshot), then the logged events after `last_event_id` (none without one), then every event
    published from now on, each once, those `visible` rejects left out. Subscribes before reading the log, so
    nothing logged meanwhile is missed."""
    with hub.subscribe(session_id) as queue:
        seen: dict[str, int] = {}  # turn id -> the highest seq delivered
        for event in first or []:
            yield event
        if last_event_id is not None:
            after_turn, after_seq = parse_event_id(last_event_id)
            seen[after_turn] = after_seq
            session = await sessions.get_session(session_id)
            turn_ids = [t.turn_id for t in session.turns] if session is not None else []
            start = turn_ids.index(after_turn) if after_turn in turn_ids else len(turn_ids)
            for turn_id in turn_ids[start:]:
                resume = last_event_id if turn_id == after_turn else None
                for event in await sessions.events_after(session_id, resume, turn_id=turn_id):
                    seen[turn_id] = event.seq
                    if visible(event):
                        yield event
        while True:
            live = await queue.get()
            if live is None:  # fell too far behind and was dropped: the client resumes from the log
                return
            if live.id:
                if live.seq <= seen.get(live.turn_id, -1):
                    continue  # already read from the log
                seen[live.turn_id] = live.seq
            if visible(live):
                yield live
