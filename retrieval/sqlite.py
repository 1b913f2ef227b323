"""The one way this code base opens a SQLite file: the same pragmas everywhere, options for what differs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import quote

DEFAULT_TIMEOUT_S = 5.0
SQLITE_FULL = 13  # "database or disk is full"


def disk_full(e: BaseException) -> bool:
    """Whether SQLite refused a write because the disk (or the file's size limit) is full."""
    return isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", None) == SQLITE_FULL


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    autocommit: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    wal: bool = True,
) -> sqlite3.Connection:
    """Open `path` for use from any thread, waiting up to `timeout` s for another writer's lock.

    Writable files get WAL (readers never wait for the writer) and their folder is created;
    `wal=False` keeps the rollback journal for a file that is built once and then moved into place.
    `readonly` opens an existing file that this connection cannot change. `autocommit` leaves
    transactions to the caller (BEGIN IMMEDIATE … COMMIT); otherwise `with conn:` commits.
    """
    isolation: Literal["DEFERRED"] | None = None if autocommit else "DEFERRED"
    # sqlite3's `timeout` is SQLite's busy timeout: how long a statement waits for another connection's lock.
    if readonly:
        uri = f"file:{quote(str(path))}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=isolation, check_same_thread=False)
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=isolation, check_same_thread=False)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    return conn
