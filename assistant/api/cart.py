"""GET /v1/cart and POST /v1/cart/items: the caller's cart, for the widget's add-to-cart button."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from assistant.api.deps import PrincipalDep, ServicesDep
from assistant.api.errors import BODY, CALLER, error_responses
from assistant.schemas import CartItemIn, CartResponse

router = APIRouter(prefix="/v1/cart", tags=["cart"])


@router.get("", responses=error_responses(*CALLER))
async def get_cart(
    services: ServicesDep,
    principal: PrincipalDep,
    shopper_id: Annotated[str | None, Query(min_length=1, max_length=64, description="agent keys only")] = None,
) -> CartResponse:
    """The cart's lines with their product cards, catalog prices and the total."""
    return await services.cart.view(principal, shopper_id)


@router.post("/items", responses=error_responses(*CALLER, *BODY, 404, 409))
async def add_to_cart(body: CartItemIn, services: ServicesDep, principal: PrincipalDep) -> CartResponse:
    """Add a product (404: not in the catalog; 409: out of stock); returns the updated cart."""
    return await services.cart.add(principal, body.product_id, body.quantity, body.shopper_id)
