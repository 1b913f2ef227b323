"""Order tools: scoped to the shopper, confirmation before any change, every change applied once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.stores.orders import RETURN_POLICY_REF, RETURN_WINDOW_DAYS, Order, OrderItem, OrderStore
from assistant.stores.sqlite_records import SqliteRecordStore
from assistant.tools import orders
from assistant.tools.base import Toolbox, ToolContext, ToolDeps, ToolResult
from assistant.tools.builder import make_toolbox

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALICE = ToolContext(shopper_id="alice", session_id="s-a", turn_id="t1")
BOB = ToolContext(shopper_id="bob", session_id="s-b", turn_id="t1")
AGENT = ToolContext(shopper_id="agent-7", session_id="s-c", turn_id="t1", role="agent")


def _items(*specs: tuple[str, float, int]) -> list[OrderItem]:
    return [OrderItem(product_id=pid, title=f"Product {pid}", unit_price=price, quantity=q) for pid, price, q in specs]


def _orders() -> list[Order]:
    day = timedelta(days=1)
    return [
        Order(
            order_id="ORD-PLACED",
            shopper_id="alice",
            status="placed",
            items=_items(("p1", 59.0, 1), ("p5", 12.5, 2)),
            created_at=NOW - 0.5 * day,
        ),
        Order(
            order_id="ORD-SHIPPD",
            shopper_id="alice",
            status="shipped",
            items=_items(("p3", 149.0, 1)),
            created_at=NOW - 3 * day,
            shipped_at=NOW - 2 * day,
            tracking="1ZTRACK",
        ),
        Order(
            order_id="ORD-DELIVR",
            shopper_id="alice",
            status="delivered",
            items=_items(("p4", 45.0, 1), ("p7", 25.0, 2)),
            created_at=NOW - 10 * day,
            shipped_at=NOW - 9 * day,
            delivered_at=NOW - 7 * day,
            tracking="1ZTRACK2",
        ),
        Order(
            order_id="ORD-OLDONE",
            shopper_id="alice",
            status="delivered",
            items=_items(("p6", 120.0, 1)),
            created_at=NOW - 90 * day,
            shipped_at=NOW - 89 * day,
            delivered_at=NOW - (RETURN_WINDOW_DAYS + 5) * day,
        ),
        Order(
            order_id="ORD-BOBS01",
            shopper_id="bob",
            status="placed",
            items=_items(("p8", 130.0, 1)),
            created_at=NOW - 0.2 * day,
        ),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OrderStore]:
    s = OrderStore(SqliteRecordStore(tmp_path / "sessions.sqlite"))
    s.add(_orders())
    yield s
    s.records.close()


@pytest.fixture
def toolbox(store: OrderStore) -> Toolbox:
    box = make_toolbox(ToolDeps(orders=store, clock=lambda: NOW))
    assert box.names == ["order_status", "cancel_order", "start_return"]
    return box


def call(toolbox: Toolbox, name: str, args: dict[str, Any], ctx: ToolContext = ALICE) -> ToolResult:
    return asyncio.run(toolbox.call(name, args, ctx))


def confirmed(ctx: ToolContext) -> ToolContext:
    return ctx.model_copy(update={"confirmed": True})


def test_status_of_own_order_with_what_can_be_done(toolbox: Toolbox) -> None:
    res = call(toolbox, "order_status", {"order_id": "ord-shippd"})  # normalised to ORD-SHIPPD
    assert res.ok and res.citations == ["order:ORD-SHIPPD"]
    order = res.data["order"]
    assert order["status"] == "shipped" and order["tracking"] == "1ZTRACK"
    assert order["can_cancel"] is False and order["can_return"] is False
    placed = call(toolbox, "order_status", {"order_id": "ORD-PLACED"}).data["order"]
    assert placed["total"] == 84.0 and placed["can_cancel"] is True
    delivered = call(toolbox, "order_status", {"order_id": "ORD-DELIVR"}).data["order"]
    assert delivered["can_return"] is True and delivered["return_deadline"].startswith("2025-03-24")


def test_status_without_id_lists_only_the_shoppers_orders_newest_first(toolbox: Toolbox) -> None:
    res = call(toolbox, "order_status", {})
    assert [o["order_id"] for o in res.data["orders"]] == ["ORD-PLACED", "ORD-SHIPPD", "ORD-DELIVR", "ORD-OLDONE"]
    assert call(toolbox, "order_status", {"order_id": ""}).data["count"] == 4


def test_another_shoppers_order_reads_as_not_found(toolbox: Toolbox, store: OrderStore) -> None:
    theirs = call(toolbox, "order_status", {"order_id": "ORD-BOBS01"}, ALICE)
    nothing = call(toolbox, "order_status", {"order_id": "ORD-NOSUCH"}, ALICE)
    assert not theirs.ok and not nothing.ok
    assert theirs.error == f"There's no order ORD-BOBS01 on this account. {orders.ORDER_NUMBER_HELP}"
    assert theirs.error_kind == "refused" and "ORD-" in orders.ORDER_NUMBER_HELP  # says where the number is
    assert (theirs.error or "").replace("BOBS01", "X") == (nothing.error or "").replace("NOSUCH", "X")
    assert "bob" not in str(theirs.as_trace()) and "p8" not in str(theirs.as_trace())
    stolen = call(toolbox, "cancel_order", {"order_id": "ORD-BOBS01"}, confirmed(ALICE))
    assert not stolen.ok and store.get("ORD-BOBS01").status == "placed"  # type: ignore[union-attr]
    # A customer-service agent may look up any order.
    assert call(toolbox, "order_status", {"order_id": "ORD-BOBS01"}, AGENT).data["order"]["status"] == "placed"


@pytest.mark.parametrize("bad", ["12345", "ORDER-ABCDEF", "ORD-ABC", ""])
def test_malformed_order_id_names_the_field(toolbox: Toolbox, bad: str) -> None:
    res = call(toolbox, "cancel_order", {"order_id": bad})
    assert not res.ok and "order_id" in (res.error or "") and "ORD-" in (res.error or "")


def test_cancel_asks_first_then_cancels_exactly_once(toolbox: Toolbox, store: OrderStore) -> None:
    ask = call(toolbox, "cancel_order", {"order_id": "ORD-PLACED"})
    assert ask.ok and ask.needs_confirmation and ask.confirmation is not None
    assert ask.confirmation["tool"] == "cancel_order" and ask.confirmation["arguments"] == {"order_id": "ORD-PLACED"}
    assert "ORD-PLACED" in ask.confirmation["summary"] and "84.00 USD" in ask.confirmation["summary"]
    assert store.get("ORD-PLACED").status == "placed"  # type: ignore[union-attr]

    done = call(toolbox, "cancel_order", {"order_id": "ORD-PLACED"}, confirmed(ALICE))
    assert done.ok and not done.needs_confirmation and done.data["outcome"] == "cancelled"
    first = store.get("ORD-PLACED")
    assert first is not None and first.status == "cancelled" and first.cancelled_at == NOW

    again = call(toolbox, "cancel_order", {"order_id": "ORD-PLACED"}, confirmed(ALICE))
    unconfirmed_again = call(toolbox, "cancel_order", {"order_id": "ORD-PLACED"})
    for res in (again, unconfirmed_again):
        assert res.ok and res.data["outcome"] == "already_cancelled" and not res.needs_confirmation
    assert store.get("ORD-PLACED") == first


@pytest.mark.parametrize(("order_id", "word"), [("ORD-SHIPPD", "shipped"), ("ORD-DELIVR", "delivered")])
def test_cannot_cancel_after_shipping_and_is_pointed_to_returns(
    toolbox: Toolbox, store: OrderStore, order_id: str, word: str
) -> None:
    before = store.get(order_id)
    for ctx in (ALICE, confirmed(ALICE)):
        res = call(toolbox, "cancel_order", {"order_id": order_id}, ctx)
        assert not res.ok and not res.needs_confirmation
        assert word in (res.error or "") and "return" in (res.error or "")
        assert res.data["suggest"] == "start_return"
    assert store.get(order_id) == before


def test_return_asks_first_then_starts_once_with_a_stable_id(toolbox: Toolbox, store: OrderStore) -> None:
    args = {"order_id": "ORD-DELIVR", "reason": "too small"}
    ask = call(toolbox, "start_return", args)
    assert ask.ok and ask.needs_confirmation and ask.confirmation is not None
    assert "95.00 USD" in ask.confirmation["summary"] and "too small" in ask.confirmation["summary"]
    assert store.get("ORD-DELIVR").returns == []  # type: ignore[union-attr]

    done = call(toolbox, "start_return", args, confirmed(ALICE))
    assert done.ok and done.data["outcome"] == "return_started"
    ret = done.data["return"]
    assert ret["return_id"] == ask.confirmation["return_id"] and ret["refund_amount"] == 95.0
    assert sorted(ret["product_ids"]) == ["p4", "p7"] and done.data["order"]["status"] == "returned"

    again = call(toolbox, "start_return", args, confirmed(ALICE))
    assert again.ok and again.data["outcome"] == "already_started"
    assert again.data["return"]["return_id"] == ret["return_id"]
    assert len(store.get("ORD-DELIVR").returns) == 1  # type: ignore[union-attr]


def test_partial_returns_do_not_return_an_item_twice(toolbox: Toolbox, store: OrderStore) -> None:
    one = call(
        toolbox, "start_return", {"order_id": "ORD-DELIVR", "product_ids": ["p7"], "reason": "x"}, confirmed(ALICE)
    )
    assert one.data["return"]["product_ids"] == ["p7"] and one.data["return"]["refund_amount"] == 50.0
    assert one.data["order"]["status"] == "delivered" and one.data["order"]["can_return"] is True
    same = call(toolbox, "start_return", {"order_id": "ORD-DELIVR", "product_ids": ["p7"], "reason": "y"}, ALICE)
    assert same.data["outcome"] == "already_started" and not same.needs_confirmation
    rest = call(toolbox, "start_return", {"order_id": "ORD-DELIVR", "reason": "x"}, confirmed(ALICE))
    assert rest.data["return"]["product_ids"] == ["p4"] and rest.data["order"]["status"] == "returned"
    assert rest.data["return"]["return_id"] != one.data["return"]["return_id"]
    assert len(store.get("ORD-DELIVR").returns) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "text", "suggest"),
    [
        (
            {"order_id": "ORD-OLDONE", "reason": "x"},
            f"{RETURN_WINDOW_DAYS}-day return window closed",
            "handoff_to_human",
        ),
        ({"order_id": "ORD-PLACED", "reason": "x"}, "has not shipped yet", "cancel_order"),
        ({"order_id": "ORD-SHIPPD", "reason": "x"}, "once it is delivered", None),
        ({"order_id": "ORD-DELIVR", "product_ids": ["p1"], "reason": "x"}, "doesn't include that item", None),
    ],
)
def test_returns_that_are_not_allowed_say_why(
    toolbox: Toolbox, store: OrderStore, args: dict[str, Any], text: str, suggest: str | None
) -> None:
    before = store.get(args["order_id"])
    res = call(toolbox, "start_return", args, confirmed(ALICE))
    assert not res.ok and text in (res.error or "") and res.data["suggest"] == suggest
    assert "p1" not in (res.error or "")  # catalog ids are not words a shopper knows
    assert store.get(args["order_id"]) == before


def test_window_refusal_cites_the_policy(toolbox: Toolbox) -> None:
    res = call(toolbox, "start_return", {"order_id": "ORD-OLDONE", "reason": "x"})
    assert res.data["policy"] == RETURN_POLICY_REF


def test_return_needs_a_reason(toolbox: Toolbox) -> None:
    res = call(toolbox, "start_return", {"order_id": "ORD-DELIVR"})
    assert not res.ok and "reason" in (res.error or "")


def test_cancel_on_a_cancelled_order_in_store_is_a_no_op(store: OrderStore) -> None:
    order, changed = store.cancel("ORD-BOBS01", NOW)
    assert changed and order.status == "cancelled"
    again, changed_again = store.cancel("ORD-BOBS01", NOW + timedelta(hours=1))
    assert not changed_again and again.cancelled_at == NOW
