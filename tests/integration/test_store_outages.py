"""Real Redis, PostgreSQL and Chroma servers hung (SIGSTOP) and restarted under the stores (found by
eval.reliability's stores part): a call to a hung server gives up within the store's timeout with the store's
"unavailable" error (it used to wait forever: no socket timeout, no statement deadline, Chroma's HTTP client without
a timeout), and after a restart the next call works (PostgreSQL's pool used to hand out the connections the server
had closed: the first calls after a restart failed)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from assistant.errors import StoreUnavailable
from assistant.sessions.base import SessionStoreUnavailable
from assistant.sessions.postgres_store import PostgresSessionStore
from assistant.sessions.redis_store import RedisSessionStore
from assistant.stores.postgres_records import PostgresRecordStore
from assistant.stores.records import Record
from assistant.stores.redis_records import RedisRecordStore
from eval.local_servers import ChromaServer, LocalServer, PostgresServer, RedisServer, postgres_bindir
from retrieval.store import VectorStore, VectorStoreUnavailable, make_chroma_client

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0
WITHIN_S = 4 * TIMEOUT_S + 2.0  # a hung server's call gives up within a few timeouts (pool wait, connect, call)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/services.sh install)")
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/services.sh install)")
    with PostgresServer() as server:
        yield server


def gives_up(call: Callable[[], object], error: type[BaseException]) -> None:
    """`call()` (sync, or a coroutine function) raises `error` within WITHIN_S (run in a thread: a call that waits
    for the server fails the test instead of hanging it)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            result = call()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
            outcome["returned"] = result
        except BaseException as e:  # what the call raised is the finding
            outcome["raised"] = e

    t0 = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(WITHIN_S)
    assert not worker.is_alive(), f"still waiting for the server after {WITHIN_S:.0f}s"
    assert isinstance(outcome.get("raised"), error), f"{outcome} after {time.monotonic() - t0:.1f}s"


def paused(server: LocalServer) -> None:
    server.pause()
    time.sleep(0.2)


def test_redis_sessions_and_records_give_up_on_a_hung_server_and_recover(redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"

    async def sessions_call(op: str) -> object:
        async with RedisSessionStore(redis.url, key_prefix=prefix, timeout_s=TIMEOUT_S) as store:
            if op == "create":
                return await store.create_session("1", "s1")
            return await store.get_session("s1")

    records = RedisRecordStore(redis.url, namespace=f"t{uuid.uuid4().hex[:8]}", timeout_s=TIMEOUT_S)
    try:
        asyncio.run(sessions_call("create"))
        records.insert([[Record("order", "o1", {"n": 1}, owner="1")]])
        paused(redis)
        try:
            gives_up(lambda: sessions_call("get"), SessionStoreUnavailable)
            gives_up(lambda: records.get("order", ["o1"]), StoreUnavailable)
        finally:
            redis.resume()
        assert asyncio.run(sessions_call("get")) is not None
        redis.kill()  # appendonly, appendfsync always: what was acknowledged is kept
        gives_up(lambda: records.get("order", ["o1"]), StoreUnavailable)
        redis.start()
        assert records.get("order", ["o1"])["o1"].doc == {"n": 1}
        assert asyncio.run(sessions_call("get")) is not None
    finally:
        records.close()


def test_postgres_sessions_give_up_on_a_hung_server_and_reconnect_after_a_restart(postgres: PostgresServer) -> None:
    async def scenario() -> None:
        async with PostgresSessionStore(postgres.dsn, timeout_s=TIMEOUT_S) as store:
            await store.create_session("1", "s1")
            paused(postgres)
            try:
                with pytest.raises(SessionStoreUnavailable):  # on a pooled connection the server does not answer
                    await asyncio.wait_for(store.get_session("s1"), WITHIN_S)
                with pytest.raises(SessionStoreUnavailable):  # on a new connection: connecting is bounded too
                    await asyncio.wait_for(store.get_session("s1"), WITHIN_S)
                assert await asyncio.wait_for(store.ping(), WITHIN_S) is False
            finally:
                postgres.resume()
            assert await store.get_session("s1") is not None
            postgres.restart()  # the pooled connections are closed by the server
            assert await store.get_session("s1") is not None  # not an error: a closed idle connection is replaced

    asyncio.run(scenario())


def test_postgres_records_give_up_on_a_hung_server_and_reconnect_after_a_restart(postgres: PostgresServer) -> None:
    records = PostgresRecordStore(postgres.dsn, namespace=f"t{uuid.uuid4().hex[:8]}", timeout_s=TIMEOUT_S)
    try:
        records.insert([[Record("order", "o1", {"n": 1}, owner="1")]])
        paused(postgres)
        try:
            gives_up(lambda: records.get("order", ["o1"]), StoreUnavailable)
            assert records.ping() is False
        finally:
            postgres.resume()
        assert records.get("order", ["o1"])["o1"].doc == {"n": 1}
        postgres.restart()
        assert records.get("order", ["o1"])["o1"].doc == {"n": 1}
    finally:
        records.close()


def test_a_hung_chroma_server_is_unavailable_within_the_timeout_and_answers_after_resume() -> None:
    try:
        server = ChromaServer()
    except RuntimeError as e:
        pytest.skip(str(e))
    with server:
        client = make_chroma_client("http", host="127.0.0.1", port=server.port, timeout_s=TIMEOUT_S)
        store = VectorStore(client, f"t{uuid.uuid4().hex[:8]}")
        store.text.upsert(ids=["a", "b"], embeddings=np.eye(2, 8, dtype=np.float32), metadatas=[{"x": 1}, {"x": 2}])
        query = np.eye(1, 8, dtype=np.float32)[0]
        assert [h.id for h in store.query_text(query, 1)] == ["a"]
        paused(server)
        try:
            gives_up(lambda: store.query_text(query, 1), VectorStoreUnavailable)
        finally:
            server.resume()
        assert [h.id for h in store.query_text(query, 1)] == ["a"]
        server.stop()
        gives_up(lambda: store.query_text(query, 1), VectorStoreUnavailable)
        server.start()
        assert [h.id for h in store.query_text(query, 1)] == ["a"]
