"""The default session store: one SQLite file in WAL mode, driven from one worker thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from assistant.errors import StorageFull
from assistant.sessions.base import (
    DEFAULT_STALE_AFTER_S,
    SessionExists,
    SessionNotFound,
    StoreLifecycle,
    TurnNotFound,
    check_final,
    check_resume_point,
    check_session_id,
    check_shopper_id,
    default_summary_through,
    finalize,
    new_session_id,
    new_turn_id,
    report_stale,
    resolve_resume,
    supersede,
    unknown_turn_event,
)
from assistant.sessions.models import Session, StoredEvent, Turn, TurnKind, make_event_id, utc_now
from retrieval import sqlite

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    shopper_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    summary TEXT,
    summary_through INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_by_shopper ON sessions (shopper_id, updated_at);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id),
    UNIQUE (session_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id, seq),
    FOREIGN KEY (session_id, turn_id) REFERENCES turns (session_id, turn_id) ON DELETE CASCADE
);
"""


class SqliteSessionStore(StoreLifecycle):
    """Sessions in one SQLite file. Events commit with synchronous=NORMAL (they survive a killed
    process); a completed turn commits with synchronous=FULL (it also survives a power cut)."""

    def __init__(self, path: str | Path, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.path = str(path)
        self.stale_after_s = stale_after_s
        # One thread owns the connection: statements of concurrent turns run one after another,
        # and the event loop never blocks on an fsync.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sessions")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._appends: list[_Append] = []  # events waiting for the writer thread's next transaction
        self._append_lock = threading.Lock()

    # --- plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the session store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))
        except sqlite3.Error as e:
            raise _translated(e) from e

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite.connect(self.path, autocommit=True, timeout=30.0)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    # --- protocol

    async def create_session(self, shopper_id: str, session_id: str | None = None) -> Session:
        check_shopper_id(shopper_id)
        session = Session(session_id=check_session_id(session_id or new_session_id()), shopper_id=shopper_id)

        def op(conn: sqlite3.Connection) -> None:
            try:
                with _write(conn):
                    conn.execute(
                        "INSERT INTO sessions (session_id, shopper_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
                        (session.session_id, shopper_id, _ts(session.created_at), _ts(session.updated_at)),
                    )
            except sqlite3.IntegrityError as e:
                raise SessionExists(session.session_id) from e

        await self._run(op)
        return session

    async def get_session(self, session_id: str) -> Session | None:
        return await self._run(lambda conn: self._load(conn, session_id))

    async def list_sessions(self, shopper_id: str, limit: int = 20) -> list[Session]:
        if limit <= 0:
            return []

        def op(conn: sqlite3.Connection) -> list[Session]:
            rows = conn.execute(
                "SELECT session_id FROM sessions WHERE shopper_id = ? ORDER BY updated_at DESC, session_id LIMIT ?",
                (shopper_id, limit),
            ).fetchall()
            return [s for (sid,) in rows if (s := self._load(conn, sid)) is not None]

        return await self._run(op)

    async def begin_turn(self, session_id: str, user_message: str, kind: TurnKind = "bot") -> Turn:
        def op(conn: sqlite3.Connection) -> Turn:
            with _write(conn):
                if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)).fetchone() is None:
                    raise SessionNotFound(session_id)
                for (doc,) in conn.execute(
                    "SELECT doc FROM turns WHERE session_id = ? AND status = 'in_progress'", (session_id,)
                ).fetchall():
                    _put_turn(conn, session_id, supersede(Turn.model_validate_json(doc)))
                (n,) = conn.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", (session_id,)).fetchone()
                turn = Turn(turn_id=new_turn_id(), index=n, user_message=user_message, kind=kind)
                _put_turn(conn, session_id, turn)
                _touch(conn, session_id)
                return turn

        return await self._run(op)

    async def append_event(self, session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> StoredEvent:
        """Log one event. Appends that arrive while the writer thread is busy are committed together in
        its next transaction (group commit): under load, turns do not queue one commit each."""
        if self._closed:
            raise RuntimeError("the session store is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[StoredEvent] = loop.create_future()
        with self._append_lock:
            self._appends.append(_Append(session_id, turn_id, event, json.dumps(data, default=str), done))
            first = len(self._appends) == 1
        if first:
            try:
                loop.run_in_executor(self._executor, self._write_appends, loop)
            except RuntimeError:  # closed meanwhile: the executor takes no more work
                with self._append_lock:
                    self._appends.clear()
                raise RuntimeError("the session store is closed") from None
        return await done

    def _write_appends(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: every append queued so far, in one transaction; each caller gets its own
        outcome (TurnNotFound for an unknown turn), a failed commit fails them all."""
        with self._append_lock:
            batch, self._appends = self._appends, []
        outcomes: list[StoredEvent | BaseException] = []
        try:
            conn = self._connection()
            with _write(conn):
                for a in batch:
                    if _turn_row(conn, a.session_id, a.turn_id) is None:
                        outcomes.append(TurnNotFound(a.session_id, a.turn_id))
                        continue
                    (seq,) = conn.execute(
                        "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE session_id = ? AND turn_id = ?",
                        (a.session_id, a.turn_id),
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO events (session_id, turn_id, seq, event, data) VALUES (?, ?, ?, ?, ?)",
                        (a.session_id, a.turn_id, seq, a.event, a.payload),
                    )
                    data = json.loads(a.payload)
                    outcomes.append(StoredEvent(id=make_event_id(a.turn_id, seq), event=a.event, data=data))
        except Exception as e:  # the transaction rolled back: nothing of the batch was stored
            outcomes = [_translated(e)] * len(batch)
        for a, outcome in zip(batch, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, a.done, outcome)

    async def complete_turn(self, session_id: str, turn: Turn) -> None:
        check_final(turn)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA synchronous=FULL")
            try:
                with _write(conn):
                    row = _turn_row(conn, session_id, turn.turn_id)
                    if row is None:
                        raise TurnNotFound(session_id, turn.turn_id)
                    _put_turn(conn, session_id, finalize(turn, row[0]))
                    _touch(conn, session_id)
            finally:
                conn.execute("PRAGMA synchronous=NORMAL")

        await self._run(op)

    async def renew_lease(self, session_id: str, turn_id: str, until: datetime) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                row = conn.execute(
                    "SELECT doc FROM turns WHERE session_id = ? AND turn_id = ? AND status = 'in_progress'",
                    (session_id, turn_id),
                ).fetchone()
                if row is None:
                    return False
                turn = Turn.model_validate_json(row[0])
                _put_turn(conn, session_id, turn.model_copy(update={"lease_until": until}))
                return True

        return await self._run(op)

    async def events_after(
        self, session_id: str, last_event_id: str | None, turn_id: str | None = None
    ) -> list[StoredEvent]:
        wanted_turn, first_seq = resolve_resume(last_event_id, turn_id)

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)).fetchone() is None:
                raise SessionNotFound(session_id)
            tid = wanted_turn
            if tid is None:
                row = conn.execute(
                    "SELECT turn_id FROM turns WHERE session_id = ? ORDER BY idx DESC LIMIT 1", (session_id,)
                ).fetchone()
                if row is None:
                    return []
                tid = str(row[0])
            elif _turn_row(conn, session_id, tid) is None:
                raise unknown_turn_event(session_id, last_event_id, tid)
            rows = conn.execute(
                "SELECT seq, event, data FROM events WHERE session_id = ? AND turn_id = ? ORDER BY seq",
                (session_id, tid),
            ).fetchall()
            check_resume_point(session_id, last_event_id, first_seq, len(rows))
            return [
                StoredEvent(id=make_event_id(tid, seq), event=event, data=json.loads(data))
                for seq, event, data in rows
                if seq >= first_seq
            ]

        return await self._run(op)

    async def set_summary(self, session_id: str, summary: str, through_index: int | None = None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            with _write(conn):
                through = through_index
                if through is None:
                    turns = [
                        Turn.model_validate_json(d)
                        for (d,) in conn.execute("SELECT doc FROM turns WHERE session_id = ?", (session_id,))
                    ]
                    through = default_summary_through(turns)
                cur = conn.execute(
                    "UPDATE sessions SET summary = ?, summary_through = ?, updated_at = ? WHERE session_id = ?",
                    (summary, through, _ts(utc_now()), session_id),
                )
                if cur.rowcount == 0:
                    raise SessionNotFound(session_id)

        await self._run(op)

    async def ping(self) -> bool:
        try:
            return await self._run(lambda conn: conn.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, RuntimeError):
            return False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    # --- reading

    def _load(self, conn: sqlite3.Connection, session_id: str) -> Session | None:
        row = conn.execute(
            "SELECT shopper_id, created_at, updated_at, summary, summary_through FROM sessions WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        turns = [
            Turn.model_validate_json(doc)
            for (doc,) in conn.execute("SELECT doc FROM turns WHERE session_id = ? ORDER BY idx", (session_id,))
        ]
        return Session(
            session_id=session_id,
            shopper_id=row[0],
            created_at=row[1],
            updated_at=row[2],
            summary=row[3],
            summary_through=row[4],
            turns=report_stale(turns, self.stale_after_s),
        )


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; IMMEDIATE takes the write lock up front, so two processes never deadlock. A failed
    COMMIT (the disk full) is rolled back too: a transaction left open would refuse every later write."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled it back already (SQLITE_FULL does)
            conn.execute("ROLLBACK")
        raise


def _translated(e: Exception) -> Exception:
    """A full disk as the domain's StorageFull (the request gets a clear 503 or `error` event); others as they are."""
    if sqlite.disk_full(e):
        return StorageFull("the session store's disk is full: nothing new can be saved until space is freed")
    return e


@dataclass
class _Append:
    session_id: str
    turn_id: str
    event: str
    payload: str
    done: asyncio.Future[StoredEvent]


def _settle(done: asyncio.Future[StoredEvent], outcome: StoredEvent | BaseException) -> None:
    if done.done():  # the caller was cancelled; the event is stored all the same
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _ts(dt: datetime) -> str:
    """Fixed-width ISO time, so text order is time order."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _turn_row(conn: sqlite3.Connection, session_id: str, turn_id: str) -> tuple[int] | None:
    row = conn.execute("SELECT idx FROM turns WHERE session_id = ? AND turn_id = ?", (session_id, turn_id)).fetchone()
    return None if row is None else (int(row[0]),)


def _put_turn(conn: sqlite3.Connection, session_id: str, turn: Turn) -> None:
    conn.execute(
        "INSERT INTO turns (session_id, turn_id, idx, status, doc) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (session_id, turn_id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        (session_id, turn.turn_id, turn.index, turn.status, turn.model_dump_json()),
    )


def _touch(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute("UPDATE sessions SET updated_at = ? WHERE session_id = ?", (_ts(utc_now()), session_id))
