"""Orders, the rules for changing them (cancel, return), and the OrderStore that applies each change at most once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from assistant.stores.records import Record, RecordStore

OrderStatus = Literal["placed", "shipped", "delivered", "cancelled", "returned"]

# The store's return policy (assistant/store_policies/returns.md, "Returns window"): 30 days from delivery.
RETURN_WINDOW_DAYS = 30
RETURN_POLICY_REF = "policy:returns#returns-window"  # that section, as a policy citation


def _now() -> datetime:
    return datetime.now(UTC)


class OrderItem(BaseModel):
    """One line of an order; title and unit price are the catalog's at the time of the order."""

    product_id: str
    title: str
    unit_price: float = Field(ge=0)
    quantity: int = Field(ge=1)

    @property
    def subtotal(self) -> float:
        return round(self.unit_price * self.quantity, 2)


class ReturnInfo(BaseModel):
    """A return the shopper started: which items, why, and how much comes back."""

    return_id: str
    product_ids: list[str]
    reason: str
    status: Literal["requested", "received", "refunded"] = "requested"
    refund_amount: float
    created_at: datetime


class Order(BaseModel):
    """An order and its lifecycle timestamps."""

    order_id: str = Field(pattern=r"^ORD-[A-Z0-9]{6}$")
    shopper_id: str
    status: OrderStatus
    currency: str = "USD"
    items: list[OrderItem] = Field(min_length=1)
    created_at: datetime
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    tracking: str | None = None
    returns: list[ReturnInfo] = Field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(i.subtotal for i in self.items), 2)

    def returned_product_ids(self) -> set[str]:
        return {pid for r in self.returns for pid in r.product_ids}

    def return_deadline(self) -> datetime | None:
        return self.delivered_at + timedelta(days=RETURN_WINDOW_DAYS) if self.delivered_at else None


