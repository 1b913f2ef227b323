"""Dialogue sessions: multi-turn history owned by one shopper, with every streamed event logged."""

from assistant.sessions.base import (
    SessionExists,
    SessionNotFound,
    SessionStore,
    SessionStoreError,
    TurnNotFound,
    UnknownEventId,
)
from assistant.sessions.factory import make_session_store, open_session_store
from assistant.sessions.models import InvalidEventId, Session, StoredEvent, Turn, TurnStatus

__all__ = [
    "InvalidEventId",
    "Session",
    "SessionExists",
    "SessionNotFound",
    "SessionStore",
    "SessionStoreError",
    "StoredEvent",
    "Turn",
    "TurnNotFound",
    "TurnStatus",
    "UnknownEventId",
    "make_session_store",
    "open_session_store",
]
