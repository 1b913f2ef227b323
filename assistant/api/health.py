"""/healthz (process alive), /readyz (model and stores answer), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from assistant.api.errors import ApiError
from assistant.schemas import ErrorResponse
from assistant.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(BaseModel):
    status: Literal["ready", "unavailable", "starting"]
    checks: dict[str, bool] = Field(description="each dependency: answering or not")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "starting, or a dependency does not answer (see checks)"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the model server and the session store answer; 503 with what is down otherwise."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
    checks: dict[str, Any] = {}
    try:
        checks["llm"] = await asyncio.wait_for(services.llm.ready(), timeout=3)
    except Exception:  # any failure means not ready
        checks["llm"] = False
    try:
        checks["sessions"] = await asyncio.wait_for(services.sessions.ping(), timeout=3)
    except Exception:
        checks["sessions"] = False
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _check_metrics_access(request: Request, token: str | None) -> None:
    """Metrics say how busy the store is and what fails: operators only. With SHOP_METRICS_TOKEN, its bearer;
    without, loopback clients only."""
    if token:
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "send the metrics token: 'Authorization: Bearer <SHOP_METRICS_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    host = request.client.host if request.client else ""
    if host not in LOOPBACK:
        raise ApiError(403, "forbidden", "metrics are served to loopback clients only unless SHOP_METRICS_TOKEN is set")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        401: {"model": ErrorResponse, "description": "SHOP_METRICS_TOKEN is set and the bearer is not it"},
        403: {"model": ErrorResponse, "description": "no SHOP_METRICS_TOKEN and the client is not on loopback"},
    },
)
async def metrics(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    _check_metrics_access(request, services.settings.metrics_token if services is not None else None)
    body = services.metrics.render() if services is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
