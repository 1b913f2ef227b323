"""Who is calling: API keys (only their digests are kept) and visitor tokens, each standing for a Principal; the
browser Origin a credential may come from."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

from fastapi import Request

from assistant.api.errors import ApiError
from assistant.errors import TokenRejected
from assistant.principal import Principal
from assistant.settings import ApiKey
from assistant.visitors import TOKEN_PREFIX, Visitor, VisitorTokens, key_id_of

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class KnownKey:
    key_id: str
    config: ApiKey


class KeyRing:
    """Looks keys up in constant time per key; keeps their digests (and a publishable key itself: it is public)."""

    def __init__(self, keys: dict[str, ApiKey]) -> None:
        self._keys = [(hashlib.sha256(k.encode()).digest(), KnownKey(key_id_of(k), v)) for k, v in keys.items()]
        self._publishable = {known.key_id: known for _, known in self._keys if known.config.role == "publishable"}

    def find(self, presented: str) -> KnownKey | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for stored, known in self._keys:
            if hmac.compare_digest(stored, digest):
                found = known
        return found

    def publishable(self, key_id: str) -> KnownKey | None:
        """The publishable key a visitor token names, while it is configured."""
        return self._publishable.get(key_id)


@dataclass
class Authenticator:
    """Turns a request's credential into a Principal: a widget or agent key, or a visitor token (a widget principal
    for its own shopper). Publishable keys are public and read nothing: they only get visitor tokens."""

    keys: KeyRing
    tokens: VisitorTokens
    agent_origins: frozenset[str]

    def principal(self, request: Request) -> Principal:
        presented = presented_key(request)
        if presented is None:
            raise ApiError(
                401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", headers=UNAUTHORIZED
            )
        known = self.keys.find(presented)
        if known is None and presented.startswith(TOKEN_PREFIX + "."):
            return self.visitor(request, presented)
        if known is None:
            raise ApiError(401, "unauthorized", "unknown API key", headers=UNAUTHORIZED)
        role = known.config.role
        if role == "publishable":
            raise ApiError(
                403,
                "forbidden",
                "a publishable key reads nothing: exchange it for a visitor token at POST /v1/visitors",
            )
        origin = request.headers.get("origin")
        if role == "agent" and origin is not None and origin not in self.agent_origins:
            raise ApiError(403, "forbidden", f"agent keys are not accepted from the browser origin {origin!r}")
        return Principal(known.key_id, role, known.config.shopper_id)

    def visitor(self, request: Request, token: str) -> Principal:
        """The widget principal of a visitor token: its own shopper only."""
        key, visitor = self.verified(request, token)
        return Principal(f"{key.key_id}/{visitor.shopper_id}", "widget", visitor.shopper_id)

    def verified(self, request: Request, token: str) -> tuple[KnownKey, Visitor]:
        """A visitor token's key and visitor; 401 when it proves nothing, 403 from a page its key does not allow."""
        try:
            visitor = self.tokens.verify(token)
        except TokenRejected as e:
            raise ApiError(401, e.code, e.message, e.details, headers=UNAUTHORIZED) from None
        key = self.keys.publishable(visitor.key_id)
        if key is None:
            raise ApiError(401, "unauthorized", "the visitor token's key is not configured", {"reason": "unknown_key"})
        widget_key = request.headers.get("x-widget-key")
        if widget_key is not None and key_id_of(widget_key) != key.key_id:
            raise ApiError(
                401, "unauthorized", "the visitor token belongs to another widget key", {"reason": "wrong_key"}
            )
        self.check_origin(request, key)
        return key, visitor

    def widget_key(self, request: Request) -> KnownKey:
        """The publishable key in X-Widget-Key (or the one a visitor token names), allowed from this page."""
        presented = request.headers.get("x-widget-key")
        if presented is None:
            bearer = presented_key(request)
            if bearer is not None and bearer.startswith(TOKEN_PREFIX + "."):
                return self.verified(request, bearer)[0]
            raise ApiError(401, "unauthorized", "missing widget key: send 'X-Widget-Key: pk_…'")
        known = self.keys.find(presented)
        if known is None or known.config.role != "publishable":
            raise ApiError(401, "unauthorized", "unknown publishable key")
        self.check_origin(request, known)
        return known

    @staticmethod
    def check_origin(request: Request, key: KnownKey) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in key.config.allowed_origins:
            raise ApiError(403, "forbidden", f"this widget key is not allowed on pages of {origin!r}")


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
