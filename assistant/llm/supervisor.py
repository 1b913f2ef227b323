"""Keeps the embedded vLLM server alive: a crashed server is restarted, a few times at most."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Restartable(Protocol):
    def running(self) -> bool: ...

    async def restart_async(self) -> object: ...


class Supervisor:
    """Polls `server.running()`; restarts it when it died, at most `max_restarts` per `window_s`.

    Past that budget it gives up and leaves the server down, so /readyz says 503 and turns end
    with an `llm_unavailable` error event instead of hanging.
    """

    def __init__(
        self, server: Restartable, *, interval_s: float = 5.0, max_restarts: int = 3, window_s: float = 600.0
    ) -> None:
        self.server = server
        self.interval_s = interval_s
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.restarts: list[float] = []
        self.gave_up = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.server.running():
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < self.window_s]
            if len(self.restarts) >= self.max_restarts:
                if not self.gave_up:
                    log.error("vLLM died %d times in %.0fs; not restarting it again", len(self.restarts), self.window_s)
                self.gave_up = True
                continue
            self.restarts.append(now)
            log.warning("vLLM is not running; restarting it (%d/%d)", len(self.restarts), self.max_restarts)
            try:
                await self.server.restart_async()
                log.warning("vLLM is back")
            except Exception:  # a failed start is logged; the next poll tries again within budget
                log.exception("vLLM restart failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
