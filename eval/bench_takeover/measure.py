"""One measurement: a shopper's session stream open on replica A, an agent posting on A and on B in turn;
post-to-receive latency on one monotonic clock (the poster and the reader share this process)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from eval.sse import SSEParser

WIDGET = {"Authorization": "Bearer demo-widget-key"}  # the demo shopper "1"
AGENT = {"Authorization": "Bearer demo-agent-key"}
MARK = "bench-"


@dataclass
class Sample:
    index: int
    path: str  # "same" (posted on A, the stream's replica) or "across" (posted on B)
    sent: float
    posted: float | None = None  # when the POST's response came back
    received: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.received is None else (self.received - self.sent) * 1000


@dataclass
class Reader:
    """The shopper's GET /v1/sessions/{id}/stream; notes when each benchmark message arrives."""

    url: str
    samples: dict[str, Sample] = field(default_factory=dict)
    snapshot: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    events: int = 0
    error: str | None = None

    async def run(self, client: httpx.AsyncClient) -> None:
        parser = SSEParser()
        try:
            async with client.stream("GET", self.url, headers=WIDGET, timeout=httpx.Timeout(10, read=None)) as r:
                if r.status_code != 200:
                    self.error = f"stream answered {r.status_code}"
                    self.snapshot.set()
                    return
                async for line in r.aiter_lines():
                    ev = parser.feed(line)
                    if ev is None:
                        continue
                    now = time.monotonic()
                    self.events += 1
                    if ev.event == "state":
                        self.snapshot.set()
                    elif ev.event == "message":
                        text = json.loads(ev.data).get("text", "")
                        sample = self.samples.get(text)
                        if sample is not None and sample.received is None:
                            sample.received = now
                            self.arrived.set()
        except httpx.HTTPError as e:
            self.error = f"stream: {type(e).__name__}: {e}"
            self.snapshot.set()


async def open_session(client: httpx.AsyncClient, a: str, message: str) -> str:
    """One shopper chat turn on A (the stub model answers it); its session id."""
    session: str | None = None
    parser = SSEParser()
    async with client.stream("POST", f"{a}/v1/chat", json={"message": message}, headers=WIDGET, timeout=60) as r:
        if r.status_code != 200:
            raise RuntimeError(f"POST /v1/chat answered {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            ev = parser.feed(line)
            if ev is not None and session is None:
                session = json.loads(ev.data).get("session_id")
    if not session:
        raise RuntimeError("the chat turn named no session_id")
    return session


async def take_over(client: httpx.AsyncClient, base: str, session: str, name: str) -> None:
    r = await client.post(f"{base}/v1/agent/sessions/{session}/take", json={"name": name}, headers=AGENT)
    if r.status_code != 200:
        raise RuntimeError(f"take over answered {r.status_code}: {r.text[:300]}")


async def post_one(client: httpx.AsyncClient, base: str, session: str, sample: Sample, text: str) -> None:
    try:
        r = await client.post(f"{base}/v1/agent/sessions/{session}/messages", json={"text": text}, headers=AGENT)
        sample.status = r.status_code
        if not r.is_success:  # 201 Created
            sample.error = f"POST answered {r.status_code}"
    except httpx.HTTPError as e:
        sample.error = f"POST: {type(e).__name__}"
    sample.posted = time.monotonic()


async def run_backend(
    a: str,
    b: str,
    *,
    messages: int,
    interval_s: float,
    warmup: int,
    wait_s: float,
    deadline: float,
    label: str,
    quiet: bool = False,
) -> dict[str, Any]:
    """`messages` agent messages, alternating A (same replica) and B (across), `interval_s` apart, each waited
    for up to `wait_s` before the next is sent (so at most one is in flight); `warmup` more before, unmeasured."""
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        session = await open_session(client, a, "running shoes")
        await take_over(client, a, session, "Bench")
        reader = Reader(f"{a}/v1/sessions/{session}/stream")
        task = asyncio.create_task(reader.run(client))
        try:
            await asyncio.wait_for(reader.snapshot.wait(), 30)
            if reader.error:
                raise RuntimeError(reader.error)
            samples: list[Sample] = []
            total = warmup + messages
            for i in range(total):
                if time.monotonic() > deadline:
                    break
                path = "same" if i % 2 == 0 else "across"
                text = f"{MARK}{label}-{i}"
                sample = Sample(i - warmup, path, time.monotonic())
                reader.samples[text] = sample
                reader.arrived.clear()
                await post_one(client, a if path == "same" else b, session, sample, text)
                if sample.error is None:
                    limit = sample.sent + wait_s
                    while sample.received is None and time.monotonic() < limit and not task.done():
                        try:
                            await asyncio.wait_for(reader.arrived.wait(), max(0.0, limit - time.monotonic()))
                        except TimeoutError:
                            break
                        reader.arrived.clear()
                if i >= warmup:
                    samples.append(sample)
                if not quiet and (i + 1) % 20 == 0:
                    got = [s.latency_ms for s in samples if s.latency_ms is not None]
                    print(
                        f"[{label}] {i + 1}/{total} sent, last {got[-1]:.1f} ms"
                        if got
                        else f"[{label}] {i + 1}/{total}",
                        file=sys.stderr,
                    )
                await asyncio.sleep(interval_s)
            await asyncio.sleep(min(wait_s, 1.0))  # a late arrival still counts
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
    return {"session_id": session, "samples": samples, "stream_events": reader.events, "stream_error": reader.error}
