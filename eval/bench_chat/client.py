"""The benchmark's HTTP side: SSE parsing, one streamed turn against the service or straight against an
OpenAI-compatible model server, and the answer-model calls a session's trace recorded."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from eval.sse import sse_events

WORD = re.compile(r"\S+")


# -- one turn -------------------------------------------------------------------------------------


@dataclass
class TurnResult:
    """One streamed answer, service or direct; times in seconds from sending the request."""

    side: str  # "service" | "direct"
    shopper: int
    turn: int
    message: str
    round: int = 1  # of the level's rounds (fresh sessions each round)
    started_s: float = 0.0  # since the phase started
    products_s: float | None = None
    first_token_s: float | None = None
    last_token_s: float | None = None
    duration_s: float | None = None
    pieces: int = 0
    first_piece: str = ""
    text: str = ""
    session_id: str | None = None
    intent: str | None = None
    references: list[str] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    turn_id: str | None = None
    prompt: str | None = None  # the answer prompt file the service rendered (and the direct side replays)
    model_call: dict[str, Any] | None = None  # service side: the trace's answer_model entry (data)
    status: str | None = None
    error: str | None = None
    error_events: list[str] = field(default_factory=list)
    cut: bool = False  # stopped by --max-seconds: neither a result nor an error

    @property
    def failed(self) -> bool:
        return not self.cut and (self.error is not None or bool(self.error_events) or self.status != "completed")

    def piece(self, text: str, at: float) -> None:
        if self.first_token_s is None:
            self.first_token_s, self.first_piece = at, text
        self.last_token_s = at
        self.pieces += 1
        self.text += text

    def rates(self) -> tuple[float | None, float | None]:
        """(pieces/s, words/s) after the first piece; None with fewer than two pieces."""
        if self.pieces < 2 or self.first_token_s is None or self.last_token_s is None:
            return None, None
        span = self.last_token_s - self.first_token_s
        if span <= 0:
            return None, None
        words = len(WORD.findall(self.text)) - len(WORD.findall(self.first_piece))
        return (self.pieces - 1) / span, max(words, 0) / span

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["cards"] = [c.get("id") for c in self.cards]
        if self.model_call is not None:  # the messages are in the session; keep the timings
            out["model_call"] = {k: v for k, v in self.model_call.items() if k != "messages"}
        out["pieces_per_s"], out["words_per_s"] = self.rates()
        out["failed"] = self.failed
        return out


def short(body: bytes | str, n: int = 200) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return " ".join(text.split())[:n]


async def service_turn(client: httpx.AsyncClient, base_url: str, api_key: str, shopper_id: str, r: TurnResult) -> None:
    """POST /v1/chat and record the stream's events into `r` as they arrive."""
    body: dict[str, Any] = {"message": r.message}
    if r.session_id:
        body["session_id"] = r.session_id
    else:
        body["shopper_id"] = shopper_id
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", f"{base_url}/v1/chat", json=body, headers=headers) as resp:
            if resp.status_code != 200:
                r.error = f"HTTP {resp.status_code}: {short(await resp.aread())}"
                return
            async for ev in sse_events(resp.aiter_lines()):
                at = time.perf_counter() - t0
                data = json.loads(ev.data) if ev.data else {}
                if ev.event == "session":
                    r.session_id, r.turn_id = data.get("session_id"), data.get("turn_id")
                elif ev.event == "intent":
                    r.intent, r.references = data.get("intent"), list(data.get("references") or [])
                elif ev.event == "products":
                    r.products_s, r.cards = at, list(data.get("products") or [])
                elif ev.event == "token":
                    r.piece(str(data.get("text", "")), at)
                elif ev.event == "error":
                    err = data.get("error") or {}
                    r.error_events.append(f"{err.get('code', '?')}: {short(str(err.get('message', '')), 120)}")
                elif ev.event == "done":
                    r.status = data.get("status")
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        r.error = f"{type(e).__name__}: {short(str(e))}"
    finally:
        r.duration_s = time.perf_counter() - t0
    if r.error is None and r.status is None:
        r.error = "stream ended without a done event"


async def direct_turn(
    client: httpx.AsyncClient, vllm_url: str, model: str, messages: list[dict[str, str]], max_tokens: int, r: TurnResult
) -> None:
    """The same prompt straight to the OpenAI-compatible server, streamed; each content chunk is a piece. A final
    assistant message is the reply's start, continued as the service has vLLM continue it (its text begins the
    answer's text, as in the service's answer, but is no piece: the model said none of it)."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
    }
    if messages and messages[-1].get("role") == "assistant":
        payload.update(continue_final_message=True, add_generation_prompt=False)
        r.text = messages[-1].get("content") or ""
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", f"{vllm_url}/chat/completions", json=payload) as resp:
            if resp.status_code != 200:
                r.error = f"HTTP {resp.status_code}: {short(await resp.aread())}"
                return
            async for ev in sse_events(resp.aiter_lines()):
                if ev.data.strip() == "[DONE]":
                    r.status = "completed"
                    break
                chunk = json.loads(ev.data)
                if chunk.get("error"):
                    r.error_events.append(short(json.dumps(chunk["error"]), 160))
                    continue
                choices = chunk.get("choices") or []
                text = (choices[0].get("delta") or {}).get("content") if choices else None
                if text:
                    r.piece(text, time.perf_counter() - t0)
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        r.error = f"{type(e).__name__}: {short(str(e))}"
    finally:
        r.duration_s = time.perf_counter() - t0
    if r.error is None and r.status is None:
        r.error = "stream ended without [DONE]"


async def bounded(work: Awaitable[None], r: TurnResult, deadline: float, request_timeout: float) -> None:
    """Run one turn under the request timeout (an error) and the global deadline (a cut, not an error)."""
    remaining = deadline - time.monotonic()
    limit = min(request_timeout, remaining)
    try:
        async with asyncio.timeout(max(limit, 0.0)):
            await work
    except TimeoutError:
        if remaining < request_timeout:
            r.cut = True
        else:
            r.error = f"no end within {request_timeout:g} s"


async def attach_model_calls(client: httpx.AsyncClient, base_url: str, api_key: str, results: list[TurnResult]) -> None:
    """Read each session once (GET /v1/sessions/{id}) and give every turn the answer-model call its trace
    recorded: the exact messages the service sent, and when the model's first text came."""
    headers = {"Authorization": f"Bearer {api_key}"}
    by_turn = {r.turn_id: r for r in results if r.turn_id}
    for sid in sorted({r.session_id for r in results if r.session_id}):
        try:
            resp = await client.get(f"{base_url}/v1/sessions/{sid}", headers=headers, timeout=30.0)
            resp.raise_for_status()
            turns = resp.json().get("turns") or []
        except (httpx.HTTPError, ValueError):
            continue
        for turn in turns:
            r = by_turn.get(turn.get("turn_id"))
            call = next((c for c in turn.get("tool_trace") or [] if c.get("name") == "answer_model"), None)
            if r is not None and call is not None and call.get("ok") and call.get("data"):
                r.model_call = call["data"]
                r.prompt = call["data"].get("prompt")
