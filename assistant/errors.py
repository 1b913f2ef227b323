"""Domain errors: what went wrong, in words a client may be shown. The HTTP layer maps each class to a status (its
`errors.py`); nothing here knows about HTTP."""

from __future__ import annotations

from typing import Any, ClassVar, Literal


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


TokenProblem = Literal["malformed", "bad_signature", "expired", "unknown_key", "wrong_key"]


class TokenRejected(AssistantError):
    """A visitor token or identity signature that proves nothing: forged, tampered, expired, or another key's."""

    code = "unauthorized"

    def __init__(self, message: str, reason: TokenProblem) -> None:
        super().__init__(message, {"reason": reason})
        self.reason = reason


class SessionNotFound(AssistantError, LookupError):
    """No such session for this caller (another shopper's session reads as absent, so nothing leaks)."""

    code = "session_not_found"


class EventNotFound(AssistantError, LookupError):
    """A resume point that names no logged event or turn of the session."""

    code = "event_not_found"


class InvalidLastEventId(AssistantError, ValueError):
    """A resume point that is not of the form `<turn_id>:<seq>`."""

    code = "invalid_last_event_id"


class TurnNotFound(AssistantError, LookupError):
    """No such turn in the session."""

    code = "turn_not_found"


class ProductNotFound(AssistantError, LookupError):
    """A product id the catalog does not hold, where one product was asked for."""

    code = "product_not_found"


class OutOfStock(AssistantError):
    """The product exists but cannot be added now."""

    code = "out_of_stock"


class StateConflict(AssistantError):
    """The action does not fit the session's state (e.g. a message to a session another agent owns)."""

    code = "state_conflict"


class FeatureOff(AssistantError):
    """A feature this deployment has not configured (e.g. photo search without a CLIP checkpoint)."""

    code = "not_configured"


class InvalidImage(InvalidRequest):
    """An upload that is not an image the service can read."""

    code = "invalid_image"


class UnknownProducts(AssistantError):
    """Product ids the catalog does not hold."""

    code = "unknown_product"


class Unavailable(AssistantError):
    """A part the request needs is not configured or not answering."""

    code = "unavailable"


class StorageFull(Unavailable):
    """The store's disk is full: what the request would write cannot be kept (reads still work)."""

    code = "storage_full"


class StoreUnavailable(Unavailable):
    """A store the request needs (sessions, orders and carts, the vector index) does not answer, or not in time:
    try again shortly."""
