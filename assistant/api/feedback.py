"""POST /v1/feedback (thumbs on an answer) and GET /v1/sessions/{id}/feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import BODY, CALLER, error_responses
from assistant.api.sessions import SessionId
from assistant.schemas import FeedbackIn, FeedbackList

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", status_code=201, responses=error_responses(*CALLER, *BODY, 404))
async def give_feedback(body: FeedbackIn, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Rate a turn of a session the caller may read; a second rating of the turn replaces the first."""
    await services.feedback.give(principal, body)
    return {"ok": True}


@router.get("/sessions/{session_id}/feedback", responses=error_responses(*CALLER, 404))
async def session_feedback(session_id: SessionId, services: ServicesDep, principal: PrincipalDep) -> FeedbackList:
    """The session's ratings, oldest first (agents, or the session's own shopper)."""
    return FeedbackList(session_id=session_id, feedback=await services.feedback.for_session(principal, session_id))
