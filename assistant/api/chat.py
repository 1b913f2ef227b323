"""POST /v1/chat: one turn streamed as SSE (or gathered as JSON); resume with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import ApiError, error_responses
from assistant.schemas import ChatRequest, ChatResponse, Delivered
from assistant.sessions.models import StoredEvent

router = APIRouter(prefix="/v1", tags=["chat"])


async def sse_events(events: AsyncIterator[StoredEvent]) -> AsyncIterator[ServerSentEvent]:
    async for ev in events:  # an event without an id (typing, a snapshot) leaves the client's last id as it was
        yield ServerSentEvent(data=json.dumps(ev.data, separators=(",", ":")), event=ev.event, id=ev.id or None)


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        202: {"model": Delivered, "description": "a person owns the session: the message went to them, no bot turn"},
        **error_responses(400, 401, 403, 404, 413, 422, 429, 503),
    },
)
async def chat(
    body: ChatRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    stream: Annotated[bool, Query(description="false: one JSON response instead of SSE")] = True,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse | ChatResponse | JSONResponse:
    """Run one turn; with `Last-Event-ID` replay (and follow) the turn from its log instead."""
    chat = services.chat
    ping = services.settings.heartbeat_s
    if last_event_id:
        if body.session_id is None:
            raise ApiError(422, "invalid_request", "resuming needs the session_id of the turn")
        return EventSourceResponse(sse_events(await chat.resume(principal, body.session_id, last_event_id)), ping=ping)
    opened = await chat.open(principal, body.message, body.session_id, body.shopper_id)
    delivered = await services.agent.to_person(principal, opened.session, opened.message)
    if delivered is not None:
        opened.routing.cancel()
        return JSONResponse(delivered.model_dump(mode="json"), status_code=202)
    if not stream:
        return await chat.collect(principal, opened)
    # Started before the response: a turn the store cannot begin is an error response, not an empty stream.
    return EventSourceResponse(sse_events(await chat.start(principal, opened)), ping=ping)
