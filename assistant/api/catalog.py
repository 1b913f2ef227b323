"""GET /v1/search and POST /v1/events: catalog search and shopper behaviour for personalization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.formparsers import MultiPartException

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import BODY, CALLER, ApiError, error_responses
from assistant.schemas import EventsIn, SearchQuery, SearchResponse

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/search", responses=error_responses(*CALLER))
async def search(
    services: ServicesDep, principal: PrincipalDep, query: Annotated[SearchQuery, Query()]
) -> SearchResponse:
    """Hybrid search with filters, personalized for the key's shopper (or the agent's named one); 422 when
    min_price is above max_price."""
    return await services.catalog.search(principal, query)


# The multipart body: the photo under `image` (or `file`); one of them is required.
PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "the photo (JPEG, PNG, WebP…)"},
                        "file": {"type": "string", "format": "binary", "description": "the photo under this name"},
                    },
                    "anyOf": [{"required": ["image"]}, {"required": ["file"]}],
                    "additionalProperties": False,
                }
            }
        },
    }
}


@router.post("/search/image", responses=error_responses(*CALLER, *BODY, 409), openapi_extra=PHOTO_BODY)
async def search_image(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    k: Annotated[int, Query(ge=1, le=50, description="how many products to return")] = 10,
) -> SearchResponse:
    """Products that look like the photo (409 when photo search is not configured; GET /v1/widget/config says; 422
    for an upload that is not a readable image)."""
    limit = services.settings.max_image_bytes
    photo = await read_photo(request, limit)
    if len(photo) > limit:
        raise ApiError(413, "payload_too_large", f"photo over {limit} bytes")
    return await services.catalog.search_photo(photo, k)


async def read_photo(request: Request, limit: int) -> bytes:
    """The photo's bytes from the multipart field `image` (or `file`): a file part, or a plain one (its bytes as
    sent); 422 without either or with another field, 400 for a body that is not a multipart form (or has more than
    four parts)."""
    try:
        form = await request.form(max_files=4, max_fields=4)
    except (AssertionError, MultiPartException, ValueError) as e:  # not multipart, or a malformed one
        raise ApiError(400, "malformed_body", f"the body is not a readable multipart form: {e}") from None
    try:
        unknown = sorted(set(form.keys()) - {"image", "file"})
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown fields: {', '.join(unknown)}; send the photo as 'image'")
        part = form.get("image") or form.get("file")
        if part is None:
            raise ApiError(422, "invalid_request", "send the photo as the multipart field 'image'")
        if isinstance(part, str):
            return part.encode()
        return await part.read(limit + 1)
    finally:
        await form.close()


@router.post("/events", status_code=202, responses=error_responses(*CALLER, *BODY, 404))
async def post_events(body: EventsIn, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Record views, clicks, cart adds and purchases; the shopper's profile is rebuilt from them. Nothing is stored
    when any event is refused: 404 for a product the catalog does not hold, 403 for another shopper's (widget keys),
    422 for an agent's event without its shopper_id; 503 without a profile store."""
    accepted, shoppers = await services.catalog.record(principal, body.events)
    return {"accepted": accepted, "shoppers": shoppers}
