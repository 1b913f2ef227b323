"""The shoppers' carts: one record per (shopper, product) holding its quantity."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from assistant.stores.records import Record, RecordStore

CART = "cart"
MAX_QUANTITY = 99


def cart_record(shopper_id: str, product_id: str, quantity: int, added_at: datetime) -> Record:
    """A cart line; the key is unambiguous for any two ids."""
    return Record(
        kind=CART,
        key=json.dumps([shopper_id, product_id]),
        owner=shopper_id,
        sort=added_at.timestamp(),
        doc={"product_id": product_id, "quantity": quantity, "added_at": added_at.isoformat()},
    )


class CartStore:
    """Carts over a RecordStore; an add is one atomic read-modify-write, so adds from two replicas add up."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def add(self, shopper_id: str, product_id: str, quantity: int) -> int:
        """Add `quantity` (capped at MAX_QUANTITY in all); returns the new quantity."""
        now = datetime.now(UTC)

        def change(current: Record | None) -> Record:
            if current is None:
                return cart_record(shopper_id, product_id, min(quantity, MAX_QUANTITY), now)
            total = min(int(current.doc["quantity"]) + quantity, MAX_QUANTITY)
            return Record(CART, current.key, {**current.doc, "quantity": total}, current.owner, current.sort)

        stored = self.records.update(CART, json.dumps([shopper_id, product_id]), change)
        assert stored is not None
        return int(stored.doc["quantity"])

    def remove(self, shopper_id: str, product_id: str) -> bool:
        return self.records.delete(CART, json.dumps([shopper_id, product_id]))

    def items(self, shopper_id: str) -> list[tuple[str, int]]:
        """(product id, quantity) in the order they were first added."""
        return [(str(r.doc["product_id"]), int(r.doc["quantity"])) for r in self.records.list(CART, shopper_id)]
