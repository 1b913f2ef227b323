"""POST /v1/visitors (a publishable key's page gets a visitor token) and GET /v1/widget/config."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from assistant.api.deps import AuthDep, ServicesDep, WidgetKeyDep
from assistant.api.errors import BODY, CALLER, error_responses
from assistant.schemas import VisitorRequest, VisitorTokenResponse, WidgetConfig
from assistant.settings import WIDGET_LANGUAGES

router = APIRouter(prefix="/v1", tags=["widget"])


@router.post(
    "/visitors",
    response_model=VisitorTokenResponse,
    responses=error_responses(401, 403, 422, 429, *BODY),
)
async def visitor_token(body: VisitorRequest, key: WidgetKeyDep, auth: AuthDep) -> VisitorTokenResponse:
    """A visitor token for the page of the publishable key in X-Widget-Key: for the store's signed shopper, else
    the still-valid token's own visitor (renewed), else a new anonymous visitor."""
    token, visitor = auth.tokens.identify(
        key.key_id, key.config, body.visitor_token, body.shopper_id, body.shopper_signature
    )
    return VisitorTokenResponse(token=token, shopper_id=visitor.shopper_id, expires_at=visitor.expires_at)


@router.get("/widget/config", response_model=WidgetConfig, responses=error_responses(*CALLER))
async def widget_config(key: WidgetKeyDep, services: ServicesDep) -> WidgetConfig:
    """What the widget may show here: photo search only when a CLIP checkpoint and indexed images exist."""
    settings = services.settings
    image_search = await asyncio.to_thread(lambda: services.engine.image_enabled)
    return WidgetConfig(
        image_search=image_search,
        languages=list(WIDGET_LANGUAGES),
        default_language=settings.widget_language,
        store_name=settings.store_name,
    )
