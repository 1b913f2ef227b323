"""Session, turn and logged-event models shared by every session store."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

TurnStatus = Literal["in_progress", "completed", "failed", "cancelled"]
TurnKind = Literal["bot", "person"]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

_EVENT_ID = re.compile(r"^([0-9a-f]{32}):(0|[1-9][0-9]{0,8})$")


def utc_now() -> datetime:
    return datetime.now(UTC)


class InvalidEventId(ValueError):
    """A Last-Event-ID that is malformed, or names no event of this session."""


def make_event_id(turn_id: str, seq: int) -> str:
    return f"{turn_id}:{seq}"


def parse_event_id(event_id: str) -> tuple[str, int]:
    """`"<turn_id>:<seq>"` -> (turn_id, seq); InvalidEventId when malformed."""
    match = _EVENT_ID.match(event_id.strip()) if isinstance(event_id, str) else None
    if match is None:
        raise InvalidEventId(f"malformed event id {event_id!r}: expected '<turn_id>:<seq>'")
    return match.group(1), int(match.group(2))


class StoredEvent(BaseModel):
    """One SSE event of a turn, logged as it was emitted; `id` is `"<turn_id>:<seq>"`."""

    id: str
    event: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def turn_id(self) -> str:
        return self.id.rsplit(":", 1)[0]

    @property
    def seq(self) -> int:
        return int(self.id.rsplit(":", 1)[1])


class PersonMessage(BaseModel):
    """A message a person wrote while an agent owned the session: the shopper's or the agent's (`internal`: an
    agent's note, never shown to the shopper)."""

    sender: Literal["shopper", "agent"]
    name: str | None = None
    text: str
    internal: bool = False
    at: datetime = Field(default_factory=lambda: utc_now())


class Turn(BaseModel):
    """One shopper message and what the assistant did with it; or (kind 'person') the stretch of the conversation
    a person held, from takeover to hand-back or close, with its messages."""

    turn_id: str
    index: int = Field(ge=0)
    user_message: str
    kind: TurnKind = "bot"
    messages: list[PersonMessage] = Field(default_factory=list, description="kind 'person': the messages, in order")
    status: TurnStatus = "in_progress"
    answer: str = ""
    intent: str | None = None
    slots: dict[str, Any] = Field(default_factory=dict)
    product_ids: list[str] = Field(default_factory=list, description="product cards shown, in order")
    citations: list[str] = Field(default_factory=list)
    tool_trace: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = Field(default=None, description="why a turn failed or was cancelled")
    created_at: datetime = Field(default_factory=utc_now)
    completed_at: datetime | None = None
    lease_until: datetime | None = Field(
        default=None,
        description="several replicas: the replica running this in_progress turn renews it while it runs; once it "
        "has passed, the replica is gone and the turn reads as failed",
    )

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


class Session(BaseModel):
    """A multi-turn conversation owned by one shopper; turns are ordered by index."""

    session_id: str
    shopper_id: str
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    summary: str | None = None
    summary_through: int | None = Field(
        default=None, description="index of the last turn the summary covers; None: every turn before the window"
    )
    turns: list[Turn] = Field(default_factory=list)

    def owned_by(self, shopper_id: str) -> bool:
        return self.shopper_id == shopper_id

    def completed_turns(self) -> list[Turn]:
        """The turns that completed, oldest first."""
        return [t for t in self.turns if t.status == "completed"]

    def products_shown(self) -> list[str]:
        """Product ids shown in finished turns, each once at its latest showing, most recent last."""
        latest: dict[str, tuple[int, int]] = {}
        for turn in self.turns:
            if not turn.finished:
                continue
            for pos, pid in enumerate(turn.product_ids):
                latest[pid] = (turn.index, pos)
        return sorted(latest, key=latest.__getitem__)

    def last_turn(self) -> Turn | None:
        return self.turns[-1] if self.turns else None
