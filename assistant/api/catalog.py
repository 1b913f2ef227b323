"""GET /v1/search and POST /v1/events: catalog search and shopper behaviour for personalization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import ApiError, error_responses
from assistant.schemas import EventsIn, SearchQuery, SearchResponse

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/search")
async def search(
    services: ServicesDep, principal: PrincipalDep, query: Annotated[SearchQuery, Query()]
) -> SearchResponse:
    """Hybrid search with filters, personalized for the key's shopper (or the agent's named one)."""
    return await services.catalog.search(principal, query)


@router.post("/search/image", responses=error_responses(401, 403, 409, 413, 422, 429, 503))
async def search_image(
    services: ServicesDep,
    principal: PrincipalDep,
    image: Annotated[UploadFile | None, File(description="the shopper's photo (JPEG, PNG, WebP…)")] = None,
    file: Annotated[UploadFile | None, File(description="the photo under this field name instead")] = None,
    k: Annotated[int, Query(ge=1, le=50, description="how many products to return")] = 10,
) -> SearchResponse:
    """Products that look like the photo (409 when photo search is not configured; GET /v1/widget/config says)."""
    upload = image or file
    if upload is None:
        raise ApiError(422, "invalid_request", "send the photo as the multipart field 'image'")
    limit = services.settings.max_image_bytes
    photo = await upload.read(limit + 1)
    if len(photo) > limit:
        raise ApiError(413, "payload_too_large", f"photo over {limit} bytes")
    return await services.catalog.search_photo(photo, k)


@router.post("/events", status_code=202)
async def post_events(body: EventsIn, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record views, clicks, cart adds and purchases; the shopper's profile is rebuilt from them."""
    accepted, shoppers = await services.catalog.record(principal, body.events)
    return {"accepted": accepted, "shoppers": shoppers}
