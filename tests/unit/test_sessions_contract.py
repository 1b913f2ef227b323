"""The session-store protocol as one test suite; each backend's test class inherits it.

A subclass provides `store_factory`: a callable that opens a new store (keyword options such as
`stale_after_s`) on the same backend, so a test can reopen or run two stores side by side.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from assistant.sessions import (
    InvalidEventId,
    SessionExists,
    SessionNotFound,
    SessionStore,
    TurnNotFound,
    UnknownEventId,
)
from assistant.sessions.models import PersonMessage, Turn, utc_now

StoreFactory = Callable[..., SessionStore]


async def complete(store: SessionStore, session_id: str, turn: Turn, **fields: Any) -> Turn:
    final = turn.model_copy(update={"status": "completed", **fields})
    await store.complete_turn(session_id, final)
    return final


async def run_turn(store: SessionStore, session_id: str, message: str, n_events: int = 3, **fields: Any) -> Turn:
    turn = await store.begin_turn(session_id, message)
    for i in range(n_events):
        await store.append_event(session_id, turn.turn_id, "token", {"text": f"{message}-{i}"})
    return await complete(store, session_id, turn, answer=f"answer to {message}", **fields)


class SessionStoreContract:
    """Behaviour every SessionStore must show."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[SessionStore]:
        store = store_factory()
        yield store
        await store.aclose()

    @pytest.fixture
    def shopper(self) -> str:
        return f"shopper-{uuid.uuid4().hex[:8]}"

    # --- sessions

    @pytest.mark.anyio
    async def test_create_and_get_session(self, store: SessionStore, shopper: str) -> None:
        assert await store.ping()
        created = await store.create_session(shopper)
        got = await store.get_session(created.session_id)
        assert got is not None
        assert (got.session_id, got.shopper_id, got.turns, got.summary) == (created.session_id, shopper, [], None)
        assert got.owned_by(shopper) and not got.owned_by("someone-else")
        assert await store.get_session("no-such-session") is None

    @pytest.mark.anyio
    async def test_explicit_session_id_is_unique_and_validated(self, store: SessionStore, shopper: str) -> None:
        sid = f"s-{uuid.uuid4().hex}"
        assert (await store.create_session(shopper, sid)).session_id == sid
        with pytest.raises(SessionExists):
            await store.create_session("another-shopper", sid)
        assert (await store.get_session(sid)).shopper_id == shopper  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="invalid session id"):
            await store.create_session(shopper, "has:colon")

    @pytest.mark.anyio
    async def test_unknown_session(self, store: SessionStore) -> None:
        with pytest.raises(SessionNotFound):
            await store.begin_turn("missing", "hi")
        with pytest.raises(SessionNotFound):
            await store.events_after("missing", None)
        with pytest.raises(SessionNotFound):
            await store.set_summary("missing", "text")

    # --- turns

    @pytest.mark.anyio
    async def test_turn_lifecycle_keeps_every_field(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "red running shoes under $80")
        assert (turn.status, turn.index, turn.answer, turn.completed_at) == ("in_progress", 0, "", None)
        in_flight = await store.get_session(session.session_id)
        assert in_flight is not None and [t.status for t in in_flight.turns] == ["in_progress"]

        final = await complete(
            store,
            session.session_id,
            turn,
            answer="Here are two options.",
            intent="product_search",
            slots={"color": "red", "max_price": 80.0},
            product_ids=["p2", "p1"],
            citations=["product:p2", "product:p1"],
            tool_trace=[{"tool": "search_products", "args": {"q": "red shoes"}, "ms": 12.5}],
        )
        got = await store.get_session(session.session_id)
        assert got is not None
        (stored,) = got.turns
        assert stored.status == "completed" and stored.completed_at is not None
        assert stored.model_dump(exclude={"completed_at"}) == final.model_dump(exclude={"completed_at"})
        assert got.completed_turns() == [stored]
        assert got.products_shown() == ["p2", "p1"]
        assert got.updated_at >= session.updated_at

    @pytest.mark.anyio
    async def test_turns_are_ordered_and_products_most_recent_last(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        await run_turn(store, session.session_id, "one", product_ids=["a", "b"])
        await run_turn(store, session.session_id, "two", product_ids=["c", "a"])
        failed = await store.begin_turn(session.session_id, "three")
        await store.complete_turn(session.session_id, failed.model_copy(update={"status": "failed", "error": "boom"}))
        got = await store.get_session(session.session_id)
        assert got is not None
        assert [(t.index, t.user_message, t.status) for t in got.turns] == [
            (0, "one", "completed"),
            (1, "two", "completed"),
            (2, "three", "failed"),
        ]
        assert got.turns[2].error == "boom"
        assert [t.user_message for t in got.completed_turns()] == ["one", "two"]
        assert got.products_shown() == ["b", "c", "a"]

    @pytest.mark.anyio
    async def test_complete_turn_rejects_unfinished_and_unknown(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "hi")
        with pytest.raises(ValueError, match="final status"):
            await store.complete_turn(session.session_id, turn)
        ghost = turn.model_copy(update={"turn_id": uuid.uuid4().hex, "status": "completed"})
        with pytest.raises(TurnNotFound):
            await store.complete_turn(session.session_id, ghost)
        other = await store.create_session(shopper)
        with pytest.raises(TurnNotFound):  # a turn of another session
            await store.complete_turn(other.session_id, turn.model_copy(update={"status": "completed"}))

    @pytest.mark.anyio
    async def test_cancelled_turn_is_recorded(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "show me hats")
        await store.append_event(session.session_id, turn.turn_id, "products", {"products": [{"id": "h1"}]})
        cancelled = turn.model_copy(update={"status": "cancelled", "product_ids": ["h1"], "error": "client left"})
        await store.complete_turn(session.session_id, cancelled)
        got = await store.get_session(session.session_id)
        assert got is not None and got.turns[0].status == "cancelled"
        assert got.completed_turns() == [] and got.products_shown() == ["h1"]

    @pytest.mark.anyio
    async def test_new_turn_supersedes_an_unfinished_one(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        first = await run_turn(store, session.session_id, "first")
        await store.begin_turn(session.session_id, "abandoned")
        third = await store.begin_turn(session.session_id, "third")
        assert third.index == 2
        got = await store.get_session(session.session_id)
        assert got is not None
        assert [t.status for t in got.turns] == ["completed", "failed", "in_progress"]
        assert got.turns[1].error and "interrupted" in got.turns[1].error
        assert got.turns[0].answer == first.answer

    @pytest.mark.anyio
    async def test_stale_in_progress_turn_reads_as_failed(self, store_factory: StoreFactory, shopper: str) -> None:
        store = store_factory(stale_after_s=0.0)
        try:
            session = await store.create_session(shopper)
            await run_turn(store, session.session_id, "done")
            await store.begin_turn(session.session_id, "never finished")
            got = await store.get_session(session.session_id)
            assert got is not None
            assert [t.status for t in got.turns] == ["completed", "failed"]
            assert got.turns[0].answer == "answer to done"
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_a_turn_whose_lease_passed_reads_as_failed(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        held = await store.begin_turn(session.session_id, "its replica is alive")
        assert await store.renew_lease(session.session_id, held.turn_id, utc_now() + timedelta(seconds=60))
        got = await store.get_session(session.session_id)
        assert got is not None and got.turns[0].status == "in_progress"
        # The replica running it stopped renewing (it died): once the lease has passed, the turn reads as failed.
        assert await store.renew_lease(session.session_id, held.turn_id, utc_now() - timedelta(seconds=1))
        got = await store.get_session(session.session_id)
        assert got is not None and got.turns[0].status == "failed"
        assert got.turns[0].error and "replica" in got.turns[0].error
        # A finished turn keeps its outcome: a late renewal does nothing.
        done = await run_turn(store, session.session_id, "next")
        assert not await store.renew_lease(session.session_id, done.turn_id, utc_now() + timedelta(seconds=60))
        assert not await store.renew_lease(session.session_id, "0" * 32, utc_now())
        got = await store.get_session(session.session_id)
        assert got is not None and [t.status for t in got.turns] == ["failed", "completed"]

    @pytest.mark.anyio
    async def test_a_persons_turn_stays_open_and_is_stored_with_its_messages(
        self, store_factory: StoreFactory, shopper: str
    ) -> None:
        store = store_factory(stale_after_s=0.0)
        try:
            session = await store.create_session(shopper)
            person = await store.begin_turn(session.session_id, "", kind="person")
            await store.append_event(session.session_id, person.turn_id, "agent_joined", {"name": "Anna"})
            got = await store.get_session(session.session_id)
            assert got is not None and [(t.kind, t.status) for t in got.turns] == [("person", "in_progress")]
            said = [PersonMessage(sender="agent", name="Anna", text="Hi"), PersonMessage(sender="shopper", text="Hey")]
            await store.complete_turn(
                session.session_id, person.model_copy(update={"status": "completed", "messages": said})
            )
            got = await store.get_session(session.session_id)
            assert got is not None and got.turns[0].messages == said and got.turns[0].kind == "person"
        finally:
            await store.aclose()

    # --- events

    @pytest.mark.anyio
    async def test_event_ids_count_from_zero_per_turn(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "hi")
        data = {"text": "héllo ✓", "nested": {"list": [1, 2.5, None, True]}}
        events = [await store.append_event(session.session_id, turn.turn_id, "token", data) for _ in range(3)]
        assert [e.id for e in events] == [f"{turn.turn_id}:{i}" for i in range(3)]
        assert all(e.data == data and e.event == "token" for e in events)
        assert (events[2].turn_id, events[2].seq) == (turn.turn_id, 2)
        await complete(store, session.session_id, turn)
        second = await store.begin_turn(session.session_id, "again")
        assert (await store.append_event(session.session_id, second.turn_id, "session", {})).id == f"{second.turn_id}:0"

    @pytest.mark.anyio
    async def test_append_to_unknown_turn(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        with pytest.raises(TurnNotFound):
            await store.append_event(session.session_id, uuid.uuid4().hex, "token", {})

    @pytest.mark.anyio
    async def test_events_after(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        sid = session.session_id
        assert await store.events_after(sid, None) == []  # no turn yet
        first = await run_turn(store, sid, "first", n_events=2)
        turn = await store.begin_turn(sid, "second")
        ids = [(await store.append_event(sid, turn.turn_id, f"e{i}", {"i": i})).id for i in range(5)]

        latest = await store.events_after(sid, None)
        assert [e.id for e in latest] == ids and [e.event for e in latest] == [f"e{i}" for i in range(5)]
        assert [e.data["i"] for e in await store.events_after(sid, ids[1])] == [2, 3, 4]
        assert await store.events_after(sid, ids[-1]) == []
        assert await store.events_after(sid, ids[1], turn.turn_id) == await store.events_after(sid, ids[1])
        older = await store.events_after(sid, None, first.turn_id)
        assert [e.data["text"] for e in older] == ["first-0", "first-1"]
        assert await store.events_after(sid, f"{first.turn_id}:0") == older[1:]

        # Events logged after a resume point show up on the next resume.
        more = await store.append_event(sid, turn.turn_id, "done", {"status": "completed"})
        assert await store.events_after(sid, ids[-1]) == [more]

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "bad", ["", "abc", "0", ":0", "x:1", "{turn}", "{turn}:", "{turn}:-1", "{turn}:01", "{turn}:1.5", "{turn}:a"]
    )
    async def test_malformed_event_ids(self, store: SessionStore, shopper: str, bad: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "hi")
        await store.append_event(session.session_id, turn.turn_id, "token", {})
        with pytest.raises(InvalidEventId, match="malformed"):
            await store.events_after(session.session_id, bad.format(turn=turn.turn_id))

    @pytest.mark.anyio
    async def test_unknown_event_ids(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        sid = session.session_id
        turn = await store.begin_turn(sid, "hi")
        await store.append_event(sid, turn.turn_id, "token", {})
        other = await store.create_session(shopper)
        other_turn = await store.begin_turn(other.session_id, "elsewhere")
        for unknown in (f"{uuid.uuid4().hex}:0", f"{turn.turn_id}:1", f"{turn.turn_id}:99", f"{other_turn.turn_id}:0"):
            with pytest.raises(UnknownEventId):
                await store.events_after(sid, unknown)
        with pytest.raises(InvalidEventId, match="does not belong"):
            await store.events_after(sid, f"{turn.turn_id}:0", other_turn.turn_id)
        with pytest.raises(TurnNotFound):
            await store.events_after(sid, None, other_turn.turn_id)

    # --- concurrency

    @pytest.mark.anyio
    async def test_concurrent_appends_to_one_turn_get_distinct_ids(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        turn = await store.begin_turn(session.session_id, "hi")
        events = await asyncio.gather(
            *(store.append_event(session.session_id, turn.turn_id, "token", {"i": i}) for i in range(30))
        )
        assert sorted(e.seq for e in events) == list(range(30))
        logged = await store.events_after(session.session_id, None, turn.turn_id)
        assert [e.seq for e in logged] == list(range(30))
        assert {e.id: e.data["i"] for e in logged} == {e.id: e.data["i"] for e in events}

    @pytest.mark.anyio
    async def test_concurrent_turns_of_two_sessions(self, store_factory: StoreFactory, shopper: str) -> None:
        # Two stores on one backend stand for two worker processes.
        stores = [store_factory(), store_factory()]
        try:
            sessions = [await s.create_session(shopper) for s in stores]

            async def converse(store: SessionStore, session_id: str, tag: str) -> None:
                for n in range(4):
                    turn = await store.begin_turn(session_id, f"{tag}{n}")
                    for i in range(5):
                        await store.append_event(session_id, turn.turn_id, "token", {"t": f"{tag}{n}.{i}"})
                        await asyncio.sleep(0)
                    await complete(store, session_id, turn, answer=f"{tag}{n}", product_ids=[f"{tag}-p{n}"])

            await asyncio.gather(
                converse(stores[0], sessions[0].session_id, "a"), converse(stores[1], sessions[1].session_id, "b")
            )
            for tag, session in zip("ab", sessions, strict=True):
                got = await stores[0].get_session(session.session_id)
                assert got is not None
                assert [(t.index, t.answer, t.status) for t in got.turns] == [
                    (n, f"{tag}{n}", "completed") for n in range(4)
                ]
                assert got.products_shown() == [f"{tag}-p{n}" for n in range(4)]
                for n, turn in enumerate(got.turns):
                    events = await stores[1].events_after(session.session_id, None, turn.turn_id)
                    assert [e.data["t"] for e in events] == [f"{tag}{n}.{i}" for i in range(5)]
        finally:
            for s in stores:
                await s.aclose()

    # --- listing, summary, reopening

    @pytest.mark.anyio
    async def test_list_sessions_most_recent_first(self, store: SessionStore, shopper: str) -> None:
        first = await store.create_session(shopper)
        second = await store.create_session(shopper)
        third = await store.create_session(shopper)
        await store.create_session(f"{shopper}-other")
        await asyncio.sleep(0.01)
        await run_turn(store, first.session_id, "bump")
        listed = await store.list_sessions(shopper, limit=10)
        assert [s.session_id for s in listed][:1] == [first.session_id]
        assert {s.session_id for s in listed} == {first.session_id, second.session_id, third.session_id}
        assert all(s.shopper_id == shopper for s in listed)
        assert [t.user_message for t in listed[0].turns] == ["bump"]
        assert len(await store.list_sessions(shopper, limit=2)) == 2
        assert await store.list_sessions(shopper, limit=0) == []
        assert await store.list_sessions("nobody-at-all") == []

    @pytest.mark.anyio
    async def test_summary(self, store: SessionStore, shopper: str) -> None:
        session = await store.create_session(shopper)
        await run_turn(store, session.session_id, "one")
        await run_turn(store, session.session_id, "two")
        await store.begin_turn(session.session_id, "in flight")
        await store.set_summary(session.session_id, "Wants red shoes.")
        got = await store.get_session(session.session_id)
        assert got is not None and (got.summary, got.summary_through) == ("Wants red shoes.", 1)
        await store.set_summary(session.session_id, "Only the first.", through_index=0)
        got = await store.get_session(session.session_id)
        assert got is not None and (got.summary, got.summary_through) == ("Only the first.", 0)
        assert len(got.turns) == 3

    @pytest.mark.anyio
    async def test_reopened_store_sees_completed_turns(self, store_factory: StoreFactory, shopper: str) -> None:
        first = store_factory()
        session = await first.create_session(shopper)
        done = await run_turn(first, session.session_id, "keep me", product_ids=["p9"])
        await first.aclose()
        second = store_factory()
        try:
            got = await second.get_session(session.session_id)
            assert got is not None and got.turns[0].answer == done.answer and got.products_shown() == ["p9"]
            assert len(await second.events_after(session.session_id, None)) == 3
            assert (await second.begin_turn(session.session_id, "next")).index == 1
        finally:
            await second.aclose()
