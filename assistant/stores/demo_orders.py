"""Generated demo orders for the Retail Demo Store shoppers (the dataset has none): deterministic and idempotent."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.stores.orders import Order, OrderItem, OrderStatus, OrderStore, ReturnInfo, return_id_for
from retrieval.personas import load_users, persona_categories, products_by_category
from retrieval.product import Product

DEFAULT_SEED = 20240611
_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: ids get read out loud and typed


def order_id_for(seed: int, key: str, salt: int = 0) -> str:
    """An order id drawn from (seed, key, salt): the same inputs always give the same id."""
    digest = hashlib.sha256(f"{seed}|{key}|{salt}".encode()).digest()
    return "ORD-" + "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:6])


def _tracking(rng: random.Random) -> str:
    return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))


def generate_orders(
    user: dict[str, Any],
    pools: dict[str, list[Product]],
    seed: int,
    now: datetime,
) -> list[tuple[str, Order]]:
    """(seed key, order) pairs for one shopper, drawn from their persona's categories; ids not yet unique."""
    shopper_id = str(user.get("id") or "").strip()
    categories = [c for c in persona_categories(str(user.get("persona") or "")) if pools.get(c)]
    if not shopper_id or not categories:
        return []
    # One RNG per shopper: a shopper's orders do not depend on who else is seeded.
    rng = random.Random(f"{seed}|{shopper_id}")
    out: list[tuple[str, Order]] = []
    for k in range(rng.randint(1, 4)):
        # The newest order is recent, so "where is my order?" has something in flight to find.
        age = rng.uniform(0.2, 8.0) if k == 0 else rng.uniform(8.0, 120.0)
        created = now - timedelta(days=age)
        items: dict[str, OrderItem] = {}
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            product = rng.choice(pools[rng.choice(categories)])
            if product.id not in items:
                items[product.id] = OrderItem(
                    product_id=product.id,
                    title=product.title,
                    unit_price=float(product.price or 0.0),
                    quantity=rng.choice((1, 1, 1, 2)),
                )
        status, fields = _lifecycle(rng, created, age, now)
        order = Order(
            order_id="ORD-AAAAAA",  # placeholder; unique ids are assigned by seed_demo_orders
            shopper_id=shopper_id,
            status=status,
            items=list(items.values()),
            created_at=created,
            **fields,
        )
        out.append((f"{shopper_id}#{k}", order))
    return out


def _lifecycle(rng: random.Random, created: datetime, age: float, now: datetime) -> tuple[OrderStatus, dict[str, Any]]:
    """Status and timestamps consistent with the order's age: placed < 1.5 days, shipped < 5, then delivered."""
    if age >= 8.0 and rng.random() < 0.06:
        return "cancelled", {"cancelled_at": created + timedelta(hours=rng.uniform(1, 20))}
    if age < 1.5:
        return "placed", {}
    shipped = created + timedelta(days=rng.uniform(0.5, 1.5))
    tracking = _tracking(rng)
    if age < 5.0:
        return "shipped", {"shipped_at": shipped, "tracking": tracking}
    delivered = min(shipped + timedelta(days=rng.uniform(1.5, 3.5)), now)
    fields: dict[str, Any] = {"shipped_at": shipped, "delivered_at": delivered, "tracking": tracking}
    if age >= 15.0 and rng.random() < 0.05:
        return "returned", fields
    return "delivered", fields


def seed_demo_orders(
    store: OrderStore,
    products: Sequence[Product],
    users_path: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    limit: int | None = None,
) -> int:
    """Generate demo orders for the shoppers in `users_path` and store the ones not stored yet.

    Same users, products, seed and `now` give the same orders; running it again adds nothing (each
    order has a seed key `<shopper>#<n>`), and it never overwrites an order a shopper has changed.
    Returns how many orders were added.
    """
    now = now or datetime.now(UTC)
    users = load_users(users_path)[:limit] if limit is not None else load_users(users_path)
    priced = [p for p in products if p.price is not None]
    all_categories = sorted({c for u in users for c in persona_categories(str(u.get("persona") or ""))})
    pools = products_by_category(priced, all_categories)
    pending: list[tuple[str, Order]] = []
    for user in users:
        pending.extend(generate_orders(user, pools, seed, now))
    if not pending:
        return 0
    known = store.has_seed_keys([k for k, _ in pending])
    taken = store.order_ids()
    keys: list[str | None] = []
    orders: list[Order] = []
    for key, order in pending:
        if key in known:
            continue
        salt = 0
        order_id = order_id_for(seed, key, salt)
        while order_id in taken:  # collisions are rare; resolve them the same way on every run
            salt += 1
            order_id = order_id_for(seed, key, salt)
        taken.add(order_id)
        keys.append(key)
        orders.append(_finish(order, order_id))
    return store.add(orders, keys) if orders else 0


def _finish(order: Order, order_id: str) -> Order:
    """Give the order its id and, for a generated return, the return record under that id."""
    order = order.model_copy(update={"order_id": order_id})
    if order.status != "returned":
        return order
    ids = [i.product_id for i in order.items]
    returned_at = order.delivered_at or order.created_at
    info = ReturnInfo(
        return_id=return_id_for(order_id, ids),
        product_ids=ids,
        reason="did not fit",
        status="refunded",
        refund_amount=order.total,
        created_at=returned_at + timedelta(days=3),
    )
    return order.model_copy(update={"returns": [info]})
