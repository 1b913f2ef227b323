"""Sessions in PostgreSQL (psycopg 3, async): three tables created on first use."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

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

SCHEMA = """
CREATE TABLE IF NOT EXISTS shop_sessions (
    session_id text PRIMARY KEY,
    shopper_id text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    summary text,
    summary_through integer,
    turn_count integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS shop_sessions_by_shopper ON shop_sessions (shopper_id, updated_at DESC);
CREATE TABLE IF NOT EXISTS shop_turns (
    session_id text NOT NULL REFERENCES shop_sessions (session_id) ON DELETE CASCADE,
    turn_id text NOT NULL,
    idx integer NOT NULL,
    status text NOT NULL,
    doc json NOT NULL,
    next_seq integer NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, turn_id),
    UNIQUE (session_id, idx)
);
CREATE TABLE IF NOT EXISTS shop_events (
    session_id text NOT NULL,
    turn_id text NOT NULL,
    seq integer NOT NULL,
    event text NOT NULL,
    data json NOT NULL,
    PRIMARY KEY (session_id, turn_id, seq),
    FOREIGN KEY (session_id, turn_id) REFERENCES shop_turns (session_id, turn_id) ON DELETE CASCADE
);
"""
CONNECT_TIMEOUT_S = 10
_SCHEMA_LOCK_KEY = 0x53484F50  # "SHOP": serialises CREATE IF NOT EXISTS across processes


class _Pool:
    """At most `size` connections, opened on demand; a broken or mid-transaction one is dropped."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            finally:
                if not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        # A server that never answers would otherwise hold a turn for the OS's TCP timeout.
        if "connect_timeout" in self._dsn:
            return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class PostgresSessionStore(StoreLifecycle):
    """Sessions in `shop_sessions`, `shop_turns` (one JSON document per turn) and `shop_events`."""

    def __init__(self, dsn: str, *, pool_size: int = 4, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        self.dsn = dsn
        self.stale_after_s = stale_after_s
        self._pool = _Pool(dsn, pool_size)
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        await self._ensure_schema()
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            if self._schema_ready:
                return
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                for statement in filter(str.strip, SCHEMA.split(";")):
                    await conn.execute(statement)  # type: ignore[call-overload]
            self._schema_ready = True

    # --- protocol

    async def create_session(self, shopper_id: str, session_id: str | None = None) -> Session:
        check_shopper_id(shopper_id)
        session = Session(session_id=check_session_id(session_id or new_session_id()), shopper_id=shopper_id)
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO shop_sessions (session_id, shopper_id, created_at, updated_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (session_id) DO NOTHING",
                (session.session_id, shopper_id, session.created_at, session.updated_at),
            )
            if cur.rowcount == 0:
                raise SessionExists(session.session_id)
        return session

    async def get_session(self, session_id: str) -> Session | None:
        async with self._tx() as conn:
            return await self._load(conn, session_id)

    async def list_sessions(self, shopper_id: str, limit: int = 20) -> list[Session]:
        if limit <= 0:
            return []
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT session_id FROM shop_sessions WHERE shopper_id = %s "
                "ORDER BY updated_at DESC, session_id LIMIT %s",
                (shopper_id, limit),
            )
            out = []
            for (sid,) in await cur.fetchall():
                if (session := await self._load(conn, sid)) is not None:
                    out.append(session)
            return out

    async def begin_turn(self, session_id: str, user_message: str, kind: TurnKind = "bot") -> Turn:
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT turn_count FROM shop_sessions WHERE session_id = %s FOR UPDATE", (session_id,)
            )
            row = await cur.fetchone()
            if row is None:
                raise SessionNotFound(session_id)
            cur = await conn.execute(
                "SELECT doc FROM shop_turns WHERE session_id = %s AND status = 'in_progress'", (session_id,)
            )
            for (doc,) in await cur.fetchall():
                await _put_turn(conn, session_id, supersede(Turn.model_validate(doc)))
            turn = Turn(turn_id=new_turn_id(), index=int(row[0]), user_message=user_message, kind=kind)
            await _put_turn(conn, session_id, turn)
            await conn.execute(
                "UPDATE shop_sessions SET turn_count = turn_count + 1, updated_at = %s WHERE session_id = %s",
                (turn.created_at, session_id),
            )
            return turn

    async def append_event(self, session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> StoredEvent:
        payload = json.dumps(data, default=str)
        async with self._tx() as conn:
            # The row lock on the turn serialises concurrent appends, so seqs never collide.
            cur = await conn.execute(
                "UPDATE shop_turns SET next_seq = next_seq + 1 WHERE session_id = %s AND turn_id = %s "
                "RETURNING next_seq - 1",
                (session_id, turn_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise TurnNotFound(session_id, turn_id)
            seq = int(row[0])
            await conn.execute(
                "INSERT INTO shop_events (session_id, turn_id, seq, event, data) VALUES (%s, %s, %s, %s, %s::json)",
                (session_id, turn_id, seq, event, payload),
            )
        return StoredEvent(id=make_event_id(turn_id, seq), event=event, data=json.loads(payload))

    async def complete_turn(self, session_id: str, turn: Turn) -> None:
        check_final(turn)
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT idx FROM shop_turns WHERE session_id = %s AND turn_id = %s FOR UPDATE",
                (session_id, turn.turn_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise TurnNotFound(session_id, turn.turn_id)
            await _put_turn(conn, session_id, finalize(turn, int(row[0])))
            await conn.execute(
                "UPDATE shop_sessions SET updated_at = %s WHERE session_id = %s", (utc_now(), session_id)
            )

    async def renew_lease(self, session_id: str, turn_id: str, until: datetime) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT doc FROM shop_turns WHERE session_id = %s AND turn_id = %s AND status = 'in_progress' "
                "FOR UPDATE",
                (session_id, turn_id),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await _put_turn(conn, session_id, Turn.model_validate(row[0]).model_copy(update={"lease_until": until}))
            return True

    async def events_after(
        self, session_id: str, last_event_id: str | None, turn_id: str | None = None
    ) -> list[StoredEvent]:
        wanted_turn, first_seq = resolve_resume(last_event_id, turn_id)
        async with self._tx() as conn:
            cur = await conn.execute("SELECT 1 FROM shop_sessions WHERE session_id = %s", (session_id,))
            if await cur.fetchone() is None:
                raise SessionNotFound(session_id)
            if wanted_turn is None:
                cur = await conn.execute(
                    "SELECT turn_id, next_seq FROM shop_turns WHERE session_id = %s ORDER BY idx DESC LIMIT 1",
                    (session_id,),
                )
            else:
                cur = await conn.execute(
                    "SELECT turn_id, next_seq FROM shop_turns WHERE session_id = %s AND turn_id = %s",
                    (session_id, wanted_turn),
                )
            row = await cur.fetchone()
            if row is None:
                if wanted_turn is None:
                    return []
                raise unknown_turn_event(session_id, last_event_id, wanted_turn)
            tid, n_events = str(row[0]), int(row[1])
            check_resume_point(session_id, last_event_id, first_seq, n_events)
            cur = await conn.execute(
                "SELECT seq, event, data FROM shop_events WHERE session_id = %s AND turn_id = %s AND seq >= %s "
                "ORDER BY seq",
                (session_id, tid, first_seq),
            )
            return [
                StoredEvent(id=make_event_id(tid, seq), event=event, data=data)
                for seq, event, data in await cur.fetchall()
            ]

    async def set_summary(self, session_id: str, summary: str, through_index: int | None = None) -> None:
        async with self._tx() as conn:
            through = through_index
            if through is None:
                cur = await conn.execute("SELECT doc FROM shop_turns WHERE session_id = %s", (session_id,))
                through = default_summary_through(Turn.model_validate(d) for (d,) in await cur.fetchall())
            cur = await conn.execute(
                "UPDATE shop_sessions SET summary = %s, summary_through = %s, updated_at = %s WHERE session_id = %s",
                (summary, through, utc_now(), session_id),
            )
            if cur.rowcount == 0:
                raise SessionNotFound(session_id)

    async def ping(self) -> bool:
        """True when the server answers and the tables exist."""
        try:
            await self._ensure_schema()
            async with self._pool.connection() as conn:
                cur = await conn.execute("SELECT 1")
                return await cur.fetchone() == (1,)
        except (psycopg.Error, OSError):
            return False

    async def aclose(self) -> None:
        await self._pool.close()

    # --- reading

    async def _load(self, conn: psycopg.AsyncConnection[Any], session_id: str) -> Session | None:
        cur = await conn.execute(
            "SELECT shopper_id, created_at, updated_at, summary, summary_through FROM shop_sessions "
            "WHERE session_id = %s",
            (session_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute("SELECT doc FROM shop_turns WHERE session_id = %s ORDER BY idx", (session_id,))
        turns = [Turn.model_validate(doc) for (doc,) in await cur.fetchall()]
        return Session(
            session_id=session_id,
            shopper_id=row[0],
            created_at=row[1],
            updated_at=row[2],
            summary=row[3],
            summary_through=row[4],
            turns=report_stale(turns, self.stale_after_s),
        )


async def _put_turn(conn: psycopg.AsyncConnection[Any], session_id: str, turn: Turn) -> None:
    await conn.execute(
        "INSERT INTO shop_turns (session_id, turn_id, idx, status, doc) VALUES (%s, %s, %s, %s, %s::json) "
        "ON CONFLICT (session_id, turn_id) DO UPDATE SET status = EXCLUDED.status, doc = EXCLUDED.doc",
        (session_id, turn.turn_id, turn.index, turn.status, turn.model_dump_json()),
    )
