"""handoff_to_human: a ticket for a customer-service agent, recorded once per turn."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.tools.base import Tool, ToolContext, ToolOutput


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


class HandoffStore:
    """Tickets in SQLite; at most one per (session, turn)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS handoffs (
                ticket_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, turn_id TEXT NOT NULL,
                shopper_id TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
                UNIQUE (session_id, turn_id))"""
        )
        self._lock = threading.Lock()

    def open(self, ctx: ToolContext, reason: str, now: datetime | None = None) -> tuple[Ticket, bool]:
        """The turn's ticket, created if it does not exist yet; (ticket, created)."""
        ticket = Ticket(
            ticket_id=ticket_id_for(ctx.session_id, ctx.turn_id),
            session_id=ctx.session_id,
            turn_id=ctx.turn_id,
            shopper_id=ctx.shopper_id,
            reason=reason,
            created_at=now or datetime.now(UTC),
        )
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket.ticket_id,
                    ticket.session_id,
                    ticket.turn_id,
                    ticket.shopper_id,
                    ticket.reason,
                    ticket.status,
                    ticket.created_at.isoformat(),
                ),
            )
            created = cur.rowcount == 1
        if created:
            return ticket, True
        stored = self.get(ticket.ticket_id)
        assert stored is not None
        return stored, False

    def get(self, ticket_id: str) -> Ticket | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ticket_id, session_id, turn_id, shopper_id, reason, status, created_at "
                "FROM handoffs WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
        return _ticket(row) if row else None

    def for_session(self, session_id: str) -> list[Ticket]:
        """The session's tickets, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ticket_id, session_id, turn_id, shopper_id, reason, status, created_at "
                "FROM handoffs WHERE session_id = ? ORDER BY created_at",
                (session_id,),
            ).fetchall()
        return [_ticket(r) for r in rows]

    def close(self) -> None:
        self._db.close()


def _ticket(row: tuple[str, ...]) -> Ticket:
    return Ticket(
        ticket_id=row[0],
        session_id=row[1],
        turn_id=row[2],
        shopper_id=row[3],
        reason=row[4],
        status=row[5],
        created_at=datetime.fromisoformat(row[6]),
    )


class HandoffArgs(BaseModel):
    """Arguments of handoff_to_human."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="why a human should take over, in one sentence")


class HandoffTools:
    """handoff_to_human. No confirmation step: asking for a person is itself the shopper's request."""

    def __init__(self, store: HandoffStore) -> None:
        self.store = store

    def tools(self) -> list[Tool]:
        return [
            Tool(
                "handoff_to_human",
                "Hand the conversation to a human customer-service agent (the shopper asks for one, or the request "
                "is outside what the tools can do). Returns the ticket.",
                HandoffArgs,
                self.handoff_to_human,
                changes_state=True,
            )
        ]

    def handoff_to_human(self, args: HandoffArgs, ctx: ToolContext) -> ToolOutput:
        ticket, created = self.store.open(ctx, args.reason.strip())
        data = ticket.model_dump(mode="json")
        data["outcome"] = "created" if created else "already_open"
        return ToolOutput(data=data, citations=[f"ticket:{ticket.ticket_id}"])
