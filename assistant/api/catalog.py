"""GET /v1/search and POST /v1/events: catalog search and shopper behaviour for personalization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.schemas import EventsIn, SearchQuery, SearchResponse

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/search")
async def search(
    services: ServicesDep, principal: PrincipalDep, query: Annotated[SearchQuery, Query()]
) -> SearchResponse:
    """Hybrid search with filters, personalized for the key's shopper (or the agent's named one)."""
    return await services.catalog.search(principal, query)


@router.post("/events", status_code=202)
async def post_events(body: EventsIn, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record views, clicks, cart adds and purchases; the shopper's profile is rebuilt from them."""
    accepted, shoppers = await services.catalog.record(principal, body.events)
    return {"accepted": accepted, "shoppers": shoppers}
