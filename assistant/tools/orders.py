"""Orders in SQLite and the changes a shopper may make to them (cancel, return), each applied at most once."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

OrderStatus = Literal["placed", "shipped", "delivered", "cancelled", "returned"]

# ABCD's guidelines (Product Defect > Return Due to ...: "Membership Privileges") give Guest members
# 30 days, Bronze 90, Silver 6 months, Gold unlimited. The demo shoppers carry no membership level,
# so the guest window, the strictest one, applies to everyone; counted from delivery.
RETURN_WINDOW_DAYS = 30
RETURN_POLICY_REF = "policy:abcd:product_defect.return_stain:3"  # that passage, as policies.load_passages numbers it


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
        raise NotAllowed(f"order {order.order_id} does not contain {', '.join(unknown)}")
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


class OrderStore:
    """Orders as JSON rows keyed by order id; every change runs in one write transaction."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS orders (
                order_id TEXT PRIMARY KEY, shopper_id TEXT NOT NULL, status TEXT NOT NULL,
                created_at TEXT NOT NULL, seed_key TEXT UNIQUE, body TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS orders_shopper ON orders (shopper_id, created_at);
            """
        )
        self._lock = threading.Lock()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a read-check-write cannot interleave with another writer.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, orders: Sequence[Order], seed_keys: Sequence[str | None] | None = None) -> int:
        """Insert orders not yet stored (by order id or seed key); returns how many were new."""
        keys = list(seed_keys) if seed_keys is not None else [None] * len(orders)
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (o.order_id, o.shopper_id, o.status, o.created_at.isoformat(), k, o.model_dump_json())
                    for o, k in zip(orders, keys, strict=True)
                ],
            )
            return db.total_changes - before

    def has_seed_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = self._db.execute(
                    f"SELECT seed_key FROM orders WHERE seed_key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                found.update(r[0] for r in rows)
        return found

    def order_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT order_id FROM orders")}

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return Order.model_validate_json(row[0]) if row else None

    def for_shopper(self, shopper_id: str, limit: int = 10) -> list[Order]:
        """The shopper's orders, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM orders WHERE shopper_id = ? ORDER BY created_at DESC LIMIT ?", (shopper_id, limit)
            ).fetchall()
        return [Order.model_validate_json(r[0]) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    def _save(self, db: sqlite3.Connection, order: Order) -> None:
        db.execute(
            "UPDATE orders SET status = ?, body = ? WHERE order_id = ?",
            (order.status, order.model_dump_json(), order.order_id),
        )

    def _load(self, db: sqlite3.Connection, order_id: str) -> Order:
        row = db.execute("SELECT body FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            raise KeyError(order_id)
        return Order.model_validate_json(row[0])

    def cancel(self, order_id: str, now: datetime | None = None) -> tuple[Order, bool]:
        """Cancel a placed order; (order, changed). An already-cancelled order comes back unchanged."""
        with self._write() as db:
            order = self._load(db, order_id)
            if order.status == "cancelled":
                return order, False
            check_cancel(order)
            order = order.model_copy(update={"status": "cancelled", "cancelled_at": now or _now()})
            self._save(db, order)
            return order, True

    def start_return(
        self, order_id: str, product_ids: Sequence[str] | None, reason: str, now: datetime | None = None
    ) -> tuple[Order, ReturnInfo, bool]:
        """Start a return of some or all items; (order, return, changed).

        Items already in a return are not returned twice: asking again for the same items gives back
        the return that covers them.
        """
        now = now or _now()
        with self._write() as db:
            order = self._load(db, order_id)
            existing = existing_return(order, product_ids)
            if existing is not None:
                return order, existing, False
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
            order = order.model_copy(update={"returns": returns, "status": "returned" if all_back else order.status})
            self._save(db, order)
            return order, info, True

    def close(self) -> None:
        self._db.close()


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
