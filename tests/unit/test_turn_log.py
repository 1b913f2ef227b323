"""A turn's event log: events are logged in order, each published once logged, and the turn goes on while
the last one commits (a slow store shows the overlap)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from assistant.schemas import TokenEvent
from assistant.sessions.models import StoredEvent
from assistant.turns.live import Live, TurnLog


class SlowStore:
    """Appends take `delay` seconds; an event whose text is `fail_on` is refused."""

    def __init__(self, delay: float = 0.05, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.logged: list[str] = []

    async def append_event(self, session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> StoredEvent:
        await asyncio.sleep(self.delay)
        if data.get("text") == self.fail_on:
            raise RuntimeError("disk full")
        self.logged.append(data["text"])
        return StoredEvent(id=f"{turn_id}:{len(self.logged) - 1}", event=event, data=data)


def texts(live: Live) -> list[str]:
    return [e.data["text"] for e in live.events]


def make(store: SlowStore) -> tuple[TurnLog, Live]:
    live = Live()
    return TurnLog(store, "s1", "t1", live), live  # type: ignore[arg-type]


def test_an_event_is_published_only_once_logged_and_the_turn_goes_on_meanwhile() -> None:
    store = SlowStore()

    async def run() -> None:
        log, live = make(store)
        await log.emit(TokenEvent(text="a"))
        assert store.logged == [] and live.events == []  # on its way to the store: not published yet
        await log.emit(TokenEvent(text="b"))  # waits for "a" to be logged first: the log keeps the order
        assert store.logged == ["a"] and texts(live) == ["a"]
        await log.flush()
        assert texts(live) == ["a", "b"] and [e.id for e in live.events] == ["t1:0", "t1:1"]

    asyncio.run(run())


def test_work_between_two_events_overlaps_the_first_ones_commit() -> None:
    store = SlowStore(delay=0.2)

    async def run() -> float:
        log, _ = make(store)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await log.emit(TokenEvent(text="a"))
        await asyncio.sleep(0.2)  # the turn's next step (a search, say)
        await log.emit(TokenEvent(text="b"))
        await log.flush()
        return loop.time() - start

    # Logged one after the other, with the step waiting for the first commit, this takes 0.6 s.
    assert asyncio.run(run()) < 0.55


def test_a_failed_append_raises_at_the_next_call_and_publishes_nothing_after_it() -> None:
    store = SlowStore(delay=0.01, fail_on="b")

    async def run() -> None:
        log, live = make(store)
        await log.emit(TokenEvent(text="a"))
        await log.emit(TokenEvent(text="b"))
        with pytest.raises(RuntimeError, match="disk full"):
            await log.emit(TokenEvent(text="c"))
        assert texts(live) == ["a"] and store.logged == ["a"]
        await log.flush()  # the failure was reported once; the log goes on
        await log.emit(TokenEvent(text="d"))
        await log.flush()
        assert texts(live) == ["a", "d"]

    asyncio.run(run())


def test_a_cancelled_turn_still_logs_and_publishes_what_it_emitted() -> None:
    store = SlowStore(delay=0.1)

    async def run() -> None:
        log, live = make(store)

        async def turn() -> None:
            await log.emit(TokenEvent(text="a"))
            await log.flush()

        task = asyncio.create_task(turn())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.15)
        assert store.logged == ["a"] and texts(live) == ["a"]

    asyncio.run(run())
