"""/healthz (process alive), /readyz (model and stores answer), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from assistant.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
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


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    body = services.metrics.render() if services is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
