"""Two replicas sharing a real Redis, and again a real PostgreSQL: a shopper on one, an agent on the other; a turn
started on one and followed from the other; one replica killed mid-turn.

Each replica is the real app on its own loopback port over fakes for the model and the router (tests/api/conftest.py),
with its sessions, shared records and live delivery behind the one SHOP_SESSION_STORE_URL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.llm.fake import FakeLLM
from assistant.turns import hubs
from eval.local_servers import free_port
from eval.local_servers import stop_group as stop_server
from tests.api.conftest import AGENT, WIDGET, answer, build_services, chat, chat_events, names, parse_sse, serve
from tests.api.test_takeover_api import SessionStream

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Replica:
    base_url: str
    services: Any
    llm: FakeLLM


@pytest.fixture(params=["redis", "postgres"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Replica, Replica]]:
    url = str(request.getfixturevalue("redis_url" if request.param == "redis" else "postgres_dsn"))
    if request.param == "postgres":  # most events then travel as their id and are read from the log, in order
        monkeypatch.setattr(hubs, "NOTIFY_MAX_BYTES", 150)
    built = []
    with ExitStack() as stack:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            llm = FakeLLM()
            services, _ = build_services(tmp_path / name, llm, shared_live=True, session_store_url=url)
            stack.callback(close, services)
            built.append(Replica(stack.enter_context(serve(services)), services, llm))
        yield built[0], built[1]


def close(services: Any) -> None:
    """Close what the replica opened; the session store's connections belong to the server's loop, which is gone
    by now, so they are dropped with the process instead."""

    async def dropped() -> None:
        return None

    services.sessions.aclose = dropped
    asyncio.run(services.close())


def stream_on(replica: Replica, session: str, headers: dict[str, str]) -> SessionStream:
    stream = SessionStream(replica, session, headers)  # type: ignore[arg-type]
    stream._thread.start()
    stream.wait_for(lambda e: e["event"] == "state", "state snapshot")
    return stream


def test_a_shopper_on_one_replica_and_an_agent_on_the_other_talk_live(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    session = chat_events(a.base_url, {"message": "running shoes"})[0]["data"]["session_id"]
    shopper, console = stream_on(a, session, WIDGET), stream_on(b, session, AGENT)
    try:
        # A slow bot turn runs on A; the agent takes over on B: A's turn and its model request are cancelled.
        a.llm.streams = [[f" w{chr(97 + i % 26)}" for i in range(200)]]
        a.llm.chunk_delay = 0.05
        turn: list[dict[str, Any]] = []
        shopper_turn = threading.Thread(
            target=lambda: turn.extend(
                parse_sse(chat(a.base_url, {"message": "hiking boots", "session_id": session}, WIDGET).text)
            )
        )
        shopper_turn.start()
        console.wait_for(lambda e: e["event"] == "token", "A's bot tokens on B")
        r = httpx.post(f"{b.base_url}/v1/agent/sessions/{session}/take", json={"name": "Anna"}, headers=AGENT)
        assert r.status_code == 200, r.text
        shopper.wait_for(lambda e: e["event"] == "agent_joined", "agent_joined on A")
        shopper_turn.join(10)
        assert turn[-1]["event"] == "done" and turn[-1]["data"]["status"] == "cancelled"
        assert a.llm.cancelled_streams == 1

        r = httpx.post(f"{b.base_url}/v1/agent/sessions/{session}/messages", json={"text": "Hi from B"}, headers=AGENT)
        got = shopper.wait_for(lambda e: e["event"] == "message" and e["data"]["text"] == "Hi from B", "B's message")
        assert got["id"] == r.json()["id"]
        r = chat(a.base_url, {"message": "hello from A", "session_id": session}, WIDGET)
        assert r.status_code == 202, r.text
        console.wait_for(lambda e: e["event"] == "message" and e["data"]["text"] == "hello from A", "A's message")
        assert httpx.post(f"{a.base_url}/v1/sessions/{session}/typing", headers=WIDGET).status_code == 200
        console.wait_for(lambda e: e["event"] == "typing", "typing on B")

        assert httpx.post(f"{b.base_url}/v1/agent/sessions/{session}/hand-back", headers=AGENT).status_code == 200
        shopper.wait_for(lambda e: e["event"] == "agent_left", "agent_left on A")
        a.llm.chunk_delay = 0.0
        events = chat_events(a.base_url, {"message": "hello", "session_id": session})
        last = events[-1]["id"]
        console.wait_for(lambda e: e.get("id") == last, "A's next bot turn, whole, on B")
    finally:
        shopper.stop()
        console.stop()
    # Every logged event reached B once, each turn's in order.
    ids = [e["id"] for e in console.events if "id" in e]
    assert len(ids) == len(set(ids))
    for turn_id in {i.split(":")[0] for i in ids}:
        seqs = [int(i.split(":")[1]) for i in ids if i.startswith(turn_id)]
        assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs))), (turn_id, seqs)
    # B resumes the session stream from an id A logged.
    first = next(e for e in shopper.events if e["event"] == "agent_joined")["id"]
    resumed = SessionStream(b, session, {**WIDGET, "Last-Event-ID": first})  # type: ignore[arg-type]
    resumed._thread.start()
    try:
        resumed.wait_for(lambda e: e.get("id") == last, "the resumed stream's end")
    finally:
        resumed.stop()
    replayed = [e for e in resumed.events if "id" in e]
    assert names(replayed)[0] == "state" and "agent_left" in names(replayed)


def words(n: int) -> list[str]:
    return [f" w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(n)]


def first_events(url: str, body: dict[str, Any], tokens: int) -> list[dict[str, Any]]:
    """Start a turn and read its stream until `tokens` tokens came; then drop the connection, as a lost network
    would."""
    got: list[dict[str, Any]] = []
    with httpx.stream("POST", f"{url}/v1/chat", json=body, headers=WIDGET, timeout=30) as r:
        buf = ""
        for chunk in r.iter_text():
            buf += chunk.replace("\r\n", "\n")
            got = parse_sse(buf.rsplit("\n\n", 1)[0] + "\n\n") if "\n\n" in buf else []
            if sum(e["event"] == "token" for e in got) >= tokens:
                break
    return got


def test_a_turn_started_on_one_replica_is_resumed_live_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    # The turn outlasts A's resume grace: only B's following keeps it running once A's client is gone.
    a.services.chat.live.grace_s = b.services.chat.live.grace_s = 1.0
    # Three sentences (an answer's most) of twelve words; each goes out whole once its check passed.
    script = [f" w{chr(97 + i % 26)}{'.' if i % 12 == 11 else ''}" for i in range(36)]
    a.llm.streams = [script]
    a.llm.chunk_delay = 0.08
    first = first_events(a.base_url, {"message": "hiking boots"}, tokens=2)
    session, last = first[0]["data"]["session_id"], first[-1]["id"]
    started = time.monotonic()
    resumed = chat(b.base_url, {"message": "x", "session_id": session}, {**WIDGET, "Last-Event-ID": last})
    assert resumed.status_code == 200, resumed.text
    rest = parse_sse(resumed.text)
    assert time.monotonic() - started > 1.0  # followed while A wrote it (36 words at 0.08 s), not read afterwards
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "completed", rest[-3:]
    ids = [e["id"] for e in first + rest]
    seqs = [int(i.split(":")[1]) for i in ids]
    assert seqs == list(range(len(seqs))), seqs  # none lost, none twice
    assert answer(first + rest).split() == ["The", *"".join(script).split()]
    assert a.llm.cancelled_streams == 0
    turn = httpx.get(f"{b.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][-1]
    assert turn["status"] == "completed" and turn["answer"] == answer(first + rest).strip()


@pytest.fixture(params=["redis", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url" if request.param == "redis" else "postgres_dsn"))


def test_a_replica_killed_mid_turn_leaves_the_session_usable_from_the_other(store_url: str, tmp_path: Path) -> None:
    lease_s = 1.5
    port = free_port()
    log = tmp_path / "replica-a.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--url", store_url, "--data-dir", str(tmp_path / "a"), "--port", str(port), "--lease-s", str(lease_s)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.replica_server", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    a_url = f"http://127.0.0.1:{port}"
    services, _ = build_services(tmp_path / "b", FakeLLM(), shared_live=True, session_store_url=store_url)
    try:
        wait_ready(a_url, proc, log)
        with serve(services) as b_url:
            done = chat_events(a_url, {"message": "shoes"})
            assert done[-1]["data"]["status"] == "completed"
            session = done[0]["data"]["session_id"]
            first = first_events(a_url, {"message": "hiking boots", "session_id": session}, tokens=2)
            assert names(first)[-1] == "token"
            os.kill(proc.pid, signal.SIGKILL)  # mid-answer: its first sentence of three out (60 words at 0.05 s)
            proc.wait(5)
            cut_turn, last = first[-1]["id"].split(":")[0], first[-1]["id"]

            # B follows the cut turn: the rest of its log, then, once A's lease has passed, its end as failed.
            started = time.monotonic()
            r = httpx.get(
                f"{b_url}/v1/sessions/{session}/events", headers={**WIDGET, "Last-Event-ID": last}, timeout=20
            )
            rest = parse_sse(r.text)
            assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "failed", rest[-3:]
            assert time.monotonic() - started < lease_s + 3
            ids = [e["id"] for e in first + rest]
            assert len(ids) == len(set(ids))

            turns = httpx.get(f"{b_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
            assert [t["status"] for t in turns] == ["completed", "failed"]
            assert turns[0]["answer"] == answer(done).strip()
            assert turns[1]["turn_id"] == cut_turn and "replica" in turns[1]["error"]

            again = chat_events(b_url, {"message": "hello", "session_id": session})
            assert again[-1]["event"] == "done" and again[-1]["data"]["status"] == "completed"
            turns = httpx.get(f"{b_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
            assert [t["status"] for t in turns] == ["completed", "failed", "completed"]
    finally:
        stop_server(proc)
        close(services)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"replica not ready:\n{log.read_text(errors='replace')[-2000:]}")
