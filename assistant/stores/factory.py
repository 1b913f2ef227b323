"""`open_stores(url)`: orders, carts, handoffs, feedback and session states behind SHOP_SESSION_STORE_URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from assistant.sessions.factory import SETTING, redact, sqlite_path, store_backend
from assistant.stores.carts import CartStore
from assistant.stores.feedback import FeedbackStore
from assistant.stores.handoffs import HandoffStore
from assistant.stores.legacy import import_legacy_files
from assistant.stores.orders import OrderStore
from assistant.stores.records import DEFAULT_TIMEOUT_S, RecordStore
from assistant.stores.session_control import ControlStore

log = logging.getLogger(__name__)


def make_record_store(url: str, *, namespace: str = "shop", timeout_s: float = DEFAULT_TIMEOUT_S) -> RecordStore:
    """sqlite:///path (sqlite:////abs/path, sqlite:///:memory:), redis://… / rediss://…, postgresql://…; a Redis or
    PostgreSQL call that gets no answer within `timeout_s` raises StoreUnavailable."""
    backend = store_backend(url)
    if backend == "sqlite":
        from assistant.stores.sqlite_records import SqliteRecordStore

        return SqliteRecordStore(sqlite_path(url), namespace=namespace)
    if backend == "redis":
        from assistant.stores.redis_records import RedisRecordStore

        return RedisRecordStore(url, namespace=namespace, timeout_s=timeout_s)
    from assistant.stores.postgres_records import PostgresRecordStore

    return PostgresRecordStore(url, namespace=namespace, timeout_s=timeout_s)


@dataclass
class Stores:
    """The state every replica shares, over one record store; `close()` releases its connections."""

    records: RecordStore
    orders: OrderStore
    carts: CartStore
    handoffs: HandoffStore
    feedback: FeedbackStore
    controls: ControlStore

    @classmethod
    def over(cls, records: RecordStore) -> Stores:
        return cls(
            records,
            OrderStore(records),
            CartStore(records),
            HandoffStore(records),
            FeedbackStore(records),
            ControlStore(records),
        )

    def close(self) -> None:
        self.records.close()


def open_stores(
    url: str, *, namespace: str = "shop", legacy_dir: str | Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Stores:
    """The stores behind `url`, checked to answer (else a RuntimeError naming the setting).

    With `legacy_dir`, the per-store SQLite files of earlier versions found there are imported once.
    """
    try:
        records = make_record_store(url, namespace=namespace, timeout_s=timeout_s)
    except ValueError:
        raise
    except Exception as e:  # e.g. a SQLite path that cannot be created
        raise RuntimeError(f"{SETTING}={redact(url)!r}: cannot open the store: {e}") from e
    if not records.ping():
        records.close()
        raise RuntimeError(f"{SETTING}={redact(url)!r}: the order, cart and handoff store does not answer")
    stores = Stores.over(records)
    if legacy_dir is not None:
        try:
            imported = import_legacy_files(Path(legacy_dir), stores)
        except BaseException:
            stores.close()
            raise
        for name, rows in imported.items():
            log.info("imported %d rows of %s into %s", rows, name, redact(url))
    return stores
