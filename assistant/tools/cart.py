"""The shopper's cart: add_to_cart, remove_from_cart, view_cart. Prices are read from the catalog each time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.tools.base import Tool, ToolContext, ToolError, ToolOutput
from retrieval.product import Product

MAX_QUANTITY = 99


class CartStore:
    """One row per (shopper, product) in SQLite; each change is one transaction."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cart (shopper_id TEXT NOT NULL, product_id TEXT NOT NULL, "
            "quantity INTEGER NOT NULL, added_at TEXT NOT NULL, PRIMARY KEY (shopper_id, product_id))"
        )
        self._lock = threading.Lock()

    def add(self, shopper_id: str, product_id: str, quantity: int) -> int:
        """Add `quantity` (capped at MAX_QUANTITY in all); returns the new quantity."""
        with self._lock:
            self._db.execute(
                "INSERT INTO cart VALUES (?, ?, ?, ?) ON CONFLICT (shopper_id, product_id) "
                "DO UPDATE SET quantity = min(quantity + excluded.quantity, ?)",
                (shopper_id, product_id, min(quantity, MAX_QUANTITY), datetime.now(UTC).isoformat(), MAX_QUANTITY),
            )
            row = self._db.execute(
                "SELECT quantity FROM cart WHERE shopper_id = ? AND product_id = ?", (shopper_id, product_id)
            ).fetchone()
        return int(row[0])

    def remove(self, shopper_id: str, product_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM cart WHERE shopper_id = ? AND product_id = ?", (shopper_id, product_id))
        return cur.rowcount > 0

    def items(self, shopper_id: str) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT product_id, quantity FROM cart WHERE shopper_id = ? ORDER BY added_at", (shopper_id,)
            ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def close(self) -> None:
        self._db.close()


class AddToCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class RemoveFromCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)


class ViewCartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartTools:
    """Cart tools over a CartStore; `on_add(shopper_id, product_id)` feeds personalization."""

    def __init__(
        self,
        store: CartStore,
        get_products: Callable[[Sequence[str]], dict[str, Product]],
        on_add: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.get_products = get_products
        self.on_add = on_add

    def tools(self) -> list[Tool]:
        return [
            Tool("add_to_cart", "Put a catalog product in the shopper's cart.", AddToCartArgs, self.add_to_cart, True),
            Tool(
                "remove_from_cart",
                "Take a product out of the shopper's cart.",
                RemoveFromCartArgs,
                self.remove_from_cart,
                True,
            ),
            Tool("view_cart", "The shopper's cart with catalog prices and the total.", ViewCartArgs, self.view_cart),
        ]

    def _cart(self, shopper_id: str) -> dict[str, Any]:
        items = self.store.items(shopper_id)
        found = self.get_products([pid for pid, _ in items])
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

    def add_to_cart(self, args: AddToCartArgs, ctx: ToolContext) -> ToolOutput:
        product = self.get_products([args.product_id]).get(args.product_id)
        if product is None:
            raise ToolError(f"no product {args.product_id} in the catalog")
        if not product.in_stock:
            raise ToolError(f"the {product.title} is out of stock", {"product_id": product.id})
        quantity = self.store.add(ctx.shopper_id, product.id, args.quantity)
        if self.on_add is not None:
            self.on_add(ctx.shopper_id, product.id)
        data = {"outcome": "added", "product_id": product.id, "title": product.title, "quantity": quantity}
        return ToolOutput(data={**data, "cart": self._cart(ctx.shopper_id)}, citations=[f"product:{product.id}"])

    def remove_from_cart(self, args: RemoveFromCartArgs, ctx: ToolContext) -> ToolOutput:
        removed = self.store.remove(ctx.shopper_id, args.product_id)
        data = {"outcome": "removed" if removed else "not_in_cart", "product_id": args.product_id}
        return ToolOutput(data={**data, "cart": self._cart(ctx.shopper_id)}, citations=[f"product:{args.product_id}"])

    def view_cart(self, args: ViewCartArgs, ctx: ToolContext) -> ToolOutput:
        cart = self._cart(ctx.shopper_id)
        return ToolOutput(data={"cart": cart}, citations=[f"product:{i['product_id']}" for i in cart["items"]])
