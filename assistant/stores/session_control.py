"""Each session's state (bot, waiting for an agent, an agent, closed) over the shared RecordStore, so every replica
and every backend (SQLite, Redis, PostgreSQL) sees the same owner; listed by state for the agents' queue."""

from __future__ import annotations

from collections.abc import Callable

from assistant.stores.records import Record, RecordStore
from assistant.takeover import STATES, Control, SessionState

CONTROL = "session-control"


def control_record(control: Control) -> Record:
    """Listed under its state (the record's owner), oldest state change first: the queue's order."""
    return Record(
        kind=CONTROL,
        key=control.session_id,
        owner=control.state,
        sort=control.since.timestamp(),
        doc=control.model_dump(mode="json"),
    )


class ControlStore:
    """Session controls keyed by session id; changes are atomic read-modify-writes (two agents taking one session
    at once: one wins, the other's decision runs again on what the first stored)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def get(self, session_id: str) -> Control | None:
        found = self.records.get(CONTROL, [session_id]).get(session_id)
        return Control.model_validate(found.doc) if found else None

    def change(self, session_id: str, shopper_id: str, decide: Callable[[Control], Control]) -> tuple[Control, Control]:
        """(before, after): `decide` gets the stored control (a fresh 'bot' one when none is stored) and returns
        the next; its exception stores nothing and propagates. It may run more than once."""
        seen: list[Control] = []

        def apply(current: Record | None) -> Record | None:
            before = (
                Control.model_validate(current.doc)
                if current is not None
                else Control(session_id=session_id, shopper_id=shopper_id)
            )
            seen[:] = [before]
            after = decide(before)
            seen.append(after)
            return None if current is not None and after == before else control_record(after)

        self.records.update(CONTROL, session_id, apply)
        return seen[0], seen[-1]

    def ensure(self, session_id: str, shopper_id: str) -> Control:
        """The stored control, created in state 'bot' when missing (so the queue lists every session)."""
        return self.change(session_id, shopper_id, lambda c: c)[1]

    def list(self, states: tuple[SessionState, ...] = STATES, limit: int = 100) -> list[Control]:
        """Sessions in these states, each state's longest-waiting first, states in the order given."""
        out: list[Control] = []
        for state in states:
            out.extend(Control.model_validate(r.doc) for r in self.records.list(CONTROL, state, limit=limit))
        return out[:limit]
