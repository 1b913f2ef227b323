"""POST /v1/chat: one turn streamed as SSE (or gathered as JSON); resume with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import ApiError
from assistant.schemas import ChatRequest, ChatResponse
from assistant.sessions.models import StoredEvent

router = APIRouter(prefix="/v1", tags=["chat"])


async def sse_events(events: AsyncIterator[StoredEvent]) -> AsyncIterator[ServerSentEvent]:
    async for ev in events:
        yield ServerSentEvent(data=json.dumps(ev.data, separators=(",", ":")), event=ev.event, id=ev.id)


@router.post("/chat", response_model=ChatResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def chat(
    body: ChatRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    stream: Annotated[bool, Query(description="false: one JSON response instead of SSE")] = True,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse | ChatResponse:
    """Run one turn; with `Last-Event-ID` replay (and follow) the turn from its log instead."""
    chat = services.chat
    ping = services.settings.heartbeat_s
    if last_event_id:
        if body.session_id is None:
            raise ApiError(422, "invalid_request", "resuming needs the session_id of the turn")
        return EventSourceResponse(sse_events(await chat.resume(principal, body.session_id, last_event_id)), ping=ping)
    opened = await chat.open(principal, body.message, body.session_id, body.shopper_id)
    if not stream:
        return await chat.collect(principal, opened)
    return EventSourceResponse(sse_events(chat.stream(principal, opened)), ping=ping)
