"""Two replicas sharing a real Redis, and again a real PostgreSQL: a shopper on one, an agent on the other.

Each replica is the real app on its own loopback port over fakes for the model and the router (tests/api/conftest.py),
with its sessions, shared records and live delivery behind the one SHOP_SESSION_STORE_URL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.llm.fake import FakeLLM
from assistant.turns import hubs
from tests.api.conftest import AGENT, WIDGET, build_services, chat, chat_events, names, parse_sse, serve
from tests.api.test_takeover_api import SessionStream

pytestmark = pytest.mark.integration


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
