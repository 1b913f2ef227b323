"""The session-store protocol suite against SQLite, a real Redis and a real PostgreSQL.

The servers come from tests/integration/conftest.py (`redis_url`, `postgres_dsn`).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from assistant.sessions import SessionStore, make_session_store, open_session_store
from assistant.sessions.postgres_store import PostgresSessionStore
from assistant.sessions.redis_store import RedisSessionStore
from eval.local_servers import HOST, free_port
from tests.unit.test_sessions_contract import SessionStoreContract, StoreFactory, run_turn

pytestmark = pytest.mark.integration


class TestStores(SessionStoreContract):
    """The same suite as tests/unit, once per backend, every store built from its URL."""

    @pytest.fixture(params=["sqlite", "redis", "postgres"])
    def store_factory(self, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'sessions.sqlite'}"
        elif request.param == "redis":
            url = request.getfixturevalue("redis_url")
        else:
            url = request.getfixturevalue("postgres_dsn")
        prefix = f"test-{uuid.uuid4().hex[:8]}:"  # keeps each test's Redis keys apart

        def make(**options: Any) -> SessionStore:
            return make_session_store(url, key_prefix=prefix, **options)

        return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_redis_keys_use_the_prefix_and_expire(redis_url: str) -> None:
    prefix = f"ttl-{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(redis_url, key_prefix=prefix, ttl_s=120) as store:
        session = await store.create_session("u1")
        await run_turn(store, session.session_id, "hello")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = client.keys(f"{prefix}*")
        assert len(keys) == 4  # session, turns, the turn's events, the shopper's index
        assert all(0 < client.ttl(k) <= 120 for k in keys)  # type: ignore[operator]
    finally:
        client.close()

    prefix = f"forever-{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(redis_url, key_prefix=prefix, ttl_s=None) as store:
        await run_turn(store, (await store.create_session("u1")).session_id, "hello")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert all(client.ttl(k) == -1 for k in client.keys(f"{prefix}*"))
    finally:
        client.close()


@pytest.mark.anyio
async def test_redis_list_sessions_drops_expired_sessions(redis_url: str) -> None:
    prefix = f"exp-{uuid.uuid4().hex[:8]}:"
    async with RedisSessionStore(redis_url, key_prefix=prefix) as store:
        kept = await store.create_session("u1")
        gone = await store.create_session("u1")
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await client.delete(f"{prefix}s:{gone.session_id}")  # as if its TTL ran out
        finally:
            await client.aclose()
        assert [s.session_id for s in await store.list_sessions("u1")] == [kept.session_id]


@pytest.mark.anyio
async def test_postgres_schema_created_by_concurrent_first_users(postgres_dsn: str) -> None:
    db = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")  # type: ignore[arg-type]
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{db}"
    stores = [PostgresSessionStore(dsn) for _ in range(4)]
    try:
        sessions = await asyncio.gather(*(s.create_session("u1") for s in stores))
        assert len({s.session_id for s in sessions}) == 4
        assert len(await stores[0].list_sessions("u1")) == 4
    finally:
        for s in stores:
            await s.aclose()


@pytest.mark.anyio
async def test_ping_is_false_when_the_server_is_gone() -> None:
    port = free_port()  # nothing listens there
    for url in (f"redis://{HOST}:{port}/0", f"postgresql://shop@{HOST}:{port}/postgres?connect_timeout=2"):
        store = make_session_store(url)
        try:
            assert await store.ping() is False
        finally:
            await store.aclose()
        with pytest.raises(RuntimeError, match="SHOP_SESSION_STORE_URL"):
            await open_session_store(url)


@pytest.mark.anyio
async def test_open_session_store_checks_the_server(redis_url: str, postgres_dsn: str, tmp_path: Path) -> None:
    for url in (redis_url, postgres_dsn, f"sqlite:///{tmp_path / 's.sqlite'}"):
        store = await open_session_store(url)
        try:
            session = await store.create_session("u1")
            assert (await store.get_session(session.session_id)) is not None
        finally:
            await store.aclose()
