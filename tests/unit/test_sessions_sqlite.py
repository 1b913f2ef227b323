"""The SQLite session store: the protocol suite, durability across a killed process, the factory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import StorageFull
from assistant.sessions import InvalidEventId, SessionStore, TurnNotFound, make_session_store
from assistant.sessions.base import LEASE_ERROR
from assistant.sessions.models import parse_event_id
from assistant.sessions.sqlite_store import SqliteSessionStore
from assistant.turns.live import LiveTurns
from tests.unit.test_sessions_contract import SessionStoreContract, StoreFactory

REPO = Path(__file__).resolve().parents[2]


class TestSqliteStore(SessionStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        def make(**options: Any) -> SessionStore:
            return SqliteSessionStore(tmp_path / "sessions.sqlite", **options)

        return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_wal_mode_and_file_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "sessions.sqlite"
    async with SqliteSessionStore(path) as store:
        await store.create_session("s1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (1,)


@pytest.mark.anyio
async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.sqlite")
    await store.create_session("s1")
    await store.aclose()
    await store.aclose()  # idempotent
    assert not await store.ping()
    with pytest.raises(RuntimeError, match="closed"):
        await store.create_session("s1")


@pytest.mark.anyio
async def test_concurrent_appends_commit_together_in_order_and_fail_alone(tmp_path: Path) -> None:
    async with SqliteSessionStore(tmp_path / "s.sqlite") as store:
        session = await store.create_session("s1")
        turns = [await store.begin_turn(session.session_id, f"m{i}") for i in range(4)]
        commits = 0  # transactions of queued appends
        original = store._write_appends

        def counting(loop: asyncio.AbstractEventLoop) -> None:
            nonlocal commits
            commits += 1
            original(loop)

        store._write_appends = counting  # type: ignore[method-assign]

        async def stream(turn_id: str) -> list[str]:
            return [(await store.append_event(session.session_id, turn_id, "token", {"i": i})).id for i in range(5)]

        results = await asyncio.gather(
            *(stream(t.turn_id) for t in turns),
            store.append_event(session.session_id, "no-such-turn", "token", {}),
            return_exceptions=True,
        )
        assert isinstance(results[-1], TurnNotFound)
        for turn, ids in zip(turns, results[:-1], strict=True):
            assert ids == [f"{turn.turn_id}:{i}" for i in range(5)]
            logged = await store.events_after(session.session_id, None, turn.turn_id)
            assert [e.data["i"] for e in logged] == list(range(5))
        assert commits < 21  # 21 appends, fewer transactions: those queued together committed together


@pytest.mark.anyio
async def test_a_full_disk_is_storage_full_and_writes_work_again_once_space_is_freed(tmp_path: Path) -> None:
    # SQLite's page limit gives the same SQLITE_FULL a full disk does (the reliability suite fills a real tmpfs).
    async with SqliteSessionStore(tmp_path / "s.sqlite") as store:
        session = await store.create_session("s1")
        kept = await store.begin_turn(session.session_id, "red shoes")
        await store.append_event(session.session_id, kept.turn_id, "token", {"text": "Two pairs."})
        conn = store._connection()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageFull, match="disk is full"):  # not a bare OperationalError (a 500), nor a masked one
            for i in range(2000):
                await store.append_event(session.session_id, kept.turn_id, "token", {"text": "x" * 2000, "i": i})
        with pytest.raises(StorageFull):
            await store.begin_turn(session.session_id, "another " * 1000)
        with pytest.raises(StorageFull):
            for _ in range(2000):
                await store.create_session("s" * 256)
        stored = await store.get_session(session.session_id)  # reads still work
        assert stored is not None and [t.user_message for t in stored.turns] == ["red shoes"]
        conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # space freed: no transaction was left open
        again = await store.begin_turn(session.session_id, "another")
        await store.append_event(session.session_id, again.turn_id, "token", {"text": "ok"})
        await store.complete_turn(session.session_id, again.model_copy(update={"status": "completed"}))
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.anyio
async def test_a_turn_its_process_stopped_running_reads_failed_once_its_lease_passed(tmp_path: Path) -> None:
    # One process on SQLite holds its running turns' leases too: killed and restarted, the cut turn reads failed
    # within the lease, not in_progress for the 10 minutes after which any turn counts as stale.
    path = tmp_path / "s.sqlite"
    async with SqliteSessionStore(path) as store:
        session = await store.create_session("s1")
        turn = await store.begin_turn(session.session_id, "red shoes")
        turns = LiveTurns(store, grace_s=5.0, lease_s=0.6)
        live = turns.start(turn.turn_id, lambda live: asyncio.Event().wait(), session_id=session.session_id)
        await asyncio.sleep(0.3)
        held = await store.get_session(session.session_id)
        assert held is not None and held.turns[0].status == "in_progress" and held.turns[0].lease_until is not None
        assert live.task is not None
        live.task.cancel()  # the process stops: nobody renews the lease, nobody stores the turn's end
        await asyncio.gather(live.task, return_exceptions=True)
    await asyncio.sleep(0.7)
    async with SqliteSessionStore(path) as restarted:
        cut = await restarted.get_session(session.session_id)
        assert cut is not None and cut.turns[0].status == "failed" and cut.turns[0].error == LEASE_ERROR


CRASHING_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from assistant.sessions.sqlite_store import SqliteSessionStore

    async def main(path):
        store = SqliteSessionStore(path)
        session = await store.create_session("shopper-1")
        sid = session.session_id
        first = await store.begin_turn(sid, "red shoes")
        for i in range(3):
            await store.append_event(sid, first.turn_id, "token", {"text": f"t{i}"})
        done = first.model_copy(update={"status": "completed", "answer": "Two red pairs.", "product_ids": ["p1", "p2"]})
        await store.complete_turn(sid, done)
        second = await store.begin_turn(sid, "cheaper ones?")
        last = None
        for i in range(2):
            last = await store.append_event(sid, second.turn_id, "token", {"text": f"u{i}"})
        print(json.dumps({"session_id": sid, "first": first.turn_id, "second": second.turn_id, "last": last.id}),
              flush=True)
        time.sleep(120)  # mid-turn: the parent kills us here

    asyncio.run(main(sys.argv[1]))
    """
)


