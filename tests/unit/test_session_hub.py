"""The session hub's backlog: a session stream whose client stopped reading falls behind; once it is `max_backlog`
events behind it is dropped (its backlog freed, its stream ended, so the client resumes from the log) while the
streams that keep up get every event."""

from __future__ import annotations

import asyncio

from assistant.sessions.models import StoredEvent
from assistant.turns.hubs import SessionHub
from assistant.turns.session_stream import follow_session


def event(seq: int) -> StoredEvent:
    return StoredEvent(id=f"t1:{seq}", event="token", data={"text": f"w{seq}"})


def test_a_subscriber_that_falls_behind_is_dropped_and_one_that_keeps_up_is_not() -> None:
    async def run() -> None:
        hub = SessionHub(max_backlog=3)
        with hub.subscribe("s1") as stalled, hub.subscribe("s1") as reading:
            got = []
            for seq in range(10):
                hub.publish("s1", event(seq))
                got.append(reading.get_nowait())
            assert [e.seq for e in got if e is not None] == list(range(10))
            assert stalled.qsize() == 1 and stalled.get_nowait() is None  # backlog freed, the end marker left
            assert hub.listeners("s1") == 1
        assert hub.listeners("s1") == 0

    asyncio.run(run())


def test_a_session_stream_that_fell_behind_ends_instead_of_buffering_without_bound() -> None:
    async def run() -> list[StoredEvent]:
        hub = SessionHub(max_backlog=5)
        snapshot = StoredEvent(id="", event="state", data={})
        stream = follow_session(None, hub, "s1", None, lambda e: True, [snapshot])  # type: ignore[arg-type]
        assert await stream.__anext__() == snapshot  # subscribed
        for seq in range(50):  # its client reads nothing meanwhile
            hub.publish("s1", event(seq))
        return [e async for e in stream]

    assert asyncio.run(asyncio.wait_for(run(), 5)) == []
