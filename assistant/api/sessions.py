"""GET /v1/sessions/{id}, the GET form of resume (for EventSource clients), the session stream and typing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from sse_starlette import EventSourceResponse

from assistant.api.chat import LastEventId, sse_events
from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import CALLER, error_responses
from assistant.schemas import EVENT_ID_PATTERN, Typed

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/{session_id}", responses=error_responses(*CALLER, 404))
async def get_session(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """The session with its turns and its `control` (state, agent, handoff); only its shopper's widget key or an
    agent key may read it. A person's turn (`kind: person`) holds its `messages` (agents' notes: agents only)."""
    return await services.agent.session_view(principal, session_id)


@router.get(
    "/{session_id}/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(*CALLER, 404)},
)
async def session_stream(
    session_id: SessionId,
    services: ServicesDep,
    principal: PrincipalDep,
    last_event_id: LastEventId = None,
    after: Annotated[
        str | None,
        Query(pattern=EVENT_ID_PATTERN, description="as Last-Event-ID, for a first connection that cannot set headers"),
    ] = None,
) -> EventSourceResponse:
    """Every event of the session as it happens: its turns' events, `message`, `agent_joined`, `agent_left`,
    `state` (ids `<turn_id>:<seq>`), and `typing` (live only, no id). Opens with a `state` snapshot (no id); with
    Last-Event-ID, the logged events after it first. The shopper never gets agents' internal notes."""
    events = await services.agent.stream(principal, session_id, last_event_id or after)
    return EventSourceResponse(sse_events(events), ping=services.settings.heartbeat_s)


@router.post("/{session_id}/typing", responses=error_responses(*CALLER, 404, 409))
async def typing(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> Typed:
    """The caller is typing: the shopper (to the agent who owns the session) or the owning agent (to the shopper);
    the other side's session stream gets `typing`. A shopper typing to the bot is not delivered."""
    return Typed(delivered=await services.agent.typing(principal, session_id))


@router.get(
    "/{session_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(*CALLER, 404)},
)
async def resume_events(
    session_id: SessionId,
    services: ServicesDep,
    principal: PrincipalDep,
    last_event_id: Annotated[
        str,
        Header(
            alias="Last-Event-ID",
            pattern=EVENT_ID_PATTERN,
            description="the id (`<turn_id>:<seq>`) of the last event received (EventSource sends it)",
        ),
    ],
) -> EventSourceResponse:
    """Replay a turn's events after Last-Event-ID (the header EventSource sends when it reconnects); 404 when the
    session has no such turn or event."""
    events = await services.chat.resume(principal, session_id, last_event_id)
    return EventSourceResponse(sse_events(events), ping=services.settings.heartbeat_s)
