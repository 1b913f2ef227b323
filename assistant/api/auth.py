"""API keys: each key stands for a Principal (role, shopper); only their digests are kept."""

from __future__ import annotations

import hashlib
import hmac
import math

from fastapi import Request

from assistant.api.errors import ApiError
from assistant.principal import Principal
from assistant.settings import ApiKey


class KeyRing:
    """Looks keys up in constant time per key; stores only their digests."""

    def __init__(self, keys: dict[str, ApiKey]) -> None:
        self._keys = {hashlib.sha256(k.encode()).digest(): (f"key-{i}", v) for i, (k, v) in enumerate(keys.items())}

    def find(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        for known, (key_id, key) in self._keys.items():
            if hmac.compare_digest(known, digest):
                return Principal(key_id, key.role, key.shopper_id)
        return None


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def authenticate(request: Request, ring: KeyRing) -> Principal:
    key = presented_key(request)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = ring.find(key)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
