"""The agents' endpoints (agent keys only): the queue, take over, message or note, act with the tools, hand back,
close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import BODY, CALLER, error_responses
from assistant.api.sessions import SessionId
from assistant.console_replies import CannedReplies
from assistant.scenario_export import scenario_name
from assistant.schemas import AgentActionIn, AgentMessageIn, LoggedEvent, Queue, TakeRequest
from assistant.takeover import Control, SessionState

router = APIRouter(prefix="/v1/agent", tags=["agent"])

ACTION_ERRORS = error_responses(*CALLER, *BODY, 404, 409)


@router.get("/sessions", responses=error_responses(*CALLER))
async def queue(
    services: ServicesDep,
    principal: PrincipalDep,
    state: Annotated[list[SessionState] | None, Query(description="repeatable; default every state")] = None,
    has_handoff: Annotated[bool | None, Query(description="only sessions with (true) or without (false) one")] = None,
    q: Annotated[str | None, Query(max_length=200, description="text the conversation contains")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    mine: Annotated[bool, Query(description="only sessions the calling agent owns")] = False,
    thumbs_down: Annotated[bool, Query(description="only sessions with an answer rated thumbs down")] = False,
    intent: Annotated[str | None, Query(max_length=64, description="the intent of the bot's latest turn")] = None,
) -> Queue:
    """Sessions by state: waiting for an agent first (longest wait first), then with an agent, with the bot, closed."""
    return await services.agent.queue(principal, state, has_handoff, q, limit, mine, thumbs_down, intent)


@router.get("/replies", responses=error_responses(*CALLER))
async def replies(services: ServicesDep, principal: PrincipalDep) -> CannedReplies:
    """The canned replies the console offers in its reply box (`SHOP_CONSOLE_REPLIES_PATH`)."""
    return await services.agent.replies(principal, services.settings.console_replies_path)


@router.get(
    "/sessions/{session_id}/scenario",
    responses={200: {"content": {"application/yaml": {}}}, **error_responses(*CALLER, 404, 409)},
    response_class=Response,
)
async def scenario(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Save as test case: the conversation as a scenario file of the offline dialogue evaluation (format:
    eval/dialogues/scenario.py), its checks what was observed: intents, tools by name, cards, citation kinds
    (409 when the bot answered nothing)."""
    text = await services.agent.scenario(principal, session_id)
    name = scenario_name(session_id)
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'},
    )


@router.post("/sessions/{session_id}/take", responses=ACTION_ERRORS)
async def take(session_id: SessionId, services: ServicesDep, principal: PrincipalDep, body: TakeRequest) -> Control:
    """Own the session: a bot turn in flight is cancelled, the shopper's stream gets `agent_joined` (409 when another
    agent owns it)."""
    return await services.agent.take(principal, session_id, body.name)


@router.post("/sessions/{session_id}/messages", status_code=201, responses=ACTION_ERRORS)
async def message(
    session_id: SessionId, services: ServicesDep, principal: PrincipalDep, body: AgentMessageIn
) -> LoggedEvent:
    """The owning agent's message, live on the shopper's stream; `internal: true`: a note any agent may add, never
    sent to the shopper. 409 unless the session is with an agent (with this one, for a message)."""
    event = await services.agent.say(principal, session_id, body.text, body.internal)
    return LoggedEvent(id=event.id, event=event.event, data=event.data)


@router.post("/sessions/{session_id}/actions", status_code=201, responses=ACTION_ERRORS)
async def act(
    session_id: SessionId, services: ServicesDep, principal: PrincipalDep, body: AgentActionIn
) -> LoggedEvent:
    """The owning agent uses a tool for the shopper (order_status, cancel_order, start_return, view_cart,
    add_to_cart, …) under the tools' own rules. A change comes back `needs_confirmation` (agents only); the same call
    with `confirm: true` carries it out, and the shopper's stream gets the `action` (`by` the agent)."""
    event = await services.agent.act(principal, session_id, body.tool, body.arguments, body.confirm)
    return LoggedEvent(id=event.id, event=event.event, data=event.data)


@router.post("/sessions/{session_id}/hand-back", responses=ACTION_ERRORS)
async def hand_back(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> Control:
    """Give the session back to the bot (`agent_left`); its next answer has the whole conversation in context."""
    return await services.agent.hand_back(principal, session_id)


@router.post("/sessions/{session_id}/close", responses=ACTION_ERRORS)
async def close(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> Control:
    """Close the conversation (a bot turn in flight is cancelled); the shopper writing again reopens it with the
    bot."""
    return await services.agent.close(principal, session_id)
