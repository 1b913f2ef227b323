"""order_status, cancel_order, start_return: scoped to the shopper, and changes only after confirmation."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from assistant.stores.orders import (
    RETURN_WINDOW_DAYS,
    NotAllowed,
    Order,
    OrderStore,
    ReturnInfo,
    check_cancel,
    existing_return,
    plan_return,
    refund_amount,
    return_id_for,
)
from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolError, ToolOutput
from assistant.tools.products import product_ref

_ORDER_ID = re.compile(r"^(?:ORD[-\s]?)?([A-Z0-9]{6})$")


def _order_id(v: str) -> str:
    m = _ORDER_ID.match(v.strip().upper())
    if m is None:
        raise ValueError("expected an order number like ORD-7K2M9P")
    return f"ORD-{m.group(1)}"


OrderId = Annotated[str, AfterValidator(_order_id)]
# What a shopper does about an order number we can't find: where the right one is.
ORDER_NUMBER_HELP = (
    "Please check the number: it starts with ORD- and is in your order confirmation e-mail, and under Order history "
    "in your account."
)
Clock = Callable[[], datetime]


def order_ref(order_id: str) -> str:
    return f"order:{order_id}"


class OrderStatusArgs(BaseModel):
    """Arguments of order_status."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId | None = Field(default=None, description="order number (ORD-XXXXXX); omit to list recent orders")

    @field_validator("order_id", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v


class CancelOrderArgs(BaseModel):
    """Arguments of cancel_order."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId = Field(description="order number (ORD-XXXXXX)")


class StartReturnArgs(BaseModel):
    """Arguments of start_return."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId = Field(description="order number (ORD-XXXXXX)")
    product_ids: list[str] | None = Field(
        default=None, max_length=50, description="items to return (product ids); omit to return the whole order"
    )
    reason: str = Field(min_length=1, max_length=500, description="why the shopper returns it, in their words")

    @field_validator("product_ids")
    @classmethod
    def _ids(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        ids = [p.strip().removeprefix("product:") for p in v if p.strip()]
        return list(dict.fromkeys(ids)) or None


def order_summary(order: Order, now: datetime | None = None) -> dict[str, Any]:
    """What the shopper may be told about an order, with what can be done to it now."""
    now = now or datetime.now(UTC)
    try:
        check_cancel(order)
        can_cancel = order.status == "placed"
    except NotAllowed:
        can_cancel = False
    try:
        plan_return(order, None, now)
        can_return = not order.returned_product_ids() >= {i.product_id for i in order.items}
    except NotAllowed:
        can_return = False
    deadline = order.return_deadline()
    return {
        "order_id": order.order_id,
        "status": order.status,
        "created_at": order.created_at.isoformat(),
        "shipped_at": order.shipped_at.isoformat() if order.shipped_at else None,
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "tracking": order.tracking,
        "currency": order.currency,
        "total": order.total,
        "items": [
            {"product_id": i.product_id, "title": i.title, "unit_price": i.unit_price, "quantity": i.quantity}
            for i in order.items
        ],
        "returns": [r.model_dump(mode="json") for r in order.returns],
        "return_deadline": deadline.isoformat() if deadline else None,
        "can_cancel": can_cancel,
        "can_return": can_return,
    }


def _order(store: OrderStore, order_id: str, ctx: ToolContext) -> Order:
    order = store.get(order_id)
    # Another shopper's order reads exactly like a missing one: nothing about it leaks.
    if order is None or (ctx.role != "agent" and order.shopper_id != ctx.shopper_id):
        raise ToolError(f"There's no order {order_id} on this account. {ORDER_NUMBER_HELP}", {"order_id": order_id})
    return order


def order_status(store: OrderStore, clock: Clock, args: OrderStatusArgs, ctx: ToolContext) -> ToolOutput:
    """One of the shopper's orders, or their recent ones."""
    now = clock()
    if args.order_id is None:
        orders = store.for_shopper(ctx.shopper_id, limit=5)
        return ToolOutput(
            data={"orders": [order_summary(o, now) for o in orders], "count": len(orders)},
            citations=[order_ref(o.order_id) for o in orders],
        )
    order = _order(store, args.order_id, ctx)
    return ToolOutput(data={"order": order_summary(order, now)}, citations=[order_ref(order.order_id)])


def cancel_order(store: OrderStore, clock: Clock, args: CancelOrderArgs, ctx: ToolContext) -> ToolOutput:
    """Describe the cancellation, or, confirmed, cancel (once)."""
    order = _order(store, args.order_id, ctx)
    cites = [order_ref(order.order_id)]
    if order.status == "cancelled":
        return ToolOutput(
            data={"outcome": "already_cancelled", "order": order_summary(order, clock())}, citations=cites
        )
    try:
        check_cancel(order)
    except NotAllowed as exc:
        raise _refusal(exc, order) from None
    if not ctx.confirmed:
        return ToolOutput(
            data={"outcome": "confirmation_required", "order": order_summary(order, clock())},
            citations=cites,
            needs_confirmation=True,
            confirmation={
                "tool": "cancel_order",
                "arguments": args.model_dump(),
                "summary": f"Cancel order {order.order_id} ({_items_text(order)}, "
                f"{order.total:.2f} {order.currency}); the full amount is refunded.",
            },
        )
    try:
        order, changed = store.cancel(order.order_id, clock())
    except NotAllowed as exc:  # the order moved on between the check and the write
        raise _refusal(exc, order) from None
    outcome = "cancelled" if changed else "already_cancelled"
    return ToolOutput(data={"outcome": outcome, "order": order_summary(order, clock())}, citations=cites)


def start_return(store: OrderStore, clock: Clock, args: StartReturnArgs, ctx: ToolContext) -> ToolOutput:
    """Describe the return, or, confirmed, start it (once)."""
    order = _order(store, args.order_id, ctx)
    now = clock()
    cites = [order_ref(order.order_id)]
    done = existing_return(order, args.product_ids)
    if done is not None:
        return ToolOutput(data=_return_data("already_started", order, done, now), citations=cites)
    try:
        wanted = plan_return(order, args.product_ids, now)
    except NotAllowed as exc:
        raise _refusal(exc, order) from None
    fresh = [pid for pid in wanted if pid not in order.returned_product_ids()]
    if not ctx.confirmed:
        titles = {i.product_id: i.title for i in order.items}
        amount = refund_amount(order, fresh)
        return ToolOutput(
            data={"outcome": "confirmation_required", "order": order_summary(order, now)},
            citations=[*cites, *(product_ref(pid) for pid in fresh)],
            needs_confirmation=True,
            confirmation={
                "tool": "start_return",
                "arguments": args.model_dump(),
                "return_id": return_id_for(order.order_id, fresh),
                "summary": f"Return {', '.join(titles[p] for p in fresh)} from order {order.order_id} "
                f"(reason: {args.reason}); {amount:.2f} {order.currency} is refunded once the items arrive.",
            },
        )
    try:
        order, info, changed = store.start_return(order.order_id, args.product_ids, args.reason, now)
    except NotAllowed as exc:
        raise _refusal(exc, order) from None
    return ToolOutput(
        data=_return_data("return_started" if changed else "already_started", order, info, now), citations=cites
    )


def _refusal(exc: NotAllowed, order: Order) -> ToolError:
    """Why the change cannot happen, what to do instead, and the policy behind it when there is one."""
    data: dict[str, Any] = {"order_id": order.order_id, "status": order.status, "suggest": exc.suggestion}
    if exc.policy:
        data["policy"] = exc.policy
    return ToolError(exc.message, data)


def _return_data(outcome: str, order: Order, info: ReturnInfo, now: datetime) -> dict[str, Any]:
    return {"outcome": outcome, "return": info.model_dump(mode="json"), "order": order_summary(order, now)}


def _items_text(order: Order) -> str:
    n = sum(i.quantity for i in order.items)
    return f"{n} item{'s' if n != 1 else ''}"


def tools(deps: ToolDeps) -> list[Tool]:
    """order_status, cancel_order, start_return over deps.orders (none without it)."""
    if deps.orders is None:
        return []
    store, clock = deps.orders, deps.clock
    return [
        Tool(
            "order_status",
            "Status of one of the shopper's orders (items, dates, tracking, returns, whether it can still be "
            "cancelled or returned), or their recent orders when no order number is given.",
            OrderStatusArgs,
            partial(order_status, store, clock),
        ),
        Tool(
            "cancel_order",
            "Cancel an order that has not shipped yet. The first call only describes the change and asks the "
            "shopper to confirm; nothing changes until they do.",
            CancelOrderArgs,
            partial(cancel_order, store, clock),
            changes_state=True,
        ),
        Tool(
            "start_return",
            f"Start a return of a delivered order (all items or some), within {RETURN_WINDOW_DAYS} days of "
            "delivery. The first call only describes the return and asks the shopper to confirm.",
            StartReturnArgs,
            partial(start_return, store, clock),
            changes_state=True,
        ),
    ]
