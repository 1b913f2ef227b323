"""The session-store protocol, its errors, and the rules every backend shares."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from assistant import errors
from assistant.sessions.models import InvalidEventId, Session, StoredEvent, Turn, TurnKind, parse_event_id, utc_now

DEFAULT_STALE_AFTER_S = 600.0
"""An in_progress turn older than this is reported as failed: its process died or hung."""
DEFAULT_TIMEOUT_S = 5.0
"""How long one call to a store's server may take before the store reports itself unavailable."""

STALE_ERROR = "interrupted: the turn never completed"
LEASE_ERROR = "interrupted: the replica running the turn stopped"
SUPERSEDED_ERROR = "interrupted: a newer turn began"

_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SessionStoreError(Exception):
    """Base of the session-store errors."""


class SessionStoreUnavailable(SessionStoreError, errors.StoreUnavailable):
    """The store's server does not answer, or not within the store's timeout (503 wherever it surfaces)."""

    def __init__(self, backend: str, cause: BaseException) -> None:
        detail = str(cause) or type(cause).__name__
        super().__init__(f"the session store ({backend}) is unavailable: {detail}")
        self.backend = backend


class SessionNotFound(SessionStoreError, errors.SessionNotFound):
    """The store holds no such session (the domain error of the same name, so it reads as 404 wherever it surfaces)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found")
        self.session_id = session_id


class SessionExists(SessionStoreError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class TurnNotFound(SessionStoreError, LookupError):
    def __init__(self, session_id: str, turn_id: str) -> None:
        super().__init__(f"turn {turn_id!r} not found in session {session_id!r}")
        self.session_id = session_id
        self.turn_id = turn_id


class UnknownEventId(InvalidEventId, SessionStoreError):
    """A well-formed event id that names no logged event of the session."""


@runtime_checkable
class SessionStore(Protocol):
    """Sessions, their turns, and every event of a turn as it was emitted."""

    async def create_session(self, shopper_id: str, session_id: str | None = None) -> Session:
        """A new empty session; SessionExists when `session_id` is taken."""
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """The session with its turns (no events); stale in_progress turns read as failed."""
        ...

    async def list_sessions(self, shopper_id: str, limit: int = 20) -> list[Session]:
        """The shopper's sessions with their turns, most recently updated first."""
        ...

    async def begin_turn(self, session_id: str, user_message: str, kind: TurnKind = "bot") -> Turn:
        """A new in_progress turn; earlier in_progress turns become failed. SessionNotFound if unknown."""
        ...

    async def append_event(self, session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> StoredEvent:
        """Log one emitted event under the turn's next id (`"<turn_id>:<seq>"`, seq from 0)."""
        ...

    async def complete_turn(self, session_id: str, turn: Turn) -> None:
        """Store the final turn (completed, failed or cancelled) atomically and durably."""
        ...

    async def renew_lease(self, session_id: str, turn_id: str, until: datetime) -> bool:
        """Set an in_progress turn's `lease_until` (its replica is alive); False when the turn is over or unknown."""
        ...

    async def events_after(
        self, session_id: str, last_event_id: str | None, turn_id: str | None = None
    ) -> list[StoredEvent]:
        """The turn's events after `last_event_id` (all of them when None; latest turn when both None)."""
        ...

    async def set_summary(self, session_id: str, summary: str, through_index: int | None = None) -> None:
        """Store a summary of the turns up to `through_index` (default: the last finished turn)."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class StoreLifecycle:
    """`async with store:` closes it."""

    async def aclose(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


P = ParamSpec("P")
R = TypeVar("R")


def unavailable_on(
    backend: str, *failures: type[BaseException]
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """A store method whose `failures` (the server is away, or slower than the store's timeout) raise
    SessionStoreUnavailable: a clear 503, not a 500."""

    def wrap(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except failures as e:
                raise SessionStoreUnavailable(backend, e) from e

        return call

    return wrap


def new_session_id() -> str:
    return uuid.uuid4().hex


def new_turn_id() -> str:
    return uuid.uuid4().hex


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise ValueError(f"invalid session id {session_id!r}: 1-64 characters of A-Z a-z 0-9 . _ -")
    return session_id


def check_shopper_id(shopper_id: str) -> str:
    if not shopper_id or len(shopper_id) > 256:
        raise ValueError("shopper_id must be 1-256 characters")
    return shopper_id


def check_final(turn: Turn) -> None:
    if not turn.finished:
        raise ValueError(f"complete_turn needs a final status, got {turn.status!r}")


def finalize(turn: Turn, index: int) -> Turn:
    """The turn as stored on completion: the stored index, a completion time."""
    return turn.model_copy(update={"index": index, "completed_at": turn.completed_at or utc_now()})


def supersede(turn: Turn) -> Turn:
    """An in_progress turn overtaken by a newer one: recorded as failed."""
    return turn.model_copy(update={"status": "failed", "error": SUPERSEDED_ERROR, "completed_at": utc_now()})


def report_stale(turns: Iterable[Turn], stale_after_s: float, now: datetime | None = None) -> list[Turn]:
    """Turns ordered by index, with in_progress ones shown as failed once their replica's lease has passed (several
    replicas), or, without a lease, once older than `stale_after_s`."""
    now = now or utc_now()
    cutoff = now - timedelta(seconds=stale_after_s)
    out = []
    for turn in sorted(turns, key=lambda t: t.index):
        # A person's stretch of the conversation stays open as long as they hold the session.
        if turn.status == "in_progress" and turn.kind == "bot":
            if turn.lease_until is not None and turn.lease_until < now:
                turn = turn.model_copy(update={"status": "failed", "error": LEASE_ERROR})
            elif turn.created_at < cutoff:
                turn = turn.model_copy(update={"status": "failed", "error": STALE_ERROR})
        out.append(turn)
    return out


def default_summary_through(turns: Iterable[Turn]) -> int | None:
    finished = [t.index for t in turns if t.finished]
    return max(finished) if finished else None


def resolve_resume(last_event_id: str | None, turn_id: str | None) -> tuple[str | None, int]:
    """(turn_id or None for the latest turn, first seq to return) from the resume arguments."""
    if last_event_id is None:
        return turn_id, 0
    event_turn, seq = parse_event_id(last_event_id)
    if turn_id is not None and turn_id != event_turn:
        raise InvalidEventId(f"event id {last_event_id!r} does not belong to turn {turn_id!r}")
    return event_turn, seq + 1


def check_resume_point(session_id: str, last_event_id: str | None, first_seq: int, n_events: int) -> None:
    """The id the client saw must be a logged event: its seq below the number of events."""
    if last_event_id is not None and first_seq > n_events:
        raise UnknownEventId(f"event {last_event_id!r} was never logged in session {session_id!r}")


def unknown_turn_event(session_id: str, last_event_id: str | None, turn_id: str) -> SessionStoreError:
    if last_event_id is not None:
        return UnknownEventId(f"event {last_event_id!r} names no turn of session {session_id!r}")
    return TurnNotFound(session_id, turn_id)
