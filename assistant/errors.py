"""Domain errors: what went wrong, in words a client may be shown. The HTTP layer maps each class to a status (its
`errors.py`); nothing here knows about HTTP."""

from __future__ import annotations

from typing import Any, ClassVar


class AssistantError(Exception):
    """A refusal the caller can act on: a stable `code` and a message naming the problem."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(AssistantError):
    """The request is well-formed but asks for something that cannot be done as asked."""

    code = "invalid_request"


class MessageRejected(AssistantError):
    """The shopper's message cannot start a turn."""

    code = "invalid_request"


class MessageEmpty(MessageRejected):
    code = "invalid_request"


class MessageTooLong(MessageRejected):
    code = "message_too_long"


class Forbidden(AssistantError):
    """The caller is known but may not do this."""

    code = "forbidden"


class SessionNotFound(AssistantError, LookupError):
    """No such session for this caller (another shopper's session reads as absent, so nothing leaks)."""

    code = "session_not_found"


class EventNotFound(AssistantError, LookupError):
    """A resume point that names no logged event or turn of the session."""

    code = "event_not_found"


class InvalidLastEventId(AssistantError, ValueError):
    """A resume point that is not of the form `<turn_id>:<seq>`."""

    code = "invalid_last_event_id"


class UnknownProducts(AssistantError):
    """Product ids the catalog does not hold."""

    code = "unknown_product"


class Unavailable(AssistantError):
    """A part the request needs is not configured or not answering."""

    code = "unavailable"
