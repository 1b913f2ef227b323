"""Handoff tickets: a request for a human agent, at most one per (session, turn)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel

from assistant.stores.records import Record, RecordStore

HANDOFF = "handoff"


class Ticket(BaseModel):
    """A request for a human agent to take over a session."""

    ticket_id: str
    session_id: str
    turn_id: str
    shopper_id: str
    reason: str
    status: str = "open"
    created_at: datetime


def ticket_id_for(session_id: str, turn_id: str) -> str:
    """Deterministic per (session, turn), so a retried turn finds its own ticket."""
    return "HO-" + hashlib.sha256(f"{session_id}|{turn_id}".encode()).hexdigest()[:8].upper()


def ticket_record(ticket: Ticket) -> Record:
    """The ticket as stored: listed under its session, oldest first."""
    return Record(
        kind=HANDOFF,
        key=ticket.ticket_id,
        owner=ticket.session_id,
        sort=ticket.created_at.timestamp(),
        doc=ticket.model_dump(mode="json"),
    )


class HandoffStore:
    """Tickets over a RecordStore, keyed by ticket id."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def open(
        self, session_id: str, turn_id: str, shopper_id: str, reason: str, now: datetime | None = None
    ) -> tuple[Ticket, bool]:
        """The turn's ticket, created if it does not exist yet; (ticket, created)."""
        ticket = Ticket(
            ticket_id=ticket_id_for(session_id, turn_id),
            session_id=session_id,
            turn_id=turn_id,
            shopper_id=shopper_id,
            reason=reason,
            created_at=now or datetime.now(UTC),
        )
        if self.records.insert([[ticket_record(ticket)]]):
            return ticket, True
        stored = self.get(ticket.ticket_id)
        assert stored is not None
        return stored, False

    def get(self, ticket_id: str) -> Ticket | None:
        found = self.records.get(HANDOFF, [ticket_id]).get(ticket_id)
        return Ticket.model_validate(found.doc) if found else None

    def for_session(self, session_id: str) -> list[Ticket]:
        """The session's tickets, oldest first."""
        return [Ticket.model_validate(r.doc) for r in self.records.list(HANDOFF, session_id)]
