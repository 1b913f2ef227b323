"""Records in one PostgreSQL table (psycopg 3, synchronous: the tools call the stores from worker threads)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from assistant.sessions.postgres_store import Timed, closed_by_server, connect_timeout
from assistant.stores.records import (
    DEFAULT_TIMEOUT_S,
    NAMESPACE,
    Change,
    Record,
    check_change,
    check_kind,
    unavailable_on,
)

T = TypeVar("T")

_SCHEMA_LOCK_KEY = 0x53484F52  # "SHOR": serialises CREATE IF NOT EXISTS across processes
_ATTEMPTS = 10
BULK = 50  # an insert of more groups than this is start-up work: its exchanges wait up to SCHEMA_TIMEOUT_S


# The server away (refused, shut down, reset) or slower than the timeout (then the connection is closed).
_unavailable = unavailable_on("PostgreSQL", psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError)


class TimedConnection(Timed, psycopg.Connection[Any]):
    """A connection bounded as `Timed` says."""

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().wait(gen, *args, **self.timed(args, kwargs))
        except psycopg.errors.OperationalError as e:
            raise self.timed_out(e, self.pgconn) from None


class _Conflict(Exception):
    """Another transaction created a row this one meant to create: run the whole transaction again."""


class PostgresRecordStore:
    """`<namespace>_records`, one row per record with the document as jsonb. A read-check-write holds the row
    (SELECT … FOR UPDATE) until it commits; creating a row another transaction created first starts over. A call
    that fails to reach the server, or gets no answer within `timeout_s`, raises StoreUnavailable."""

    def __init__(
        self, dsn: str, *, namespace: str = "shop", pool_size: int = 4, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if not NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r}: use lowercase letters, digits and '_'")
        self.dsn = dsn
        self.table = f"{namespace}_records"
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[psycopg.Connection[Any]] = []
        self._idle_lock = threading.Lock()
        self._schema_ready = False
        self.timeout_s = timeout_s

    def _q(self, text: LiteralString) -> sql.Composed:
        return sql.SQL(text).format(table=sql.Identifier(self.table), index=sql.Identifier(f"{self.table}_owner"))

    # --- connections

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (at most `pool_size`, opened on demand; a broken one, or an idle one the server closed,
        is dropped); waiting for one is bounded by the timeout too."""
        if not self._slots.acquire(timeout=self.timeout_s):
            raise TimeoutError(f"no free connection within {self.timeout_s:g}s: the server is slow to answer")
        try:
            conn = self._take_idle() or self._connect()
            try:
                yield conn
            finally:
                if not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE:
                    with self._idle_lock:
                        self._idle.append(conn)
                else:
                    conn.close()
        finally:
            self._slots.release()

    def _take_idle(self) -> psycopg.Connection[Any] | None:
        while True:
            with self._idle_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or (not conn.closed and not closed_by_server(conn.pgconn.socket)):
                return conn
            conn.close()

    def _connect(self) -> psycopg.Connection[Any]:
        # A server that never answers would otherwise hold a tool call for the OS's TCP timeout.
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.dsn:
            options["connect_timeout"] = connect_timeout(self.timeout_s)
        conn = TimedConnection.connect(self.dsn, **options)
        conn.timeout_s = self.timeout_s
        if not self._schema_ready:
            with conn.patient(), conn.transaction():  # DDL, once: waits for other replicas (the lock), a busy server
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                conn.execute(
                    self._q(
                        "CREATE TABLE IF NOT EXISTS {table} (kind text NOT NULL, key text NOT NULL, "
                        "owner text NOT NULL, sort double precision NOT NULL, doc jsonb NOT NULL, "
                        "PRIMARY KEY (kind, key))"
                    )
                )
                conn.execute(self._q("CREATE INDEX IF NOT EXISTS {index} ON {table} (kind, owner, sort)"))
            self._schema_ready = True
        return conn

    def _transaction(self, attempt: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`attempt(conn)` in one transaction, run again from the start after a _Conflict or a deadlock."""
        for _ in range(_ATTEMPTS):
            with self._connection() as conn:
                try:
                    with conn.transaction():
                        return attempt(conn)
                except (_Conflict, psycopg.errors.DeadlockDetected):
                    continue
        raise RuntimeError(f"{self.table}: gave up after {_ATTEMPTS} conflicting attempts")

    # --- store

    @staticmethod
    def _record(kind: str, row: tuple[Any, ...]) -> Record:
        return Record(kind=kind, key=row[0], owner=row[1], sort=row[2], doc=row[3])

    @_unavailable
    def get(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        check_kind(kind)
        with self._connection() as conn:
            rows = conn.execute(
                self._q("SELECT key, owner, sort, doc FROM {table} WHERE kind = %s AND key = ANY(%s)"),
                (kind, list(dict.fromkeys(keys))),
            ).fetchall()
        return {r[0]: self._record(kind, r) for r in rows}

    @_unavailable
    def insert(self, groups: Iterable[Sequence[Record]]) -> int:
        pending = [list(g) for g in groups]
        if not pending:
            return 0
        kinds = [check_kind(r.kind) for g in pending for r in g]
        keys = [r.key for g in pending for r in g]

        def attempt(conn: psycopg.Connection[Any]) -> int:
            if len(pending) > BULK and isinstance(conn, TimedConnection):
                with conn.patient():  # start-up work (the demo orders, a legacy import): may be slow, not hung
                    return insert(conn)
            return insert(conn)

        def insert(conn: psycopg.Connection[Any]) -> int:
            taken: set[tuple[str, str]] = set(
                conn.execute(
                    self._q(
                        "SELECT kind, key FROM {table} WHERE (kind, key) IN "
                        "(SELECT * FROM unnest(%s::text[], %s::text[]))"
                    ),
                    (kinds, keys),
                ).fetchall()
            )
            rows: list[Record] = []
            stored = 0
            for group in pending:
                ids = {(r.kind, r.key) for r in group}
                if taken & ids:
                    continue
                taken |= ids
                rows += group
                stored += 1
            if rows:
                rows.sort(key=lambda r: (r.kind, r.key))  # one lock order for every writer: no deadlock between them
                cur = conn.execute(
                    self._q(
                        "INSERT INTO {table} (kind, key, owner, sort, doc) "
                        "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::jsonb[]) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (
                        [r.kind for r in rows],
                        [r.key for r in rows],
                        [r.owner for r in rows],
                        [float(r.sort) for r in rows],
                        [Jsonb(r.doc) for r in rows],
                    ),
                )
                if cur.rowcount != len(rows):  # another writer stored some of them after the check
                    raise _Conflict
            return stored

        return self._transaction(attempt)

    @_unavailable
    def update(self, kind: str, key: str, change: Change) -> Record | None:
        check_kind(kind)

        def attempt(conn: psycopg.Connection[Any]) -> Record | None:
            row = conn.execute(
                self._q("SELECT key, owner, sort, doc FROM {table} WHERE kind = %s AND key = %s FOR UPDATE"),
                (kind, key),
            ).fetchone()
            current = self._record(kind, row) if row else None
            new = change(current)
            if new is None:
                return current
            check_change(kind, key, new)
            if current is None:
                cur = conn.execute(
                    self._q(
                        "INSERT INTO {table} (kind, key, owner, sort, doc) VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (kind, key, new.owner, new.sort, Jsonb(new.doc)),
                )
                if cur.rowcount != 1:  # created meanwhile: the next attempt reads (and locks) it
                    raise _Conflict
            else:
                conn.execute(
                    self._q("UPDATE {table} SET owner = %s, sort = %s, doc = %s WHERE kind = %s AND key = %s"),
                    (new.owner, new.sort, Jsonb(new.doc), kind, key),
                )
            return new

        return self._transaction(attempt)

    @_unavailable
    def delete(self, kind: str, key: str) -> bool:
        with self._connection() as conn:
            cur = conn.execute(self._q("DELETE FROM {table} WHERE kind = %s AND key = %s"), (check_kind(kind), key))
        return cur.rowcount > 0

    @_unavailable
    def list(self, kind: str, owner: str, *, newest_first: bool = False, limit: int | None = None) -> list[Record]:
        if limit is not None and limit <= 0:
            return []
        # COLLATE "C": equal sort values order by the key's bytes, as in the other backends.
        query = sql.SQL(
            "SELECT key, owner, sort, doc FROM {table} WHERE kind = %s AND owner = %s "
            'ORDER BY sort {direction}, key COLLATE "C" {direction} LIMIT %s'
        ).format(table=sql.Identifier(self.table), direction=sql.SQL("DESC" if newest_first else "ASC"))
        with self._connection() as conn:
            rows = conn.execute(query, (check_kind(kind), owner, limit)).fetchall()
        return [self._record(kind, r) for r in rows]

    @_unavailable
    def keys(self, kind: str) -> set[str]:
        with self._connection() as conn:
            rows = conn.execute(self._q("SELECT key FROM {table} WHERE kind = %s"), (check_kind(kind),)).fetchall()
        return {r[0] for r in rows}

    @_unavailable
    def count(self, kind: str) -> int:
        with self._connection() as conn:
            row = conn.execute(self._q("SELECT COUNT(*) FROM {table} WHERE kind = %s"), (check_kind(kind),)).fetchone()
        return int(row[0]) if row else 0

    def ping(self) -> bool:
        """True when the server answers and the table exists."""
        try:
            with self._connection() as conn:
                return conn.execute(self._q("SELECT COUNT(*) FROM {table} WHERE false")).fetchone() == (0,)
        except (psycopg.Error, OSError, TimeoutError):
            return False

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
