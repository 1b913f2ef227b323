"""Live delivery of a session's events to its session streams: in one process (`SessionHub`), or across replicas
through the session store's server (`RedisHub`: pub/sub; `PostgresHub`: LISTEN/NOTIFY).

An event is logged first, then published, so a stream that subscribed and then read the log misses nothing (it drops
what it already read by id). A shared hub delivers to this process's streams at once and sends the event to the
other replicas in publishing order; each replica ignores what it sent itself. It also carries "cancel this session's
bot turns" (a takeover on replica B stops a turn running on replica A) and "someone follows this turn" (a stream
resumed on replica B keeps the turn running on replica A, whose own follower left).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from assistant.sessions.models import StoredEvent

log = logging.getLogger(__name__)

CHANNEL = "shop_live"
RETRY_S = 1.0
MAX_BACKLOG = 1000
"""Events one session stream may have waiting: a stream further behind (its client stopped reading) is ended, its
backlog freed; the client reconnects with Last-Event-ID and reads the rest from the log."""

Fetch = Callable[[str, str], Awaitable[StoredEvent | None]]
"""(session id, event id) -> the logged event: for a message too large to travel whole."""


class SessionHub:
    """Every event of a session, fanned out as it is published to the session streams open in this process."""

    shared = False

    def __init__(self, max_backlog: int = MAX_BACKLOG) -> None:
        self.max_backlog = max_backlog
        self._subscribers: dict[str, set[asyncio.Queue[StoredEvent | None]]] = {}
        self.on_cancel: Callable[[str, str], object] | None = None  # LiveTurns: cancel a session's turns here
        self.on_follow: Callable[[str], object] | None = None  # LiveTurns: a turn of this process is followed elsewhere

    def publish(self, session_id: str, event: StoredEvent) -> int:
        """Hand the event to the session's subscribers (and, shared, to the other replicas'); how many are here."""
        self._send({"kind": "event", "session_id": session_id, "event": event.model_dump(mode="json")})
        return self._deliver(session_id, event)

    def cancel_turns(self, session_id: str, reason: str) -> None:
        """Ask the other replicas to cancel the session's bot turns (this one cancels its own)."""
        self._send({"kind": "cancel", "session_id": session_id, "reason": reason})

    def following(self, session_id: str, turn_id: str) -> None:
        """Tell the replica running the turn that a stream here follows it (sent again while it does)."""
        self._send({"kind": "follow", "session_id": session_id, "turn_id": turn_id})

    def listeners(self, session_id: str) -> int:
        return len(self._subscribers.get(session_id, ()))

    @contextlib.contextmanager
    def subscribe(self, session_id: str) -> Iterator[asyncio.Queue[StoredEvent | None]]:
        """The session's events as they are published; None once the subscriber fell `max_backlog` events behind
        (it was dropped: nothing more comes)."""
        queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(self.max_backlog + 1)
        self._subscribers.setdefault(session_id, set()).add(queue)
        try:
            yield queue
        finally:
            self._unsubscribe(session_id, queue)

    def _unsubscribe(self, session_id: str, queue: asyncio.Queue[StoredEvent | None]) -> None:
        queues = self._subscribers.get(session_id, set())
        queues.discard(queue)
        if not queues:
            self._subscribers.pop(session_id, None)

    async def start(self) -> None:
        """Start listening to the other replicas (nothing to do in one process)."""

    async def aclose(self) -> None:
        """Stop listening."""

    # --- for the shared hubs

    def _send(self, message: dict[str, Any]) -> None:
        """Send to the other replicas (one process: nobody to send to)."""

    def _deliver(self, session_id: str, event: StoredEvent) -> int:
        queues = self._subscribers.get(session_id, set())
        for queue in list(queues):
            if queue.qsize() < self.max_backlog:
                queue.put_nowait(event)
            else:  # a subscriber that stopped taking events: its backlog is freed, its stream ends
                log.info("session %s: a stream %d events behind was dropped", session_id, self.max_backlog)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                self._unsubscribe(session_id, queue)
        return len(queues)

    def _received(self, message: dict[str, Any], event: StoredEvent | None) -> None:
        session_id = str(message["session_id"])
        if message["kind"] == "cancel":
            if self.on_cancel is not None:
                self.on_cancel(session_id, str(message.get("reason") or "cancelled"))
        elif message["kind"] == "follow":
            if self.on_follow is not None:
                self.on_follow(str(message.get("turn_id")))
        elif event is not None:
            self._deliver(session_id, event)


