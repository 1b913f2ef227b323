"""Live delivery: a running turn's events reach whoever follows it as soon as they are logged; a follower that
reconnects (Last-Event-ID) gets the rest, live wherever the turn runs: from this process's Live, or, when another
replica runs it, from the log and then the session hub.

Every event is appended to the session store before it is published (its id "<turn>:<seq>"), so what a client
saw is always in the log. A turn whose last follower left is cancelled after a grace period unless someone
resumes it (here, or on another replica: that one says so through the hub). The process running a turn renews the
turn's lease in the store (any backend, SQLite too); a turn whose lease passed with no `done` logged was cut by its
process's death (a replica, or the one process restarted after a crash) and reads as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from assistant.errors import EventNotFound
from assistant.schemas import DoneEvent
from assistant.sessions.base import SessionStore
from assistant.sessions.models import (
    InvalidEventId,
    StoredEvent,
    TurnStatus,
    make_event_id,
    parse_event_id,
    utc_now,
)
from assistant.turns.hubs import SessionHub

log = logging.getLogger(__name__)


@dataclass
class Live:
    """A turn running in this process: its events so far, and who is following it. A person's turn (takeover)
    has no task: it stays open until the agent hands back or closes."""

    events: list[StoredEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    task: asyncio.Task[None] | None = None
    followers: int = 0
    orphaned: asyncio.TimerHandle | None = None
    session_id: str | None = None
    hub: SessionHub | None = None
    cancel_reason: str | None = None

    def publish(self, event: StoredEvent) -> None:
        self.events.append(event)
        self.changed.set()
        if self.hub is not None and self.session_id is not None:
            self.hub.publish(self.session_id, event)

    def close(self) -> None:
        """No more events: followers drain what is published and stop."""
        self.done = True
        self.changed.set()


class TurnLog:
    """A turn's events, logged in order and each published once it is logged. `emit` returns as soon as the
    previous event is logged and this one is on its way to the store, so the turn's next step (routing, a
    search) runs while it commits; `flush` waits for the last one. A failed append raises at the next call."""

    def __init__(self, sessions: SessionStore, session_id: str, turn_id: str, live: Live) -> None:
        self.sessions, self.session_id, self.turn_id, self.live = sessions, session_id, turn_id, live
        self._last: asyncio.Task[None] | None = None

    async def emit(self, event: BaseModel) -> asyncio.Task[None]:
        await self.flush()
        data = event.model_dump(mode="json", by_alias=True)
        name = data.pop("event")
        self._last = asyncio.create_task(self._append(name, data))
        return self._last

    async def _append(self, name: str, data: dict[str, Any]) -> None:
        self.live.publish(await self.sessions.append_event(self.session_id, self.turn_id, name, data))

    async def flush(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await asyncio.shield(last)  # a cancelled turn still logs and publishes what it emitted

    async def close_with(self, closing: Sequence[BaseModel], logged: bool = True) -> None:
        """Log the turn's closing events (`error`, `done`) and publish them. Those the log refuses (its store down
        or full) are published all the same, without an id: the turn's followers still end with them instead of
        a stream that breaks off; a client resuming later gets the log's own end. `logged` False: an earlier event
        was refused already (the store is away), none is tried (each try would wait out the store's timeout)."""
        for i, event in enumerate(closing):
            if logged:
                try:
                    await self.emit(event)
                    await self.flush()
                    continue
                except Exception:
                    log.warning("turn %s: closing events not logged; sent unlogged", self.turn_id, exc_info=True)
            for rest in closing[i:]:
                data = rest.model_dump(mode="json", by_alias=True)
                self.live.publish(StoredEvent(id="", event=data.pop("event"), data=data))
            return


class LiveTurns:
    """The turns running in this process, by turn id."""

    def __init__(
        self,
        sessions: SessionStore,
        grace_s: float,
        hub: SessionHub | None = None,
        lease_s: float = 15.0,
        poll_s: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.grace_s = grace_s
        self.hub = hub or SessionHub()
        self.hub.on_cancel = self._cancel_here
        self.hub.on_follow = self._followed_elsewhere
        self.lease_s = lease_s  # a running turn's lease, renewed every third of it
        self.poll_s = min(poll_s, lease_s / 3)  # a follower of another replica's turn checks the log when quiet
        self._live: dict[str, Live] = {}
        self._leases: set[asyncio.Task[None]] = set()

    def start(self, turn_id: str, run: Callable[[Live], Awaitable[None]], session_id: str | None = None) -> Live:
        """Run `run(live)` as the turn's own task (it outlives a follower that disconnects); with `session_id`, its
        events also reach the session's streams."""
        live = self._live[turn_id] = Live(session_id=session_id, hub=self.hub)
        live.task = asyncio.create_task(self._run(turn_id, live, run))
        return live

    def person(self, session_id: str, turn_id: str) -> Live:
        """The open person turn's Live here, made when this process has none yet (it began elsewhere or before a
        restart: its earlier events are in the log)."""
        live = self._live.get(turn_id)
        if live is None:
            live = self._live[turn_id] = Live(session_id=session_id, hub=self.hub)
        return live

    def end(self, turn_id: str) -> None:
        """A person turn is over: its followers drain and stop."""
        live = self._live.pop(turn_id, None)
        if live is not None:
            live.close()

    async def cancel_session(self, session_id: str, reason: str, wait_s: float = 5.0) -> list[str]:
        """Cancel the session's bot turns (the same path as a client gone for good: the model request is closed, the
        turn stored as cancelled with `reason`): those running here, waited for; those of other replicas through the
        hub. The ids of those that ran here."""
        self.hub.cancel_turns(session_id, reason)
        cancelled = self._cancel_here(session_id, reason)
        if cancelled:
            await asyncio.wait(cancelled.values(), timeout=wait_s)
        return list(cancelled)

    def _cancel_here(self, session_id: str, reason: str) -> dict[str, asyncio.Task[None]]:
        """Cancel the session's bot turns running in this process; their tasks by turn id."""
        running = [
            (tid, live)
            for tid, live in self._live.items()
            if live.session_id == session_id and live.task is not None and not live.done
        ]
        for _, live in running:
            live.cancel_reason = reason
            if live.orphaned is not None:
                live.orphaned.cancel()
            assert live.task is not None
            live.task.cancel()
        return {tid: live.task for tid, live in running if live.task is not None}

    async def _run(self, turn_id: str, live: Live, run: Callable[[Live], Awaitable[None]]) -> None:
        stop = asyncio.Event()
        if live.session_id is not None:  # SQLite too: after a crash and restart, the cut turn reads failed at once
            lease = asyncio.create_task(self._hold_lease(live.session_id, turn_id, stop))
            self._leases.add(lease)
            lease.add_done_callback(self._leases.discard)
        try:
            await run(live)
        finally:
            stop.set()  # not cancelled: a renewal in flight finishes, and finds the turn over
            live.close()
            self._live.pop(turn_id, None)

    async def _hold_lease(self, session_id: str, turn_id: str, stop: asyncio.Event) -> None:
        """Renew the running turn's lease until it ends: every replica (and this process after a restart) reads it as
        alive while the lease holds."""
        while not stop.is_set():
            try:
                until = utc_now() + timedelta(seconds=self.lease_s)
                if not await self.sessions.renew_lease(session_id, turn_id, until):
                    return  # stored as finished
            except Exception:  # the store is away: the next renewal may reach it before the lease passes
                log.warning("turn %s: lease not renewed", turn_id, exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), self.lease_s / 3)
            except TimeoutError:
                pass

    def _followed_elsewhere(self, turn_id: str) -> None:
        """A stream on another replica follows this process's turn: hold off its cancellation for another grace."""
        live = self._live.get(turn_id)
        if live is None or live.done or live.task is None or live.followers > 0:
            return
        if live.orphaned is not None:
            live.orphaned.cancel()
        live.orphaned = asyncio.get_running_loop().call_later(self.grace_s, live.task.cancel)

    async def follow(self, live: Live, after_seq: int = -1) -> AsyncIterator[StoredEvent]:
        """The live turn's events with seq > after_seq, until it is done. When the last follower leaves, the turn
        is cancelled after `grace_s` (at once with 0) unless another follower arrives."""
        live.followers += 1
        if live.orphaned is not None:
            live.orphaned.cancel()
            live.orphaned = None
        try:
            i = after_seq + 1
            while True:
                live.changed.clear()
                while i < len(live.events):
                    yield live.events[i]
                    i += 1
                if live.done:
                    return
                await live.changed.wait()
        finally:
            live.followers -= 1
            if live.followers == 0 and not live.done and live.task is not None:
                if self.grace_s > 0:
                    live.orphaned = asyncio.get_running_loop().call_later(self.grace_s, live.task.cancel)
                else:
                    live.task.cancel()

    async def replay(
        self,
        session_id: str,
        turn_id: str,
        last_event_id: str,
        person: bool = False,
        open_person: bool = False,
        running: bool = False,
        ended: TurnStatus = "failed",
    ) -> AsyncIterator[StoredEvent]:
        """The turn's events after `last_event_id`: followed live when it runs here, or (`running`, several replicas)
        on another replica; else read from the log (a turn whose log has no done event gets one: `ended`, its stored
        status — failed when its process died, completed when the store took the turn but not its done). A person's
        turn is read from the log: any replica may add to it (its live part is on the session stream); an open one is
        not over. The log is read before this returns: an id it cannot place (EventNotFound) or a store that is down
        (Unavailable) is an error status, not a stream cut short."""
        live = None if person else self._live.get(turn_id)
        if live is not None:
            return self.follow(live, parse_event_id(last_event_id)[1])
        if running and not person and self.hub.shared:
            return self._follow_elsewhere(session_id, turn_id, last_event_id)
        events = await self._logged_after(session_id, turn_id, last_event_id)
        return self._replayed(events, turn_id, last_event_id, open_person, ended)

    async def _replayed(
        self, events: list[StoredEvent], turn_id: str, last_event_id: str, open_person: bool, ended: TurnStatus
    ) -> AsyncIterator[StoredEvent]:
        for ev in events:
            yield ev
        if open_person:
            return
        last = events[-1] if events else None
        if (last.event if last else "") != "done":
            seq = (last.seq if last else parse_event_id(last_event_id)[1]) + 1
            status = ended if ended in ("completed", "cancelled") else "failed"
            done = DoneEvent(turn_id=turn_id, status=status).model_dump(mode="json", exclude={"event"})
            yield StoredEvent(id=f"{turn_id}:{seq}", event="done", data=done)

    async def _logged_after(self, session_id: str, turn_id: str, last_event_id: str) -> list[StoredEvent]:
        """The turn's logged events after `last_event_id`; an id the log cannot place is EventNotFound."""
        try:
            return await self.sessions.events_after(session_id, last_event_id, turn_id=turn_id)
        except InvalidEventId as e:
            raise EventNotFound(str(e)) from e

    async def _follow_elsewhere(self, session_id: str, turn_id: str, last_event_id: str) -> AsyncIterator[StoredEvent]:
        """Another replica's running turn, after `last_event_id`: what is logged, then its events as the hub brings
        them, each once and in order (a gap is filled from the log), until its `done`. While quiet, the log and the
        turn are read again: a turn stored as over, or whose lease passed, with no `done` logged, ends as failed."""
        last = parse_event_id(last_event_id)[1]
        with self.hub.subscribe(session_id) as queue:
            self.hub.following(session_id, turn_id)
            told = time.monotonic()
            logged = await self._logged_after(session_id, turn_id, last_event_id)
            for event in logged:
                yield event
                last = event.seq
                if event.event == "done":
                    return
            every = min(self.grace_s / 3, 1.0)  # "following": keeps the turn from being cancelled as orphaned
            check_at = time.monotonic() + self.poll_s
            while True:
                now = time.monotonic()
                if now - told >= every:
                    self.hub.following(session_id, turn_id)
                    told = now
                try:
                    timeout = max(0.0, min(told + every, check_at) - now)
                    got: StoredEvent | None = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    if time.monotonic() < check_at:
                        continue
                    got = None
                if got is not None:
                    if not got.id or got.turn_id != turn_id or got.seq <= last:
                        continue
                    if got.seq == last + 1:
                        yield got
                        last = got.seq
                        if got.event == "done":
                            return
                        check_at = time.monotonic() + self.poll_s
                        continue
                check_at = time.monotonic() + self.poll_s
                # A gap (a message lost on the way) or a quiet spell: the log has everything published.
                session = await self.sessions.get_session(session_id) if got is None else None
                for event in await self.sessions.events_after(
                    session_id, make_event_id(turn_id, last), turn_id=turn_id
                ):
                    yield event
                    last = event.seq
                    if event.event == "done":
                        return
                if session is not None:
                    turn = next((t for t in session.turns if t.turn_id == turn_id), None)
                    if turn is None or turn.finished:  # read before the log: a `done` logged meanwhile was read
                        # Stored completed with no done logged: the store took the turn, then not its done.
                        status = turn.status if turn is not None and turn.status != "in_progress" else "failed"
                        done = DoneEvent(turn_id=turn_id, status=status).model_dump(mode="json", exclude={"event"})
                        yield StoredEvent(id=make_event_id(turn_id, last + 1), event="done", data=done)
                        return
