"""Sessions in Redis: a hash per session, a hash of turn documents, a list of events per turn."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

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

DEFAULT_TTL_S = 30 * 24 * 3600
# The server away (refused, reset, still loading its data after a restart) or slower than the timeout.
_AWAY = (RedisConnectionError, RedisTimeoutError, OSError)
_unavailable = unavailable_on("Redis", *_AWAY)


def redis_client(url: str, timeout_s: float) -> aioredis.Redis:
    """A client whose every call gives up after `timeout_s` (connecting included) and is not retried, so a hung or
    gone server is reported within the timeout; a pooled connection the server closed is replaced before use."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


# RPUSH's reply is the list's new length, so the event's seq is assigned atomically with the write.
_APPEND = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local n = redis.call('RPUSH', KEYS[2], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return n - 1
"""


class RedisSessionStore(StoreLifecycle):
    """Keys under `key_prefix`, each refreshed to expire `ttl_s` after the session's last write
    (None: never). Turn begin/complete run as WATCH + MULTI/EXEC transactions. Durability of a
    completed turn is the server's: run Redis with `appendonly yes` where that matters. A call that fails to reach the
    server, or gets no answer within `timeout_s`, raises SessionStoreUnavailable."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "shop:sessions:",
        ttl_s: int | None = DEFAULT_TTL_S,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        client: aioredis.Redis | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive or None")
        self.prefix = key_prefix
        self.ttl_s = ttl_s
        self.stale_after_s = stale_after_s
        self._redis = client or redis_client(url, timeout_s)
        self._append = self._redis.register_script(_APPEND)

    # --- keys

    def _skey(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def _tkey(self, session_id: str) -> str:
        return f"{self.prefix}t:{session_id}"

    def _ekey(self, session_id: str, turn_id: str) -> str:
        return f"{self.prefix}e:{session_id}:{turn_id}"

    def _shopper_key(self, shopper_id: str) -> str:
        return f"{self.prefix}shopper:{shopper_id}"

    def _expire(self, pipe: Pipeline, *keys: str) -> None:
        if self.ttl_s is not None:
            for key in keys:
                pipe.expire(key, self.ttl_s)

    # --- protocol

    @_unavailable
    async def create_session(self, shopper_id: str, session_id: str | None = None) -> Session:
        check_shopper_id(shopper_id)
        session = Session(session_id=check_session_id(session_id or new_session_id()), shopper_id=shopper_id)
        skey, shopper_key = self._skey(session.session_id), self._shopper_key(shopper_id)

        async def fn(pipe: Pipeline) -> None:
            if await pipe.exists(skey):
                raise SessionExists(session.session_id)
            pipe.multi()
            pipe.hset(
                skey,
                mapping={
                    "shopper_id": shopper_id,
                    "created_at": session.created_at.isoformat(),
                    "updated_at": session.updated_at.isoformat(),
                    "turn_count": 0,
                },
            )
            pipe.zadd(shopper_key, {session.session_id: session.updated_at.timestamp()})
            self._expire(pipe, skey, shopper_key)

        await self._redis.transaction(fn, skey)
        return session

    @_unavailable
    async def get_session(self, session_id: str) -> Session | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._skey(session_id))
            pipe.hvals(self._tkey(session_id))
            meta, docs = await pipe.execute()
        return self._session(session_id, meta, docs)

    @_unavailable
    async def list_sessions(self, shopper_id: str, limit: int = 20) -> list[Session]:
        if limit <= 0:
            return []
        shopper_key = self._shopper_key(shopper_id)
        out: list[Session] = []
        start = 0
        while len(out) < limit:
            ids = [str(i) for i in await self._redis.zrevrange(shopper_key, start, start + limit - 1)]
            if not ids:
                break
            start += len(ids)
            gone = []
            for sid in ids:
                session = await self.get_session(sid)
                if session is None or session.shopper_id != shopper_id:
                    gone.append(sid)
                elif len(out) < limit:
                    out.append(session)
            if gone:  # expired sessions leave their id in the shopper's index
                await self._redis.zrem(shopper_key, *gone)
                start -= len(gone)
        return out

    @_unavailable
    async def begin_turn(self, session_id: str, user_message: str, kind: TurnKind = "bot") -> Turn:
        skey, tkey = self._skey(session_id), self._tkey(session_id)

        async def fn(pipe: Pipeline) -> Turn:
            meta = _strs(await pipe.hgetall(skey))
            if not meta:
                raise SessionNotFound(session_id)
            current = meta.get("current")
            stale = await pipe.hget(tkey, current) if current else None
            turn = Turn(
                turn_id=new_turn_id(), index=int(meta.get("turn_count", 0)), user_message=user_message, kind=kind
            )
            pipe.multi()
            if stale is not None:
                old = Turn.model_validate_json(stale)
                if old.status == "in_progress":
                    pipe.hset(tkey, old.turn_id, supersede(old).model_dump_json())
            pipe.hset(tkey, turn.turn_id, turn.model_dump_json())
            pipe.hset(
                skey,
                mapping={
                    "turn_count": turn.index + 1,
                    "current": turn.turn_id,
                    "last_turn": turn.turn_id,
                    "updated_at": turn.created_at.isoformat(),
                },
            )
            self._index(pipe, meta["shopper_id"], session_id, turn.created_at.timestamp())
            self._expire(pipe, skey, tkey)
            return turn

        turn: Turn = await self._redis.transaction(fn, skey, tkey, value_from_callable=True)
        return turn

    @_unavailable
    async def append_event(self, session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> StoredEvent:
        payload = json.dumps({"event": event, "data": data}, default=str)
        seq = int(
            await self._append(
                keys=[self._tkey(session_id), self._ekey(session_id, turn_id)],
                args=[turn_id, payload, self.ttl_s or 0],
            )
        )
        if seq < 0:
            raise TurnNotFound(session_id, turn_id)
        return StoredEvent(id=make_event_id(turn_id, seq), event=event, data=json.loads(payload)["data"])

    @_unavailable
    async def complete_turn(self, session_id: str, turn: Turn) -> None:
        check_final(turn)
        skey, tkey = self._skey(session_id), self._tkey(session_id)

        async def fn(pipe: Pipeline) -> None:
            meta = _strs(await pipe.hgetall(skey))
            doc = await pipe.hget(tkey, turn.turn_id)
            if not meta or doc is None:
                raise TurnNotFound(session_id, turn.turn_id)
            final = finalize(turn, Turn.model_validate_json(doc).index)
            now = utc_now()
            pipe.multi()
            pipe.hset(tkey, turn.turn_id, final.model_dump_json())
            if meta.get("current") == turn.turn_id:
                pipe.hdel(skey, "current")
            pipe.hset(skey, "updated_at", now.isoformat())
            self._index(pipe, meta["shopper_id"], session_id, now.timestamp())
            self._expire(pipe, skey, tkey, self._ekey(session_id, turn.turn_id))

        await self._redis.transaction(fn, skey, tkey)

    @_unavailable
    async def renew_lease(self, session_id: str, turn_id: str, until: datetime) -> bool:
        tkey = self._tkey(session_id)

        async def fn(pipe: Pipeline) -> bool:
            doc = await pipe.hget(tkey, turn_id)
            turn = Turn.model_validate_json(doc) if doc is not None else None
            if turn is None or turn.status != "in_progress":
                return False
            pipe.multi()
            pipe.hset(tkey, turn_id, turn.model_copy(update={"lease_until": until}).model_dump_json())
            return True

        renewed: bool = await self._redis.transaction(fn, tkey, value_from_callable=True)
        return renewed

    @_unavailable
    async def events_after(
        self, session_id: str, last_event_id: str | None, turn_id: str | None = None
    ) -> list[StoredEvent]:
        wanted_turn, first_seq = resolve_resume(last_event_id, turn_id)
        meta = _strs(await self._redis.hgetall(self._skey(session_id)))
        if not meta:
            raise SessionNotFound(session_id)
        tid = wanted_turn if wanted_turn is not None else meta.get("last_turn")
        if tid is None:
            return []
        if not await self._redis.hexists(self._tkey(session_id), tid):
            raise unknown_turn_event(session_id, last_event_id, tid)
        raw = await self._redis.lrange(self._ekey(session_id, tid), 0, -1)
        check_resume_point(session_id, last_event_id, first_seq, len(raw))
        out = []
        for seq in range(first_seq, len(raw)):
            item = json.loads(raw[seq])
            out.append(StoredEvent(id=make_event_id(tid, seq), event=item["event"], data=item["data"]))
        return out

    @_unavailable
    async def set_summary(self, session_id: str, summary: str, through_index: int | None = None) -> None:
        skey, tkey = self._skey(session_id), self._tkey(session_id)

        async def fn(pipe: Pipeline) -> None:
            if not await pipe.exists(skey):
                raise SessionNotFound(session_id)
            through = through_index
            if through is None:
                through = default_summary_through(Turn.model_validate_json(d) for d in await pipe.hvals(tkey))
            pipe.multi()
            pipe.hset(skey, mapping={"summary": summary, "updated_at": utc_now().isoformat()})
            if through is None:
                pipe.hdel(skey, "summary_through")
            else:
                pipe.hset(skey, "summary_through", through)
            self._expire(pipe, skey)

        await self._redis.transaction(fn, skey, tkey)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()

    # --- helpers

    def _index(self, pipe: Pipeline, shopper_id: str, session_id: str, score: float) -> None:
        key = self._shopper_key(shopper_id)
        pipe.zadd(key, {session_id: score})
        self._expire(pipe, key)

    def _session(self, session_id: str, meta: dict[str, str], docs: list[str]) -> Session | None:
        if not meta:
            return None
        through = meta.get("summary_through")
        return Session(
            session_id=session_id,
            shopper_id=meta["shopper_id"],
            created_at=meta["created_at"],  # type: ignore[arg-type]
            updated_at=meta["updated_at"],  # type: ignore[arg-type]
            summary=meta.get("summary"),
            summary_through=int(through) if through is not None else None,
            turns=report_stale((Turn.model_validate_json(d) for d in docs), self.stale_after_s),
        )


def _strs(mapping: Any) -> dict[str, str]:
    """A hash reply as str -> str (the client decodes responses)."""
    return {str(k): str(v) for k, v in mapping.items()}
