"""Request size limit (ASGI middleware) and a per-key token-bucket rate limiter."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.errors import error_body


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Rejects request bodies over `max_bytes` (or, on a path in `larger`, over its own limit) with 413 in the one
    error shape (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app, self.default_max, self.larger = app, max_bytes, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope.get("path", ""), self.default_max)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(send, max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        body = json.dumps(error_body("payload_too_large", f"request body over {max_bytes} bytes")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# A bucket unused this long has refilled completely: forgetting it changes nothing.
REFILL_S = 60.0


@dataclass
class RateLimiter:
    """`per_minute` requests per key, refilled continuously; `check` returns seconds to wait (0: allowed).

    Keys include every anonymous visitor and client address, so full buckets are forgotten (at most once a refill
    period, in one sweep): memory follows the keys active in the last minute, not every key ever seen."""

    per_minute: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _swept: float = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if now - self._swept >= REFILL_S:
            self._buckets = {k: b for k, b in self._buckets.items() if now - b[1] < REFILL_S}
            self._swept = now
        rate = self.per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate
