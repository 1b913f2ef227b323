"""Records in Redis: a string per record, a sorted set per owner, a set of keys per kind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from redis.retry import Retry

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

_CHUNK = 500  # records per round trip (and per insert transaction)
# The server away (refused, reset, still loading its data after a restart) or slower than the timeout.
_unavailable = unavailable_on("Redis", RedisConnectionError, RedisTimeoutError, OSError)


class RedisRecordStore:
    """Every key starts with `<namespace>:records:`. Writes are WATCH + MULTI/EXEC transactions that run again
    when another client changed a watched record meanwhile. Records never expire: orders and carts are kept. A call
    that fails to reach the server, or gets no answer within `timeout_s` (not retried), raises StoreUnavailable."""

    def __init__(self, url: str, *, namespace: str = "shop", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not NAMESPACE.match(namespace):
            raise ValueError(f"namespace {namespace!r}: use lowercase letters, digits and '_'")
        self.prefix = f"{namespace}:records:"
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    # --- keys

    def _rkey(self, kind: str, key: str) -> str:
        return f"{self.prefix}{check_kind(kind)}:r:{key}"

    def _okey(self, kind: str, owner: str) -> str:
        return f"{self.prefix}{kind}:o:{owner}"

    def _akey(self, kind: str) -> str:
        return f"{self.prefix}{check_kind(kind)}:all"

    @staticmethod
    def _dump(r: Record) -> str:
        return json.dumps({"owner": r.owner, "sort": r.sort, "doc": r.doc})

    @staticmethod
    def _load(kind: str, key: str, raw: Any) -> Record | None:
        if raw is None:
            return None
        body: dict[str, Any] = json.loads(raw)
        return Record(kind=kind, key=key, owner=body["owner"], sort=body["sort"], doc=body["doc"])

    def _put(self, pipe: Pipeline, r: Record, old: Record | None) -> None:
        if old is not None and old.owner != r.owner:
            pipe.zrem(self._okey(r.kind, old.owner), r.key)
        pipe.set(self._rkey(r.kind, r.key), self._dump(r))
        pipe.zadd(self._okey(r.kind, r.owner), {r.key: r.sort})
        pipe.sadd(self._akey(r.kind), r.key)

    def _transaction(self, fn: Callable[[Pipeline], T], *watched: str) -> T:
        """`fn(pipe)` between WATCH and EXEC (fn reads, then calls pipe.multi() before writing); run again
        when a watched key changed before EXEC."""
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*watched)
                    value = fn(pipe)
                    pipe.execute()
                    return value
                except WatchError:
                    continue

    # --- store

    @_unavailable
    def get(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, Record] = {}
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            raws = self._redis.mget([self._rkey(kind, k) for k in chunk])
            for key, raw in zip(chunk, raws, strict=True):
                if (r := self._load(kind, key, raw)) is not None:
                    found[key] = r
        return found

    @_unavailable
    def insert(self, groups: Iterable[Sequence[Record]]) -> int:
        pending = [list(g) for g in groups]
        stored = 0
        # Each chunk of groups is one transaction; groups are independent, so chunking keeps their meaning.
        for start in range(0, len(pending), _CHUNK):
            chunk = pending[start : start + _CHUNK]
            watched = list(dict.fromkeys(self._rkey(r.kind, r.key) for g in chunk for r in g))

            def fn(pipe: Pipeline, chunk: list[list[Record]] = chunk, watched: list[str] = watched) -> int:
                taken = {k for k, raw in zip(watched, pipe.mget(watched), strict=True) if raw is not None}
                pipe.multi()
                n = 0
                for group in chunk:
                    rkeys = [self._rkey(r.kind, r.key) for r in group]
                    if taken.intersection(rkeys):
                        continue
                    for r in group:
                        self._put(pipe, r, None)
                    taken.update(rkeys)
                    n += 1
                return n

            if watched:
                stored += self._transaction(fn, *watched)
        return stored

    @_unavailable
    def update(self, kind: str, key: str, change: Change) -> Record | None:
        rkey = self._rkey(kind, key)

        def fn(pipe: Pipeline) -> Record | None:
            current = self._load(kind, key, pipe.get(rkey))
            new = change(current)
            if new is None:
                return current
            check_change(kind, key, new)
            pipe.multi()
            self._put(pipe, new, current)
            return new

        return self._transaction(fn, rkey)

    @_unavailable
    def delete(self, kind: str, key: str) -> bool:
        rkey = self._rkey(kind, key)

        def fn(pipe: Pipeline) -> bool:
            current = self._load(kind, key, pipe.get(rkey))
            if current is None:
                return False
            pipe.multi()
            pipe.delete(rkey)
            pipe.zrem(self._okey(kind, current.owner), key)
            pipe.srem(self._akey(kind), key)
            return True

        return self._transaction(fn, rkey)

    @_unavailable
    def list(self, kind: str, owner: str, *, newest_first: bool = False, limit: int | None = None) -> list[Record]:
        if limit is not None and limit <= 0:
            return []
        okey = self._okey(check_kind(kind), owner)
        end = -1 if limit is None else limit - 1
        keys: list[str] = self._redis.zrange(okey, 0, end, desc=newest_first)  # type: ignore[assignment]
        found = self.get(kind, keys)
        return [found[k] for k in keys if k in found]  # a record deleted since the zrange is left out

    @_unavailable
    def keys(self, kind: str) -> set[str]:
        members: set[str] = self._redis.smembers(self._akey(kind))  # type: ignore[assignment]
        return set(members)

    @_unavailable
    def count(self, kind: str) -> int:
        return int(self._redis.scard(self._akey(kind)))  # type: ignore[arg-type]

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        self._redis.close()
