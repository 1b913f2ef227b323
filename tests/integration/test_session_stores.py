"""The session-store protocol suite against SQLite, a real Redis and a real PostgreSQL.

Each server is started once per test session on a free loopback port in a temp dir (install them
with `scripts/services.sh install`), or taken from SHOP_TEST_REDIS_URL / SHOP_TEST_POSTGRES_DSN.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from assistant.sessions import SessionStore, make_session_store, open_session_store
from assistant.sessions.postgres_store import PostgresSessionStore
from assistant.sessions.redis_store import RedisSessionStore
from tests.unit.test_sessions_contract import SessionStoreContract, StoreFactory, run_turn

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM) -> None:
    """Signal the server's process group (it was started in a new session), then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((first, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {STARTUP_TIMEOUT_S}s:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("SHOP_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/services.sh install)")
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="shop-redis-"))
    log = workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"redis://{HOST}:{port}/0"

    def ready() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    try:
        _wait_until(ready, proc, log, "redis-server")
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_bindir() -> Path | None:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "postgres").is_file() and (d / "initdb").is_file():
            return d
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    if dsn := os.environ.get("SHOP_TEST_POSTGRES_DSN"):
        yield dsn
        return
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed (scripts/services.sh install)")
    # postgres refuses to run as root: as root, run it as the package's `postgres` account.
    account: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` account to run the server as")
        account = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    data, log = workdir / "data", workdir / "postgres.log"
    port = _free_port()
    subprocess.run(
        [bindir / "initdb", "-D", data, "-A", "trust", "-U", "shop", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        **account,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # fsync=off: a throwaway server; durability against a killed process does not need it.
            [bindir / "postgres", "-D", data, "-p", str(port), "-h", HOST, "-k", workdir, "-c", "fsync=off"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **account,
        )
    dsn = f"postgresql://shop@{HOST}:{port}/postgres"

    def ready() -> bool:
        try:
            with psycopg.connect(dsn, connect_timeout=1) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    try:
        _wait_until(ready, proc, log, "postgres")
        yield dsn
    finally:
        _stop(proc, signal.SIGINT)  # SIGINT: postgres's fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)


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
    port = _free_port()  # nothing listens there
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
