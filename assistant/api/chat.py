"""POST /v1/chat: one turn streamed as SSE (or gathered as JSON); resume with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema
from sse_starlette import EventSourceResponse, ServerSentEvent

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import BODY, CALLER, ApiError, error_responses
from assistant.schemas import EVENT_ID_PATTERN, ChatRequest, ChatResponse, Delivered
from assistant.sessions.models import StoredEvent

router = APIRouter(prefix="/v1", tags=["chat"])

# The id of the last event a client received, `<turn_id>:<seq>`; a malformed one is a 422 like any field. Its
# schema is the string's alone: a header is absent or a string, never JSON's null.
LastEventId = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "pattern": EVENT_ID_PATTERN}),
    Header(
        alias="Last-Event-ID",
        pattern=EVENT_ID_PATTERN,
        description="the id (`<turn_id>:<seq>`) of the last event received, to resume after it",
    ),
]


async def sse_events(events: AsyncIterator[StoredEvent]) -> AsyncIterator[ServerSentEvent]:
    async for ev in events:  # an event without an id (typing, a snapshot) leaves the client's last id as it was
        yield ServerSentEvent(data=json.dumps(ev.data, separators=(",", ":")), event=ev.event, id=ev.id or None)


# Where a turn's session id goes next (OpenAPI links, for clients and for Schemathesis' stateful phase): the JSON
# answer (stream=false) and the 202 carry it as `session_id`; the stream carries it in its first event.
SESSION_OPERATIONS = {
    "GetSession": ("/v1/sessions/{session_id}", "get"),
    "SessionFeedback": ("/v1/sessions/{session_id}/feedback", "get"),
    "Typing": ("/v1/sessions/{session_id}/typing", "post"),
    "Scenario": ("/v1/agent/sessions/{session_id}/scenario", "get"),
    "Take": ("/v1/agent/sessions/{session_id}/take", "post"),
    "AgentMessage": ("/v1/agent/sessions/{session_id}/messages", "post"),
    "HandBack": ("/v1/agent/sessions/{session_id}/hand-back", "post"),
    "Close": ("/v1/agent/sessions/{session_id}/close", "post"),
}
SESSION_LINKS = {
    name: {
        "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method,
        "parameters": {"session_id": "$response.body#/session_id"},
    }
    for name, (path, method) in SESSION_OPERATIONS.items()
}


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "links": SESSION_LINKS},
        202: {
            "model": Delivered,
            "description": "a person owns the session: the message went to them, no bot turn",
            "links": SESSION_LINKS,
        },
        **error_responses(*CALLER, *BODY, 404),
    },
)
async def chat(
    body: ChatRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    stream: Annotated[bool, Query(description="false: one JSON response instead of SSE")] = True,
    last_event_id: LastEventId = None,
) -> EventSourceResponse | ChatResponse | JSONResponse:
    """Run one turn; with `Last-Event-ID` replay (and follow) the turn from its log instead (422 without the body's
    `session_id`). A message over the deployment's limit is 422 `message_too_long`; an agent key must name the
    `shopper_id` of a new session (422), a widget key may name only its own (403)."""
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
