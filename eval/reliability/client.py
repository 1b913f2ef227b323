"""HTTP as the suite sees it: every response counted into the Tally (5xx as server errors, except the 503s a part
expects while it has a dependency down), and one chat turn read to its `done` within a deadline (else: hung)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from eval.reliability.tally import Tally
from eval.sse import sse_events

ERROR_KEYS = {"code", "message"}


def counting_client(tally: Tally, base_url: str, allow_503: bool = False, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient whose every response adds to `requests` and, when 5xx, to `server_errors` (a 503 in the one
    error shape is a clear "unavailable" while a part has stopped a dependency: `allow_503`)."""

    async def count(resp: httpx.Response) -> None:
        tally.add("requests")
        if resp.status_code >= 500 and not (allow_503 and resp.status_code == 503):
            tally.add("server_errors")

    kwargs.setdefault("timeout", httpx.Timeout(30.0, connect=10.0))
    return httpx.AsyncClient(base_url=base_url, event_hooks={"response": [count]}, **kwargs)


def is_error_shape(body: Any) -> bool:
    """The one error shape: {"error": {"code": str, "message": str, "details"?: object}}."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return False
    err = body["error"]
    return ERROR_KEYS <= set(err) and isinstance(err["code"], str) and isinstance(err["message"], str)


@dataclass
class Turn:
    """One POST /v1/chat as the shopper's client saw it."""

    status: int = 0
    events: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)  # (event, data, id)
    done: str | None = None  # the done event's status
    hung: bool = False
    broken: str | None = None  # the connection broke before `done` (what the client saw)
    body: Any = None  # the JSON body of a non-200 answer
    first_event_s: float | None = None

    @property
    def session_id(self) -> str | None:
        return next((d.get("session_id") for e, d, _ in self.events if e == "session"), None)

    @property
    def turn_id(self) -> str | None:
        return next((d.get("turn_id") for e, d, _ in self.events if e == "session"), None)

    @property
    def last_id(self) -> str | None:
        return next((i for _, _, i in reversed(self.events) if i), None)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [d for e, d, _ in self.events if e == event]

    @property
    def text(self) -> str:
        return "".join(str(d.get("text", "")) for d in self.named("token"))


async def chat_turn(
    client: httpx.AsyncClient,
    tally: Tally,
    key: str,
    message: str,
    session_id: str | None = None,
    deadline_s: float = 60.0,
    into: Turn | None = None,
    **extra: Any,
) -> Turn:
    """One streamed turn; a stream that neither ends with `done` nor breaks within `deadline_s` counts as hung.
    `into`: the Turn to fill as events arrive (for a caller that watches it mid-stream)."""
    body: dict[str, Any] = {"message": message, **extra}
    if session_id:
        body["session_id"] = session_id
    turn = into if into is not None else Turn()
    t0 = time.perf_counter()

    async def read() -> None:
        async with client.stream(
            "POST", "/v1/chat", json=body, headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        ) as resp:
            turn.status = resp.status_code
            if resp.status_code != 200:
                raw = await resp.aread()
                try:
                    turn.body = json.loads(raw)
                except ValueError:
                    turn.body = raw.decode("utf-8", "replace")
                return
            async for ev in sse_events(resp.aiter_lines()):
                if turn.first_event_s is None:
                    turn.first_event_s = time.perf_counter() - t0
                data = json.loads(ev.data) if ev.data else {}
                turn.events.append((ev.event, data, ev.id))
                if ev.event == "done":
                    turn.done = str(data.get("status"))
                    return

    try:
        await asyncio.wait_for(read(), deadline_s)
    except TimeoutError:
        turn.hung = True
        tally.add("hung_streams")
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        turn.broken = f"{type(e).__name__}: {e}"
    return turn