def test_completed_turn_survives_sigkill_mid_turn(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WORKER, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"worker exited early with {proc.wait(timeout=10)}"
        ids = json.loads(line)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    asyncio.run(_check_after_crash(path, ids))


async def _check_after_crash(path: Path, ids: dict[str, str]) -> None:
    sid = ids["session_id"]
    async with SqliteSessionStore(path) as store:
        session = await store.get_session(sid)
        assert session is not None
        first, second = session.turns
        assert (first.turn_id, first.status, first.answer, first.product_ids) == (
            ids["first"],
            "completed",
            "Two red pairs.",
            ["p1", "p2"],
        )
        assert second.turn_id == ids["second"] and second.status in ("in_progress", "failed")
        # What the killed turn had streamed is still there for a resuming client.
        assert [e.data["text"] for e in await store.events_after(sid, None, ids["second"])] == ["u0", "u1"]
        assert await store.events_after(sid, ids["last"]) == []

        # The session stays usable: the next turn begins and the dead one is recorded as failed.
        third = await store.begin_turn(sid, "anything in blue?")
        assert third.index == 2
        session = await store.get_session(sid)
        assert session is not None
        assert [t.status for t in session.turns] == ["completed", "failed", "in_progress"]
        assert session.completed_turns()[0].answer == "Two red pairs."


# --- factory and ids


def test_factory_picks_backend_by_scheme(tmp_path: Path) -> None:
    from assistant.sessions.postgres_store import PostgresSessionStore
    from assistant.sessions.redis_store import RedisSessionStore

    sqlite_store = make_session_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert isinstance(sqlite_store, SqliteSessionStore) and sqlite_store.path == str(tmp_path / "a.sqlite")
    assert isinstance(make_session_store("sqlite:///relative/s.sqlite"), SqliteSessionStore)
    redis_store = make_session_store("redis://127.0.0.1:1/0", key_prefix="t:", ttl_s=60)
    assert isinstance(redis_store, RedisSessionStore) and (redis_store.prefix, redis_store.ttl_s) == ("t:", 60)
    assert isinstance(make_session_store("postgresql://u@127.0.0.1:1/db"), PostgresSessionStore)
    assert isinstance(make_session_store("postgres://u@127.0.0.1:1/db"), PostgresSessionStore)


@pytest.mark.parametrize("url", ["mysql://u:secret@h/db", "sessions.sqlite", "sqlite://rel.sqlite", "sqlite:///"])
def test_factory_error_names_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="SHOP_SESSION_STORE_URL") as info:
        make_session_store(url)
    assert "secret" not in str(info.value)


def test_parse_event_id() -> None:
    tid = "0123456789abcdef0123456789abcdef"
    assert parse_event_id(f"{tid}:0") == (tid, 0)
    assert parse_event_id(f"{tid}:42") == (tid, 42)
    for bad in (f"{tid}:", f"{tid}:x", f"{tid[:-1]}:1", f"{tid.upper()}:1", f"{tid}:1:2"):
        with pytest.raises(InvalidEventId):
            parse_event_id(bad)
