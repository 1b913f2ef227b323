"""The shopper's cart: add_to_cart, remove_from_cart, view_cart. Prices are read from the catalog each time."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.stores.carts import MAX_QUANTITY, CartStore
from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolError, ToolOutput
from retrieval.personalization import Event, ProfileStore, refresh_profile
from retrieval.search import SearchEngine


class AddToCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class RemoveFromCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)


class ViewCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _cart(engine: SearchEngine, carts: CartStore, shopper_id: str) -> dict[str, Any]:
    items = carts.items(shopper_id)
    found = engine.get_products([pid for pid, _ in items])
    lines: list[dict[str, Any]] = []
    for pid, qty in items:
        p = found.get(pid)
        if p is None:
            continue  # gone from the catalog: not sold any more
        price = p.price or 0.0
        lines.append(
            {
                "product_id": pid,
                "title": p.title,
                "unit_price": p.price,
                "currency": p.currency,
                "quantity": qty,
                "subtotal": round(price * qty, 2),
                "in_stock": p.in_stock,
            }
        )
    return {
        "items": lines,
        "count": sum(i["quantity"] for i in lines),
        "total": round(sum(i["subtotal"] for i in lines), 2),
    }


def add_to_cart(
    engine: SearchEngine, carts: CartStore, profiles: ProfileStore | None, args: AddToCartArgs, ctx: ToolContext
) -> ToolOutput:
    """Add a product in stock; with shopper profiles, the add also reshapes the shopper's profile."""
    product = engine.get_products([args.product_id]).get(args.product_id)
    if product is None:
        raise ToolError(
            "That product isn't in our catalog any more.", {"product_id": args.product_id, "reason": "unknown_product"}
        )
    if not product.in_stock:
        raise ToolError(
            f"The {product.title} is out of stock, so it can't be added to the cart.",
            {"product_id": product.id, "reason": "out_of_stock"},
        )
    quantity = carts.add(ctx.shopper_id, product.id, args.quantity)
    if profiles is not None:
        # A cart add is a strong signal: it joins the shopper's events and reshapes their profile.
        profiles.add_events([Event(shopper_id=ctx.shopper_id, product_id=product.id, kind="add_to_cart")])
        refresh_profile(profiles, engine, ctx.shopper_id)
    data = {"outcome": "added", "product_id": product.id, "title": product.title, "quantity": quantity}
    return ToolOutput(data={**data, "cart": _cart(engine, carts, ctx.shopper_id)}, citations=[f"product:{product.id}"])


def remove_from_cart(engine: SearchEngine, carts: CartStore, args: RemoveFromCartArgs, ctx: ToolContext) -> ToolOutput:
    """Take a product out of the cart; says whether it was there."""
    removed = carts.remove(ctx.shopper_id, args.product_id)
    data = {"outcome": "removed" if removed else "not_in_cart", "product_id": args.product_id}
    cart = _cart(engine, carts, ctx.shopper_id)
    return ToolOutput(data={**data, "cart": cart}, citations=[f"product:{args.product_id}"])


def view_cart(engine: SearchEngine, carts: CartStore, args: ViewCartArgs, ctx: ToolContext) -> ToolOutput:
    """The cart with catalog prices and the total."""
    cart = _cart(engine, carts, ctx.shopper_id)
    return ToolOutput(data={"cart": cart}, citations=[f"product:{i['product_id']}" for i in cart["items"]])


def tools(deps: ToolDeps) -> list[Tool]:
    """add_to_cart, remove_from_cart, view_cart over deps.carts and deps.engine (none without both)."""
    if deps.engine is None or deps.carts is None:
        return []
    engine, carts = deps.engine, deps.carts
    return [
        Tool(
            "add_to_cart",
            "Put a catalog product in the shopper's cart.",
            AddToCartArgs,
            partial(add_to_cart, engine, carts, deps.profiles),
            changes_state=True,
        ),
        Tool(
            "remove_from_cart",
            "Take a product out of the shopper's cart.",
            RemoveFromCartArgs,
            partial(remove_from_cart, engine, carts),
            changes_state=True,
        ),
        Tool(
            "view_cart",
            "The shopper's cart with catalog prices and the total.",
            ViewCartArgs,
            partial(view_cart, engine, carts),
        ),
    ]
