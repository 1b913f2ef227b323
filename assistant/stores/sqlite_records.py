"""Records in one SQLite table (by default beside the sessions, in data_dir/sessions.sqlite)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from assistant.errors import StorageFull
from assistant.stores.records import NAMESPACE, Change, Record, check_change, check_kind
from retrieval import sqlite

_CHUNK = 500  # bound parameters per IN (…) query


class SqliteRecordStore:
    """One connection shared by the threads of this process; every write is a BEGIN IMMEDIATE transaction,
    so a read-check-write never interleaves with another writer, in this process or another."""

    def __init__(self, path: str | Path, *, namespace: str = "shop") -> None:
        if not NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r}: use lowercase letters, digits and '_'")
        self.table = f"{namespace}_records"
        self._db = sqlite.connect(path, autocommit=True, timeout=30.0)  # as the sessions, which share the file
        self._db.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {self.table} (
                kind TEXT NOT NULL, key TEXT NOT NULL, owner TEXT NOT NULL, sort REAL NOT NULL, doc TEXT NOT NULL,
                PRIMARY KEY (kind, key));
            CREATE INDEX IF NOT EXISTS {self.table}_owner ON {self.table} (kind, owner, sort);
            """
        )
        self._lock = threading.Lock()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: what the transaction reads stays true until it commits.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                # A failed COMMIT (the disk full) is rolled back too, unless SQLite already did (SQLITE_FULL may).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if sqlite.disk_full(e):
                    raise StorageFull("the store's disk is full: nothing new can be saved until space is freed") from e
                raise

    def _row(self, kind: str, row: tuple[str, str, float, str]) -> Record:
        return Record(kind=kind, key=row[0], owner=row[1], sort=row[2], doc=json.loads(row[3]))

    def _get(self, db: sqlite3.Connection, kind: str, key: str) -> Record | None:
        row = db.execute(
            f"SELECT key, owner, sort, doc FROM {self.table} WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return self._row(kind, row) if row else None

    def _put(self, db: sqlite3.Connection, r: Record) -> None:
        db.execute(
            f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, key) "
            "DO UPDATE SET owner = excluded.owner, sort = excluded.sort, doc = excluded.doc",
            (r.kind, r.key, r.owner, r.sort, json.dumps(r.doc)),
        )

    def get(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        check_kind(kind)
        found: dict[str, Record] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                rows = self._db.execute(
                    f"SELECT key, owner, sort, doc FROM {self.table} WHERE kind = ? "
                    f"AND key IN ({','.join('?' * len(chunk))})",
                    [kind, *chunk],
                ).fetchall()
                found.update((r[0], self._row(kind, r)) for r in rows)
        return found

    def insert(self, groups: Iterable[Sequence[Record]]) -> int:
        stored = 0
        with self._write() as db:
            for group in groups:
                if any(self._get(db, check_kind(r.kind), r.key) is not None for r in group):
                    continue
                for r in group:
                    self._put(db, r)
                stored += 1
        return stored

    def update(self, kind: str, key: str, change: Change) -> Record | None:
        check_kind(kind)
        with self._write() as db:
            current = self._get(db, kind, key)
            new = change(current)
            if new is None:
                return current
            self._put(db, check_change(kind, key, new))
            return new

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            cur = self._db.execute(f"DELETE FROM {self.table} WHERE kind = ? AND key = ?", (check_kind(kind), key))
        return cur.rowcount > 0

    def list(self, kind: str, owner: str, *, newest_first: bool = False, limit: int | None = None) -> list[Record]:
        if limit is not None and limit <= 0:
            return []
        order = "DESC" if newest_first else "ASC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, owner, sort, doc FROM {self.table} WHERE kind = ? AND owner = ? "
                f"ORDER BY sort {order}, key {order} LIMIT ?",
                (check_kind(kind), owner, -1 if limit is None else limit),
            ).fetchall()
        return [self._row(kind, r) for r in rows]

    def keys(self, kind: str) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute(f"SELECT key FROM {self.table} WHERE kind = ?", (check_kind(kind),))}

    def count(self, kind: str) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {self.table} WHERE kind = ?", (check_kind(kind),)).fetchone()
        return int(row[0])

    def ping(self) -> bool:
        try:
            with self._lock:
                return self._db.execute(f"SELECT COUNT(*) FROM {self.table} WHERE 0").fetchone() == (0,)
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()