class SharedHub(SessionHub):
    """A hub whose messages go through a server: sent in order by one task, received by another."""

    shared = True

    def __init__(self, max_backlog: int = MAX_BACKLOG) -> None:
        super().__init__(max_backlog)
        self.origin = uuid.uuid4().hex  # this replica: what it sent comes back to it, and is ignored
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            return
        await self._connect()
        self._tasks = [asyncio.create_task(self._sending()), asyncio.create_task(self._receiving())]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._disconnect()

    def _send(self, message: dict[str, Any]) -> None:
        if self._tasks:
            self._outbox.put_nowait(json.dumps({**message, "origin": self.origin}, separators=(",", ":")))

    async def _sending(self) -> None:
        while True:
            payload = await self._outbox.get()
            while True:
                try:
                    await self._post(payload)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # the server is away: keep the order, try again
                    log.warning("live delivery: sending failed; retrying", exc_info=True)
                    await asyncio.sleep(RETRY_S)

    async def _receiving(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live delivery: listening failed; reconnecting", exc_info=True)
                await asyncio.sleep(RETRY_S)

    async def _handle(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("origin") == self.origin:
            return
        event = await self._event_of(message) if message.get("kind") == "event" else None
        self._received(message, event)

    async def _event_of(self, message: dict[str, Any]) -> StoredEvent | None:
        return StoredEvent.model_validate(message["event"]) if "event" in message else None

    async def _connect(self) -> None: ...

    async def _disconnect(self) -> None: ...

    async def _post(self, payload: str) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        raise NotImplementedError


class RedisHub(SharedHub):
    """Redis pub/sub on one channel (under the sessions' key prefix)."""

    def __init__(self, url: str, channel: str = f"shop:sessions:{CHANNEL}") -> None:
        super().__init__()
        self.url, self.channel = url, channel
        self._client: Any = None

    async def _connect(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(self.url, decode_responses=True, socket_connect_timeout=10)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _post(self, payload: str) -> None:
        await self._client.publish(self.channel, payload)

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    await self._handle(str(item["data"]))
        finally:
            await pubsub.aclose()


NOTIFY_MAX_BYTES = 7900
"""PostgreSQL refuses a NOTIFY payload from 8000 bytes; a larger event travels as its id and is read from the log."""


class PostgresHub(SharedHub):
    """PostgreSQL LISTEN/NOTIFY on one channel; an event too large for a notification is read from the log."""

    def __init__(self, dsn: str, fetch: Fetch, channel: str = CHANNEL) -> None:
        super().__init__()
        self.dsn, self.fetch, self.channel = dsn, fetch, channel
        self._conn: Any = None

    async def _open(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=10)

    async def _connect(self) -> None:
        self._conn = await self._open()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def _send(self, message: dict[str, Any]) -> None:
        if message.get("kind") == "event" and len(json.dumps(message).encode()) > NOTIFY_MAX_BYTES:
            message = {"kind": "event", "session_id": message["session_id"], "ref": message["event"]["id"]}
        super()._send(message)

    async def _post(self, payload: str) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await self._open()
        await self._conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    async def _listen(self) -> None:
        conn = await self._open()
        try:
            await conn.execute(f"LISTEN {self.channel}")
            async for notice in conn.notifies():
                await self._handle(notice.payload)
        finally:
            await conn.close()

    async def _event_of(self, message: dict[str, Any]) -> StoredEvent | None:
        if "ref" in message:  # in order: the next notification waits for this read
            return await self.fetch(str(message["session_id"]), str(message["ref"]))
        return await super()._event_of(message)


def make_hub(backend: str, url: str, fetch: Fetch) -> SessionHub:
    """The hub for a session store: shared through Redis or PostgreSQL, in-process for SQLite."""
    if backend == "redis":
        return RedisHub(url)
    if backend == "postgres":
        return PostgresHub(url, fetch)
    return SessionHub()