class NotAllowed(Exception):
    """The change is not allowed in the order's current state; the message says why and what to do instead."""

    def __init__(self, message: str, suggestion: str | None = None, policy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion
        self.policy = policy


def check_cancel(order: Order) -> None:
    """Raise NotAllowed unless the order can be cancelled now (only before it ships)."""
    if order.status == "placed":
        return
    if order.status == "shipped":
        raise NotAllowed(
            f"order {order.order_id} has already shipped and can no longer be cancelled; "
            "once it is delivered it can be returned",
            suggestion="start_return",
        )
    if order.status == "delivered":
        raise NotAllowed(
            f"order {order.order_id} was delivered and can no longer be cancelled; it can be returned instead",
            suggestion="start_return",
        )
    if order.status == "returned":
        raise NotAllowed(f"order {order.order_id} was returned; there is nothing to cancel")
    # cancelled: handled by the caller as an idempotent repeat


def plan_return(order: Order, product_ids: Sequence[str] | None, now: datetime) -> list[str]:
    """The product ids a return would cover; NotAllowed when the order or items cannot be returned."""
    if order.status in ("placed",):
        raise NotAllowed(
            f"order {order.order_id} has not shipped yet: it can be cancelled instead of returned",
            suggestion="cancel_order",
        )
    if order.status == "shipped":
        raise NotAllowed(f"order {order.order_id} is on its way; a return can start once it is delivered")
    if order.status == "cancelled":
        raise NotAllowed(f"order {order.order_id} was cancelled; there is nothing to return")
    in_order = [i.product_id for i in order.items]
    wanted = list(dict.fromkeys(product_ids)) if product_ids else in_order
    unknown = [pid for pid in wanted if pid not in in_order]
    if unknown:
        # The ids are the catalog's, not words a shopper knows: the message names none of them.
        raise NotAllowed(
            f"order {order.order_id} doesn't include {'that item' if len(unknown) == 1 else 'those items'}"
        )
    deadline = order.return_deadline()
    if deadline is not None and now > deadline:
        raise NotAllowed(
            f"order {order.order_id} was delivered on {order.delivered_at:%Y-%m-%d}; the {RETURN_WINDOW_DAYS}-day "
            f"return window closed on {deadline:%Y-%m-%d}",
            suggestion="handoff_to_human",
            policy=RETURN_POLICY_REF,
        )
    return wanted


def return_id_for(order_id: str, product_ids: Sequence[str]) -> str:
    """Deterministic: the same items of the same order always get the same return id."""
    digest = hashlib.sha256(f"{order_id}|{'|'.join(sorted(product_ids))}".encode()).hexdigest()
    return f"RET-{digest[:8].upper()}"


def refund_amount(order: Order, product_ids: Sequence[str]) -> float:
    return round(sum(i.subtotal for i in order.items if i.product_id in set(product_ids)), 2)


ORDER = "order"
ORDER_SEED = "order-seed"  # seed key -> order id of a generated demo order


def _order_record(order: Order) -> Record:
    return Record(
        kind=ORDER,
        key=order.order_id,
        owner=order.shopper_id,
        sort=order.created_at.timestamp(),
        doc=order.model_dump(mode="json"),
    )


class OrderStore:
    """Orders keyed by order id over a RecordStore; every change is one atomic read-check-write."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def add(self, orders: Sequence[Order], seed_keys: Sequence[str | None] | None = None) -> int:
        """Insert orders not yet stored (by order id or seed key); returns how many were new."""
        keys = list(seed_keys) if seed_keys is not None else [None] * len(orders)
        groups: list[list[Record]] = []
        for order, key in zip(orders, keys, strict=True):
            group = [_order_record(order)]
            if key is not None:
                group.append(Record(kind=ORDER_SEED, key=key, doc={"order_id": order.order_id}))
            groups.append(group)
        return self.records.insert(groups)

    def has_seed_keys(self, keys: Sequence[str]) -> set[str]:
        return set(self.records.get(ORDER_SEED, keys))

    def order_ids(self) -> set[str]:
        return self.records.keys(ORDER)

    def get(self, order_id: str) -> Order | None:
        found = self.records.get(ORDER, [order_id]).get(order_id)
        return Order.model_validate(found.doc) if found else None

    def for_shopper(self, shopper_id: str, limit: int = 10) -> list[Order]:
        """The shopper's orders, newest first."""
        records = self.records.list(ORDER, shopper_id, newest_first=True, limit=limit)
        return [Order.model_validate(r.doc) for r in records]

    def count(self) -> int:
        return self.records.count(ORDER)

    def _change(self, order_id: str, fn: Callable[[Order], Order | None]) -> tuple[Order, bool]:
        """Apply `fn` to the stored order atomically (None: leave it); (order as stored, changed)."""
        changed = False

        def change(current: Record | None) -> Record | None:
            nonlocal changed
            if current is None:
                raise KeyError(order_id)
            new = fn(Order.model_validate(current.doc))
            changed = new is not None
            return _order_record(new) if new is not None else None

        stored = self.records.update(ORDER, order_id, change)
        assert stored is not None
        return Order.model_validate(stored.doc), changed

    def cancel(self, order_id: str, now: datetime | None = None) -> tuple[Order, bool]:
        """Cancel a placed order; (order, changed). An already-cancelled order comes back unchanged."""

        def fn(order: Order) -> Order | None:
            if order.status == "cancelled":
                return None
            check_cancel(order)
            return order.model_copy(update={"status": "cancelled", "cancelled_at": now or _now()})

        return self._change(order_id, fn)

    def start_return(
        self, order_id: str, product_ids: Sequence[str] | None, reason: str, now: datetime | None = None
    ) -> tuple[Order, ReturnInfo, bool]:
        """Start a return of some or all items; (order, return, changed).

        Items already in a return are not returned twice: asking again for the same items gives back
        the return that covers them.
        """
        now = now or _now()
        info: ReturnInfo | None = None

        def fn(order: Order) -> Order | None:
            nonlocal info
            info = existing_return(order, product_ids)
            if info is not None:
                return None
            wanted = plan_return(order, product_ids, now)
            already = order.returned_product_ids()
            fresh = [pid for pid in wanted if pid not in already]
            info = ReturnInfo(
                return_id=return_id_for(order.order_id, fresh),
                product_ids=fresh,
                reason=reason,
                refund_amount=refund_amount(order, fresh),
                created_at=now,
            )
            returns = [*order.returns, info]
            all_back = {i.product_id for i in order.items} <= {pid for r in returns for pid in r.product_ids}
            return order.model_copy(update={"returns": returns, "status": "returned" if all_back else order.status})

        order, changed = self._change(order_id, fn)
        assert info is not None
        return order, info, changed


def existing_return(order: Order, product_ids: Sequence[str] | None) -> ReturnInfo | None:
    """The return that already covers every requested item (all items when none are named), if one does."""
    if not order.returns:
        return None
    wanted = set(product_ids) if product_ids else {i.product_id for i in order.items}
    for r in order.returns:
        if wanted <= set(r.product_ids):
            return r
    if wanted <= order.returned_product_ids():
        return order.returns[-1]
    return None
