"""GET /v1/sessions/{id} and the GET form of resume (for EventSource clients)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from sse_starlette import EventSourceResponse

from assistant.api.chat import sse_events
from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import ApiError

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/{session_id}")
async def get_session(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """The session with its turns; only its shopper's widget key or an agent key may read it."""
    session = await services.chat.session_for(principal, session_id)
    return session.model_dump(mode="json")


@router.get("/{session_id}/events")
async def resume_events(
    session_id: SessionId,
    services: ServicesDep,
    principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Replay a turn's events after Last-Event-ID (the header EventSource sends when it reconnects)."""
    if not last_event_id:
        raise ApiError(400, "missing_last_event_id", "send the Last-Event-ID header of the last event you received")
    events = await services.chat.resume(principal, session_id, last_event_id)
    return EventSourceResponse(sse_events(events), ping=services.settings.heartbeat_s)
