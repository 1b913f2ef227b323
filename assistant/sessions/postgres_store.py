"""Sessions in PostgreSQL (psycopg 3, async): three tables created on first use."""

from __future__ import annotations

import asyncio
import json
import math
import select
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from assistant.sessions.base import (
    DEFAULT_STALE_AFTER_S,
    DEFAULT_TIMEOUT_S,
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
    unavailable_on,
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
_SCHEMA_LOCK_KEY = 0x53484F50  # "SHOP": serialises CREATE IF NOT EXISTS across processes
SCHEMA_TIMEOUT_S = 60.0
# The server away (refused, shut down, reset) or slower than the timeout (then the connection is closed).
_AWAY = (psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError)
_unavailable = unavailable_on("PostgreSQL", *_AWAY)


class Timed:
    """What the timed connections (this async one, and the records' sync one) share: every exchange with the server
    (a statement, BEGIN, COMMIT) must finish within `timeout_s`; past it the connection is closed (its state is
    unknown) and OperationalError raised. A server that stopped answering (SIGSTOP, a frozen host) still accepts
    and keeps connections: else a call would wait forever."""

    timeout_s: float = DEFAULT_TIMEOUT_S

    @contextmanager
    def patient(self) -> Iterator[None]:
        """Exchanges within wait up to SCHEMA_TIMEOUT_S (creating the tables, once)."""
        timeout_s, self.timeout_s = self.timeout_s, max(self.timeout_s, SCHEMA_TIMEOUT_S)
        try:
            yield
        finally:
            self.timeout_s = timeout_s

    def timed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """`wait`'s keyword arguments with the timeout, unless the caller gave one."""
        if len(args) < 2 and kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return kwargs

    def timed_out(self, e: psycopg.errors.OperationalError, pgconn: Any) -> psycopg.OperationalError:
        """The error to raise for `e` from `wait`: a timeout closes the connection and says so; anything else as is."""
        if type(e).__name__ != "_WaitTimeout":
            return e
        pgconn.finish()
        return psycopg.OperationalError(f"no answer from the server within {self.timeout_s:g}s")


class TimedAsyncConnection(Timed, psycopg.AsyncConnection[Any]):
    """An async connection bounded as `Timed` says."""

    async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().wait(gen, *args, **self.timed(args, kwargs))
        except psycopg.errors.OperationalError as e:
            raise self.timed_out(e, self.pgconn) from None


def closed_by_server(fileno: int) -> bool:
    """An idle connection has nothing to read; readable means the server closed it (a restart, a shutdown) or sent
    an error: not worth a round trip to find out."""
    try:
        return bool(select.select([fileno], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def connect_timeout(timeout_s: float) -> int:
    """libpq's connect_timeout: whole seconds, at least 2."""
    return max(2, math.ceil(timeout_s))


class _Pool:
    """At most `size` connections, opened on demand; a broken or mid-transaction one is dropped, and so is an idle one
    the server closed meanwhile. Waiting for a free connection, connecting and every exchange are bounded by
    `timeout_s`."""

    def __init__(self, dsn: str, size: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(size)
        self._idle: list[TimedAsyncConnection] = []
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[TimedAsyncConnection]:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise TimeoutError(f"no free connection within {self.timeout_s:g}s: the server is slow to answer") from None
        try:
            conn = self._take_idle() or await self._connect()
            try:
                yield conn
            finally:
                if not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await conn.close()
        finally:
            self._slots.release()

    def _take_idle(self) -> TimedAsyncConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not closed_by_server(conn.pgconn.socket):
                return conn
            conn.pgconn.finish()
        return None

    async def _connect(self) -> TimedAsyncConnection:
        # A server that never answers would otherwise hold a turn for the OS's TCP timeout.
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self._dsn:
            options["connect_timeout"] = connect_timeout(self.timeout_s)
        conn = await TimedAsyncConnection.connect(self._dsn, **options)
        conn.timeout_s = self.timeout_s
        return conn

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class PostgresSessionStore(StoreLifecycle):
    """Sessions in `shop_sessions`, `shop_turns` (one JSON document per turn) and `shop_events`. A call that fails to
    reach the server, or gets no answer within `timeout_s`, raises SessionStoreUnavailable."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 4,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.dsn = dsn
        self.stale_after_s = stale_after_s
        self._pool = _Pool(dsn, pool_size, timeout_s)
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
            async with self._pool.connection() as conn:
                with conn.patient():  # DDL, once: waits for other replicas' (the lock) and a busy server
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                        for statement in filter(str.strip, SCHEMA.split(";")):
                            await conn.execute(statement)  # type: ignore[call-overload]
            self._schema_ready = True

    # --- protocol

    @_unavailable
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

    @_unavailable
    async def get_session(self, session_id: str) -> Session | None:
        async with self._tx() as conn:
            return await self._load(conn, session_id)

    @_unavailable
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

    @_unavailable
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

    @_unavailable
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

    @_unavailable
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

    @_unavailable
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

    @_unavailable
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

    @_unavailable
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
        except (psycopg.Error, OSError, TimeoutError):
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
