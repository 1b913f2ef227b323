"""GET /v1/search and POST /v1/events: catalog search and shopper behaviour for personalization."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import ApiError
from assistant.schemas import EventsIn, ProductCard, SearchQuery, SearchResponse
from retrieval.filters import FilterError
from retrieval.personalization import Event, refresh_profile

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/search")
async def search(
    services: ServicesDep, principal: PrincipalDep, query: Annotated[SearchQuery, Query()]
) -> SearchResponse:
    """Hybrid search with filters, personalized for the key's shopper (or the agent's named one)."""
    try:
        filters = query.filters()
    except FilterError as e:
        raise ApiError(422, "invalid_request", f"invalid filters: {e}") from None
    shopper = principal.shopper_id if principal.role == "widget" else query.shopper_id
    profiles = services.components.profiles if services.components else None
    profile = profiles.get(shopper) if profiles is not None and shopper else None
    results = await asyncio.to_thread(services.engine.search, query.q, filters, query.k, "full", profile)
    return SearchResponse(query=query.q, products=[ProductCard.of(r.product, r) for r in results])


@router.post("/events", status_code=202)
async def post_events(body: EventsIn, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record views, clicks, cart adds and purchases; the shopper's profile is rebuilt from them."""
    shoppers = {principal.shopper_for(e.shopper_id) for e in body.events}
    known = services.engine.get_products([e.product_id for e in body.events])
    unknown = sorted({e.product_id for e in body.events} - known.keys())
    if unknown:
        raise ApiError(422, "unknown_product", f"unknown product ids: {unknown[:10]}", {"product_ids": unknown})
    if services.components is None:
        raise ApiError(503, "unavailable", "personalization store is not configured")
    events = [
        Event(
            shopper_id=principal.shopper_for(e.shopper_id),
            product_id=e.product_id,
            kind=e.kind,
            ts=e.at or datetime.now(UTC),
        )
        for e in body.events
    ]
    profiles = services.components.profiles
    await asyncio.to_thread(profiles.add_events, events)
    for shopper in shoppers:
        await asyncio.to_thread(refresh_profile, profiles, services.engine, shopper)
    return {"accepted": len(events), "shoppers": sorted(shoppers)}
