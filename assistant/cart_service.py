"""The cart for the widget's add-to-cart button: the cart tools' own functions (the same checks, the same profile
signal as a cart add in chat), called for the caller's shopper."""

from __future__ import annotations

import asyncio
from typing import Any

from assistant.errors import OutOfStock, ProductNotFound, Unavailable
from assistant.principal import Principal
from assistant.schemas import CartLine, CartResponse, ProductCard
from assistant.tools.base import Toolbox, ToolContext, ToolError
from assistant.tools.cart import AddToCartArgs, ViewCartArgs
from retrieval.search import SearchEngine

# Tools take the turn they run in; a direct call from the API runs in none.
NO_TURN = "api"


class CartService:
    """Views and adds through the toolbox's cart tools; none configured (no cart store) is Unavailable."""

    def __init__(self, toolbox: Toolbox, engine: SearchEngine) -> None:
        self.toolbox = toolbox
        self.engine = engine

    def _context(self, principal: Principal, shopper: str | None) -> ToolContext:
        if "view_cart" not in self.toolbox:
            raise Unavailable("the cart is not configured")
        shopper_id = principal.shopper_for(shopper)
        return ToolContext(shopper_id=shopper_id, session_id=NO_TURN, turn_id=NO_TURN, role=principal.speaker)

    async def view(self, principal: Principal, shopper: str | None = None) -> CartResponse:
        ctx = self._context(principal, shopper)
        out = await asyncio.to_thread(self.toolbox.get("view_cart").fn, ViewCartArgs(), ctx)
        return await asyncio.to_thread(self._response, ctx.shopper_id, out.data["cart"])

    async def add(
        self, principal: Principal, product_id: str, quantity: int, shopper: str | None = None
    ) -> CartResponse:
        """Add a product in stock; ProductNotFound for an id the catalog lacks, OutOfStock when it cannot be added."""
        ctx = self._context(principal, shopper)
        args = AddToCartArgs(product_id=product_id, quantity=quantity)
        try:
            out = await asyncio.to_thread(self.toolbox.get("add_to_cart").fn, args, ctx)
        except ToolError as e:
            reason = e.data.get("reason")
            if reason == "unknown_product":
                raise ProductNotFound(e.message, {"product_id": product_id}) from None
            if reason == "out_of_stock":
                raise OutOfStock(e.message, {"product_id": product_id}) from None
            raise
        return await asyncio.to_thread(self._response, ctx.shopper_id, out.data["cart"])

    def _response(self, shopper_id: str, cart: dict[str, Any]) -> CartResponse:
        """The tool's cart with each line's product card."""
        products = self.engine.get_products([line["product_id"] for line in cart["items"]])
        lines = [
            CartLine(
                product_id=line["product_id"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                subtotal=line["subtotal"],
                product=ProductCard.of(products[line["product_id"]]),
            )
            for line in cart["items"]
            if line["product_id"] in products
        ]
        currencies = {line.product.currency for line in lines}
        return CartResponse(
            shopper_id=shopper_id,
            items=lines,
            count=cart["count"],
            total=cart["total"],
            currency=currencies.pop() if len(currencies) == 1 else None,
        )
