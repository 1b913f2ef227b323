"""Earlier versions kept orders, carts and handoffs in their own SQLite files in data_dir: import them once."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.stores.carts import cart_record
from assistant.stores.handoffs import Ticket, ticket_record
from assistant.stores.orders import Order
from retrieval import sqlite

if TYPE_CHECKING:
    from assistant.stores.factory import Stores

IMPORTED_SUFFIX = ".imported"


def _orders(db: sqlite3.Connection, stores: Stores) -> int:
    rows = db.execute("SELECT body, seed_key FROM orders").fetchall()
    return stores.orders.add([Order.model_validate_json(r[0]) for r in rows], [r[1] for r in rows])


def _cart(db: sqlite3.Connection, stores: Stores) -> int:
    rows = db.execute("SELECT shopper_id, product_id, quantity, added_at FROM cart").fetchall()
    return stores.records.insert([cart_record(r[0], r[1], int(r[2]), datetime.fromisoformat(r[3]))] for r in rows)


def _handoffs(db: sqlite3.Connection, stores: Stores) -> int:
    rows = db.execute(
        "SELECT ticket_id, session_id, turn_id, shopper_id, reason, status, created_at FROM handoffs"
    ).fetchall()
    fields = ("ticket_id", "session_id", "turn_id", "shopper_id", "reason", "status", "created_at")
    return stores.records.insert([ticket_record(Ticket(**dict(zip(fields, r, strict=True))))] for r in rows)


LEGACY_FILES: dict[str, Callable[[sqlite3.Connection, Stores], int]] = {
    "orders.sqlite": _orders,
    "cart.sqlite": _cart,
    "handoffs.sqlite": _handoffs,
}


def import_legacy_files(data_dir: Path, stores: Stores) -> dict[str, int]:
    """Add the rows of data_dir/orders.sqlite, cart.sqlite and handoffs.sqlite that `stores` lacks; rows added per file.

    A record already in `stores` is never overwritten, so importing again changes nothing. Each file is then
    renamed `<name>.imported` (kept, not deleted), so a cart line removed later does not come back.
    """
    added: dict[str, int] = {}
    for name, read in LEGACY_FILES.items():
        path = data_dir / name
        if not path.is_file():
            continue
        db = sqlite.connect(path)
        try:
            added[name] = read(db, stores)
        except sqlite3.Error as e:
            raise RuntimeError(f"{path}: cannot import this file of an earlier version: {e}") from e
        finally:
            db.close()
        with contextlib.suppress(FileNotFoundError):  # another replica sharing data_dir renamed it first
            path.replace(path.with_name(name + IMPORTED_SUFFIX))
    return added
