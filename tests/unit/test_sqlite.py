"""retrieval.sqlite.connect: the one SQLite opener and its options."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from retrieval import sqlite


def test_a_writable_file_gets_wal_its_folder_and_serves_any_thread(tmp_path: Path) -> None:
    db = sqlite.connect(tmp_path / "new" / "dir" / "x.sqlite", timeout=2.5)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA busy_timeout").fetchone() == (2500,)
    with db:
        db.execute("CREATE TABLE t (v)")
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(db.execute("SELECT COUNT(*) FROM t").fetchone()))
    thread.start()
    thread.join()
    assert seen == [(0,)]
    db.close()


def test_autocommit_leaves_transactions_to_the_caller(tmp_path: Path) -> None:
    db = sqlite.connect(tmp_path / "x.sqlite", autocommit=True)
    db.execute("CREATE TABLE t (v)")
    db.execute("INSERT INTO t VALUES (1)")  # no transaction open: already committed
    assert not db.in_transaction
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (2)")
    db.execute("ROLLBACK")
    assert sqlite.connect(tmp_path / "x.sqlite").execute("SELECT v FROM t").fetchall() == [(1,)]


def test_readonly_reads_and_never_writes_and_a_built_file_keeps_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "dir with space#1" / "docs.sqlite"
    with sqlite.connect(path, wal=False) as db:
        db.execute("CREATE TABLE t (v)")
        db.execute("INSERT INTO t VALUES ('a')")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()
    ro = sqlite.connect(path, readonly=True)
    assert ro.execute("SELECT v FROM t").fetchall() == [("a",)]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("INSERT INTO t VALUES ('b')")
    with pytest.raises(sqlite3.OperationalError):
        sqlite.connect(tmp_path / "missing.sqlite", readonly=True).execute("SELECT 1 FROM t")
