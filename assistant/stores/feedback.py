"""Shoppers' ratings of answers: one per (session, turn); a second rating of a turn replaces the first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from assistant.stores.records import Record, RecordStore

FEEDBACK = "feedback"


class Feedback(BaseModel):
    """A thumbs up or down on one answer, with who gave it and when (kept for evaluation)."""

    session_id: str
    turn_id: str
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=1000)
    shopper_id: str = Field(description="the session's shopper")
    given_by: Literal["shopper", "agent"]
    key_id: str = Field(description="the credential it came with (a key's id, or key id/visitor)")
    at: datetime


def feedback_key(session_id: str, turn_id: str) -> str:
    return json.dumps([session_id, turn_id])


class FeedbackStore:
    """Feedback over a RecordStore, listed under its session in the order it was last given."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def give(self, feedback: Feedback) -> bool:
        """Store the turn's feedback, replacing any earlier one; True when it replaced one."""
        replaced = False
        record = Record(
            kind=FEEDBACK,
            key=feedback_key(feedback.session_id, feedback.turn_id),
            owner=feedback.session_id,
            sort=feedback.at.timestamp(),
            doc=feedback.model_dump(mode="json"),
        )

        def change(current: Record | None) -> Record:
            nonlocal replaced
            replaced = current is not None
            return record

        self.records.update(FEEDBACK, record.key, change)
        return replaced

    def get(self, session_id: str, turn_id: str) -> Feedback | None:
        key = feedback_key(session_id, turn_id)
        found = self.records.get(FEEDBACK, [key]).get(key)
        return Feedback.model_validate(found.doc) if found else None

    def for_session(self, session_id: str) -> list[Feedback]:
        """The session's feedback, oldest first."""
        return [Feedback.model_validate(r.doc) for r in self.records.list(FEEDBACK, session_id)]
