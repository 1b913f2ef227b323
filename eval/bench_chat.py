"""Chat latency under load: time to products and to the first token, rates and errors, against vLLM direct.

python -m eval.bench_chat [--base-url URL] [--vllm-url URL|auto|none] [--vllm-model NAME] [--concurrency 1,4,8]
                          [--turns 3] [--max-seconds 1200] [--json OUT] [--plot PNG] [--no-warmup]

Benchmarks a running service; starts no server. Per concurrency level N (levels run one after another),
N shoppers chat at once, each in its own session (agent key, shopper_id "1".."N") for a fixed number of
turns from a fixed script: a search, the follow-up "tell me about the second one", another search.
Times are taken from sending `POST /v1/chat`: to the `products` event, to the first `token` event, to the
end of the stream. A turn is an error when the HTTP status is not 200, the stream breaks or times out,
it carries an `error` event, or it ends with a `done` status other than completed.

The same prompt sent straight to vLLM: after a level's service turns, every turn whose answer the model
phrased (it showed product cards) is replayed against the model server at the same concurrency (one client
per shopper, its turns in order). Its prompt is rebuilt the way the planner builds it, from the cards the
service returned in that very turn: prompts/answer.yaml over `assistant.answers.products_facts` of the
catalog records of those cards, or prompts/product.yaml over `product_details` when a follow-up pointed
at one product; streamed with the prompt's max_tokens and temperature 0, like the service. Overhead =
service first-token p50 / direct first-token p50 over those paired turns at that concurrency. The
service's time also holds what it does besides the answer (routing, search, the slot-extraction model
call that runs beside the turn, the grounding filter holding text back) — which is the point.

Before the levels, one unmeasured warm-up pass runs the same scripts through the service, so that the
model server's prefix cache holds every prompt on both sides (the direct phase replays prompts the service
has just sent); `--no-warmup` skips it and then favours the direct side at the first level.

Units: the service's `token` events are text pieces released by the grounding filter (a word up to a whole
sentence); the direct stream's are streamed chunks (about one model token each). Rates per stream are
counted after the first piece: pieces/s = (pieces - 1) / (last - first piece time) and, comparable across
both sides, words/s = words after the first piece over the same span (none for a one-piece answer).

Targets: products p95 <= 150 ms and overhead <= 1.15x at every level; first token p95 <= 1.0 s at 1 shopper
and <= 2.5 s at 8. `--vllm-url auto` (the default without $SHOP_LLM_BASE_URL) takes the newest address in
the embedded server's log, <data dir>/vllm.log; the direct run is skipped when no model server answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistant.answers import product_details, products_facts
from assistant.planner import SEARCH
from assistant.prompts import PromptRegistry
from assistant.settings import AssistantSettings
from eval.metrics import percentile
from retrieval.catalog import load_catalog
from retrieval.product import Product

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_JSON = Path("eval/out/bench_chat.json")
DEFAULT_KEY = "demo-agent-key"
MAX_CONCURRENCY = 64
MAX_TURNS = 20
ANSWER_MAX_TOKENS: int = AssistantSettings.model_fields["answer_max_tokens"].default

# Every shopper i follows SCRIPTS[i % len(SCRIPTS)]; turn j is script[j % len(script)].
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("I need a warm winter jacket", "tell me about the second one", "a backpack for hiking"),
    ("running shoes for men", "tell me about the second one", "a leather belt"),
    ("a birthday gift for my sister", "tell me about the second one", "a silk scarf"),
    ("sandals for the beach", "tell me about the second one", "sunglasses"),
    ("a comfortable sofa for the living room", "tell me about the second one", "a floor lamp"),
    ("christmas decorations", "tell me about the second one", "a scented candle"),
    ("a school backpack for kids", "tell me about the second one", "a water bottle"),
    ("a necklace as an anniversary gift", "tell me about the second one", "a gift for a guitar player"),
)

# Intents whose answer the planner has the model phrase over the cards it shows (assistant/planner.py).
ONE_PRODUCT_INTENTS = {"product_question", "cart_add", "cart_remove"}
CARD_ANSWER_INTENTS = SEARCH | ONE_PRODUCT_INTENTS | {"variant_question", "compare_products"}

# Target name -> (comparison, threshold, unit); "@N" is the concurrency it is judged at.
TARGETS: dict[str, tuple[str, float, str]] = {
    "products_p95_ms": ("<=", 150.0, "ms"),  # at every level
    "first_token_p95_s@1": ("<=", 1.0, "s"),
    "first_token_p95_s@8": ("<=", 2.5, "s"),
    "overhead": ("<=", 1.15, "x"),  # at every level
}
WORD = re.compile(r"\S+")


# -- SSE ------------------------------------------------------------------------------------------


@dataclass
class SSEEvent:
    event: str
    data: str
    id: str | None = None


class SSEParser:
    """text/event-stream, one line at a time (line endings already stripped); comments (`: ping`) skipped."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SSEEvent | None:
        """The event a blank line completes, else None."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._event = ""
                return None
            ev = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return ev
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    parser = SSEParser()
    async for line in lines:
        if (ev := parser.feed(line)) is not None:
            yield ev
    if (ev := parser.feed("")) is not None:  # a last event without its blank line
        yield ev


# -- one turn -------------------------------------------------------------------------------------


@dataclass
class TurnResult:
    """One streamed answer, service or direct; times in seconds from sending the request."""

    side: str  # "service" | "direct"
    shopper: int
    turn: int
    message: str
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
    prompt: str | None = None  # direct side: the prompt file replayed
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
        out["pieces_per_s"], out["words_per_s"] = self.rates()
        out["failed"] = self.failed
        return out


def _short(body: bytes | str, n: int = 200) -> str:
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
                r.error = f"HTTP {resp.status_code}: {_short(await resp.aread())}"
                return
            async for ev in sse_events(resp.aiter_lines()):
                at = time.perf_counter() - t0
                data = json.loads(ev.data) if ev.data else {}
                if ev.event == "session":
                    r.session_id = data.get("session_id")
                elif ev.event == "intent":
                    r.intent, r.references = data.get("intent"), list(data.get("references") or [])
                elif ev.event == "products":
                    r.products_s, r.cards = at, list(data.get("products") or [])
                elif ev.event == "token":
                    r.piece(str(data.get("text", "")), at)
                elif ev.event == "error":
                    err = data.get("error") or {}
                    r.error_events.append(f"{err.get('code', '?')}: {_short(str(err.get('message', '')), 120)}")
                elif ev.event == "done":
                    r.status = data.get("status")
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        r.error = f"{type(e).__name__}: {_short(str(e))}"
    finally:
        r.duration_s = time.perf_counter() - t0
    if r.error is None and r.status is None:
        r.error = "stream ended without a done event"


async def direct_turn(
    client: httpx.AsyncClient, vllm_url: str, model: str, messages: list[dict[str, str]], max_tokens: int, r: TurnResult
) -> None:
    """The same prompt straight to the OpenAI-compatible server, streamed; each content chunk is a piece."""
    payload = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", f"{vllm_url}/chat/completions", json=payload) as resp:
            if resp.status_code != 200:
                r.error = f"HTTP {resp.status_code}: {_short(await resp.aread())}"
                return
            async for ev in sse_events(resp.aiter_lines()):
                if ev.data.strip() == "[DONE]":
                    r.status = "completed"
                    break
                chunk = json.loads(ev.data)
                if chunk.get("error"):
                    r.error_events.append(_short(json.dumps(chunk["error"]), 160))
                    continue
                choices = chunk.get("choices") or []
                text = (choices[0].get("delta") or {}).get("content") if choices else None
                if text:
                    r.piece(text, time.perf_counter() - t0)
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        r.error = f"{type(e).__name__}: {_short(str(e))}"
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


# -- the same prompt ------------------------------------------------------------------------------


def card_product(card: dict[str, Any]) -> Product:
    """A product from a card's fields: every field a facts line shows (for products missing from --catalog)."""
    keys = ("id", "title", "price", "currency", "stock", "brand", "color", "rating")
    return Product.model_validate({k: card[k] for k in keys if card.get(k) is not None})


def direct_prompt(
    r: TurnResult, prompts: PromptRegistry, catalog: dict[str, Product]
) -> tuple[str, list[dict[str, str]], int] | None:
    """(prompt name, messages, max_tokens) the service's planner built for this turn; None without a model answer."""
    if r.failed or not r.cards or not r.pieces or r.intent not in CARD_ANSWER_INTENTS:
        return None
    products = [catalog.get(str(c.get("id"))) or card_product(c) for c in r.cards]
    if r.intent in ONE_PRODUCT_INTENTS and r.references and len(products) == 1:
        name, facts = "product", product_details(products[0])
    elif r.intent == "variant_question" and len(products) == 1:
        return None  # may be the fixed "couldn't find it in black" beside the product's own card
    else:
        name, facts = "answer", products_facts(products)
    prompt = prompts.get(name)
    messages = [{"role": role, "content": text} for role, text in prompt.messages(facts=facts, message=r.message)]
    return name, messages, prompt.max_tokens or ANSWER_MAX_TOKENS


# -- phases ---------------------------------------------------------------------------------------


@dataclass
class Config:
    base_url: str
    api_key: str
    vllm_url: str | None
    vllm_model: str | None
    levels: list[int]
    turns: int
    request_timeout: float
    deadline: float  # time.monotonic()
    warmup: bool
    prompts: PromptRegistry
    catalog: dict[str, Product]
    quiet: bool = False


def log(cfg: Config, text: str) -> None:
    if not cfg.quiet:
        print(text, file=sys.stderr, flush=True)


def _fmt_turn(r: TurnResult) -> str:
    def s(v: float | None, scale: float = 1.0, spec: str = ".2f") -> str:
        return "-" if v is None else format(v * scale, spec)

    problem = r.error or "; ".join(r.error_events) or f"done {r.status}"
    state = "cut by --max-seconds" if r.cut else f"ERROR {problem}" if r.failed else "ok"
    products = f"products {s(r.products_s, 1000, '.0f')} ms, " if r.side == "service" else ""
    return (
        f"{products}first token {s(r.first_token_s)} s, {r.pieces} pieces, end {s(r.duration_s)} s"
        f"{f' [{r.intent}]' if r.intent else ''}: {state}"
    )


async def run_service(client: httpx.AsyncClient, cfg: Config, n: int, label: str) -> tuple[list[TurnResult], float]:
    """N shoppers at once, `turns` turns each in one session; (results, wall seconds)."""
    results: list[TurnResult] = []
    t0 = time.perf_counter()

    async def shopper(i: int) -> None:
        script = SCRIPTS[i % len(SCRIPTS)]
        session: str | None = None
        for j in range(cfg.turns):
            if time.monotonic() >= cfg.deadline:
                return
            r = TurnResult("service", i + 1, j + 1, script[j % len(script)], started_s=time.perf_counter() - t0)
            r.session_id = session
            results.append(r)
            await bounded(
                service_turn(client, cfg.base_url, cfg.api_key, str(i + 1), r), r, cfg.deadline, cfg.request_timeout
            )
            session = r.session_id
            log(cfg, f"[{label}] shopper {i + 1} turn {j + 1} {r.message!r}: {_fmt_turn(r)}")

    await asyncio.gather(*(shopper(i) for i in range(n)))
    return sorted(results, key=lambda r: (r.shopper, r.turn)), time.perf_counter() - t0


async def run_direct(
    client: httpx.AsyncClient, cfg: Config, model: str, service: list[TurnResult], label: str
) -> tuple[list[TurnResult], float]:
    """Each shopper's model-phrased service turns replayed straight to vLLM, shoppers at once."""
    plans: dict[int, list[tuple[TurnResult, tuple[str, list[dict[str, str]], int]]]] = {}
    for s in service:
        built = direct_prompt(s, cfg.prompts, cfg.catalog)
        if built is not None:
            plans.setdefault(s.shopper, []).append((s, built))
    results: list[TurnResult] = []
    t0 = time.perf_counter()

    async def shopper(items: list[tuple[TurnResult, tuple[str, list[dict[str, str]], int]]]) -> None:
        for s, (name, messages, max_tokens) in items:
            if time.monotonic() >= cfg.deadline:
                return
            r = TurnResult("direct", s.shopper, s.turn, s.message, started_s=time.perf_counter() - t0, prompt=name)
            results.append(r)
            await bounded(
                direct_turn(client, cfg.vllm_url or "", model, messages, max_tokens, r),
                r,
                cfg.deadline,
                cfg.request_timeout,
            )
            log(cfg, f"[{label}] shopper {r.shopper} turn {r.turn} ({name} prompt): {_fmt_turn(r)}")

    await asyncio.gather(*(shopper(items) for items in plans.values()))
    return sorted(results, key=lambda r: (r.shopper, r.turn)), time.perf_counter() - t0


# -- statistics -----------------------------------------------------------------------------------


def dist(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": sum(values) / len(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def side_stats(results: Sequence[TurnResult], wall_s: float) -> dict[str, Any]:
    """Distributions over the turns that ran (cut ones left out); latencies wherever they were measured."""
    ran = [r for r in results if not r.cut]
    kinds: Counter[str] = Counter()
    for r in ran:
        if r.error:
            kinds[re.sub(r"\d+(\.\d+)? s$", "N s", r.error.split(":")[0])] += 1
        for e in r.error_events:
            kinds["error event " + e.split(":")[0]] += 1
        if r.error is None and not r.error_events and r.status != "completed":
            kinds[f"done {r.status}"] += 1
    rates = [r.rates() for r in ran]
    pieces = sum(r.pieces for r in ran)
    return {
        "turns": len(ran),
        "cut": len(results) - len(ran),
        "errors": sum(r.failed for r in ran),
        "error_kinds": dict(kinds),
        "products_s": dist([r.products_s for r in ran if r.products_s is not None]),
        "first_token_s": dist([r.first_token_s for r in ran if r.first_token_s is not None]),
        "duration_s": dist([r.duration_s for r in ran if r.duration_s is not None and not r.failed]),
        "pieces_per_s": dist([p for p, _ in rates if p is not None]),
        "words_per_s": dist([w for _, w in rates if w is not None]),
        "pieces_per_turn": pieces / len(ran) if ran else float("nan"),
        "wall_s": wall_s,
        "pieces_per_s_total": pieces / wall_s if wall_s > 0 else float("nan"),
    }


def word_overlap(service_text: str, direct_text: str) -> float | None:
    """Share of the service answer's words found in the direct answer: both sides saw the same prompt when
    this is near 1 (temperature 0; the service may cut or repair a sentence, never add model text)."""
    said = [w.lower().strip(".,!?;:\"'()") for w in WORD.findall(service_text)]
    said = [w for w in said if w]
    if not said:
        return None
    direct = {w.lower().strip(".,!?;:\"'()") for w in WORD.findall(direct_text)}
    return sum(w in direct for w in said) / len(said)


def overhead(service: Sequence[TurnResult], direct: Sequence[TurnResult]) -> dict[str, Any]:
    """Service / direct over the turns both sides answered (same shopper, same turn)."""
    by_key = {(r.shopper, r.turn): r for r in service}
    pairs = [
        (by_key[(d.shopper, d.turn)], d)
        for d in direct
        if not d.cut and not d.failed and d.first_token_s is not None and (d.shopper, d.turn) in by_key
    ]
    s_ft = [s.first_token_s for s, _ in pairs if s.first_token_s is not None]
    d_ft = [d.first_token_s for _, d in pairs if d.first_token_s is not None]
    s_end = [s.duration_s for s, _ in pairs if s.duration_s is not None]
    d_end = [d.duration_s for _, d in pairs if d.duration_s is not None]

    overlaps = [o for s, d in pairs if (o := word_overlap(s.text, d.text)) is not None]

    def ratio(a: Sequence[float], b: Sequence[float], stat: str) -> float:
        da, db = dist(a), dist(b)
        return da[stat] / db[stat] if db["n"] and da["n"] and db[stat] > 0 else float("nan")

    return {
        "paired_turns": len(pairs),
        "service_first_token_p50_s": percentile(s_ft, 50),
        "direct_first_token_p50_s": percentile(d_ft, 50),
        "first_token_p50_ratio": ratio(s_ft, d_ft, "p50"),
        "first_token_mean_ratio": ratio(s_ft, d_ft, "mean"),
        "duration_p50_ratio": ratio(s_end, d_end, "p50"),
        "answer_word_overlap_mean": sum(overlaps) / len(overlaps) if overlaps else float("nan"),
    }


# -- the run --------------------------------------------------------------------------------------


async def wait_ready(client: httpx.AsyncClient, base_url: str, wait_s: float) -> dict[str, Any]:
    """GET /readyz until 200 (or the wait is over: raises RuntimeError with the last answer)."""
    end = time.monotonic() + wait_s
    last = "no answer"
    while True:
        try:
            resp = await client.get(f"{base_url}/readyz", timeout=5.0)
            if resp.status_code == 200:
                body: dict[str, Any] = resp.json()
                return body
            last = f"HTTP {resp.status_code}: {_short(resp.text)}"
        except httpx.HTTPError as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= end:
            raise RuntimeError(f"service at {base_url} not ready after {wait_s:g} s ({last})")
        await asyncio.sleep(2.0)


async def served_model(client: httpx.AsyncClient, vllm_url: str) -> str:
    resp = await client.get(f"{vllm_url}/models", timeout=10.0)
    resp.raise_for_status()
    data = resp.json().get("data") or []
    if not data:
        raise RuntimeError(f"{vllm_url}/models lists no model")
    return str(data[0]["id"])


async def bench(cfg: Config, wait_ready_s: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4 * max(cfg.levels) + 8, max_keepalive_connections=2 * max(cfg.levels) + 4)
    timeout = httpx.Timeout(cfg.request_timeout, connect=10.0)
    out: dict[str, Any] = {"levels": [], "notes": []}
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        out["readyz"] = await wait_ready(client, cfg.base_url, wait_ready_s)
        model = None
        if cfg.vllm_url:
            try:
                model = cfg.vllm_model or await served_model(client, cfg.vllm_url)
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as e:
                out["notes"].append(f"direct vLLM measurement skipped: {cfg.vllm_url}: {type(e).__name__}: {e}")
                log(cfg, out["notes"][-1])
        else:
            out["notes"].append("direct vLLM measurement skipped: no --vllm-url")
        out["vllm"] = {"url": cfg.vllm_url if model else None, "model": model}
        if cfg.warmup:
            n = min(max(cfg.levels), len(SCRIPTS))
            log(cfg, f"warm-up: {n} shoppers x {cfg.turns} turns (not measured)")
            warm, wall = await run_service(client, cfg, n, "warm-up")
            out["warmup"] = {"turns": len(warm), "errors": sum(r.failed for r in warm), "wall_s": wall}
        else:
            out["notes"].append("no warm-up: the direct side replays prompts already in vLLM's prefix cache")
        for n in cfg.levels:
            if time.monotonic() >= cfg.deadline:
                out["notes"].append(f"concurrency {n} not run: --max-seconds reached")
                log(cfg, out["notes"][-1])
                continue
            load_before = os.getloadavg()[0]
            service, s_wall = await run_service(client, cfg, n, f"c={n} service")
            level: dict[str, Any] = {
                "concurrency": n,
                "loadavg_1m_before": load_before,
                "service": side_stats(service, s_wall),
                "service_turns": [r.to_json() for r in service],
            }
            if model:
                direct, d_wall = await run_direct(client, cfg, model, service, f"c={n} vLLM")
                level["direct"] = side_stats(direct, d_wall)
                level["direct_turns"] = [r.to_json() for r in direct]
                level["overhead"] = overhead(service, direct)
            out["levels"].append(level)
    return out


# -- reporting ------------------------------------------------------------------------------------


def _level(result: dict[str, Any], n: int) -> dict[str, Any] | None:
    return next((lv for lv in result["levels"] if lv["concurrency"] == n), None)


def figures(result: dict[str, Any]) -> dict[str, float | None]:
    """Every judged figure by name ("products_p95_ms@4", "overhead@1", ...)."""

    def num(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    out: dict[str, float | None] = {}
    for lv in result["levels"]:
        n = lv["concurrency"]
        p95 = num(lv["service"]["products_s"]["p95"])
        out[f"products_p95_ms@{n}"] = None if p95 is None else p95 * 1000
        if n in (1, 8):
            out[f"first_token_p95_s@{n}"] = num(lv["service"]["first_token_s"]["p95"])
        out[f"overhead@{n}"] = num(lv["overhead"]["first_token_p50_ratio"]) if "overhead" in lv else None
    return out


def target_for(name: str) -> tuple[str, float, str]:
    """The target of a figure: its own entry, or its family's when judged at every level."""
    return TARGETS[name] if name in TARGETS else TARGETS[name.split("@")[0]]


def judge(name: str, value: float | None) -> bool | None:
    if value is None:
        return None
    op, threshold, _ = target_for(name)
    return value >= threshold if op == ">=" else value <= threshold


def _cell(d: dict[str, Any], scale: float = 1.0, spec: str = ".2f") -> str:
    if not d["n"]:
        return "-"
    return f"{d['p50'] * scale:{spec}} / {d['p95'] * scale:{spec}}"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for lv in result["levels"]:
        n = lv["concurrency"]
        sv = lv["service"]
        over = lv.get("overhead")
        ratio = (
            "-" if not over or math.isnan(over["first_token_p50_ratio"]) else f"{over['first_token_p50_ratio']:.2f}x"
        )
        words = sv["words_per_s"]
        rows.append(
            [
                str(n),
                "service",
                f"{sv['turns']}",
                f"{sv['errors']}",
                _cell(sv["products_s"], 1000, ".0f"),
                _cell(sv["first_token_s"]),
                _cell(sv["duration_s"]),
                f"{words['p50']:.1f} words/s" if words["n"] else "-",
                ratio,
            ]
        )
        if "direct" in lv:
            dv = lv["direct"]
            rate = dv["pieces_per_s"]
            rows.append(
                [
                    str(n),
                    "vLLM direct",
                    f"{dv['turns']}",
                    f"{dv['errors']}",
                    "-",
                    _cell(dv["first_token_s"]),
                    _cell(dv["duration_s"]),
                    (f"{rate['p50']:.1f} chunks/s, {dv['words_per_s']['p50']:.1f} words/s" if rate["n"] else "-"),
                    "",
                ]
            )
    return rows


HEADER = [
    "shoppers",
    "side",
    "turns",
    "errors",
    "products p50 / p95 (ms)",
    "first token p50 / p95 (s)",
    "turn p50 / p95 (s)",
    "stream rate p50",
    "overhead (first token p50)",
]


def print_report(result: dict[str, Any]) -> None:
    rows = table_rows(result)
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(HEADER))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print()
    for name, t in result["targets"].items():
        mark = "-" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"
        value = "n/a" if t["value"] is None else f"{t['value']:.2f} {t['unit']}"
        limit = f"{t['op']} {t['threshold']:g} {t['unit']}"
        print(f"target {name:<22} {value:>12}  {limit:<11} {mark}")
    for lv in result["levels"]:
        kinds = {
            **lv["service"]["error_kinds"],
            **{f"vLLM {k}": v for k, v in lv.get("direct", {}).get("error_kinds", {}).items()},
        }
        if kinds:
            print(f"errors at {lv['concurrency']} shoppers: " + ", ".join(f"{k} x{v}" for k, v in kinds.items()))
    if result["levels"]:
        print(
            "units: service stream rate = answer words/s after the first token event (its token events are text "
            "pieces the grounding filter releases, "
            + ", ".join(f"{lv['service']['pieces_per_turn']:.1f}" for lv in result["levels"])
            + " per turn); vLLM = streamed chunks/s (about model tokens/s) and words/s"
        )
    checks = [(lv["concurrency"], lv["overhead"]) for lv in result["levels"] if "overhead" in lv]
    if checks:
        print(
            "same-prompt check (share of the service answer's words in the direct answer, mean): "
            + ", ".join(f"{o['answer_word_overlap_mean']:.2f} @{n}" for n, o in checks)
        )
    for note in result["notes"]:
        print(f"note: {note}")


def summary_line(result: dict[str, Any]) -> str:
    f = figures(result)

    def show(name: str, spec: str, suffix: str = "") -> str:
        v = f.get(name)
        return f"{name}={'n/a' if v is None else format(v, spec) + suffix}"

    errors = sum(lv["service"]["errors"] + lv.get("direct", {}).get("errors", 0) for lv in result["levels"])
    return " ".join(
        [
            show("products_p95_ms@1", ".1f"),
            show("first_token_p95_s@1", ".2f"),
            show("first_token_p95_s@8", ".2f"),
            show("overhead@1", ".2f", "x"),
            f"errors={errors}",
        ]
    )


def write_plot(result: dict[str, Any], path: Path) -> str | None:
    """Latency, overhead and rate against concurrency; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    levels = result["levels"]
    if not levels:
        return None
    xs = [lv["concurrency"] for lv in levels]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (ax_p, ax_ft), (ax_o, ax_r) = axes

    def series(side: str, key: str, stat: str, scale: float = 1.0) -> list[float]:
        return [lv[side][key][stat] * scale if side in lv and lv[side][key]["n"] else math.nan for lv in levels]

    for stat, style in (("p50", "-o"), ("p95", "--o")):
        ax_p.plot(xs, series("service", "products_s", stat, 1000), style, label=f"service {stat}")
        ax_ft.plot(xs, series("service", "first_token_s", stat), style, color="C0", label=f"service {stat}")
        ax_ft.plot(xs, series("direct", "first_token_s", stat), style, color="C1", label=f"vLLM direct {stat}")
    ax_p.axhline(TARGETS["products_p95_ms"][1], color="grey", linestyle=":", label="p95 target")
    ax_p.set_title("time to the products event")
    ax_p.set_ylabel("ms")
    judged = [(n, TARGETS[f"first_token_p95_s@{n}"][1]) for n in xs if f"first_token_p95_s@{n}" in TARGETS]
    if judged:
        ax_ft.scatter(*zip(*judged, strict=True), marker="_", s=400, color="grey", label="p95 targets", zorder=3)
    ax_ft.set_title("time to the first token")
    ax_ft.set_ylabel("s")
    ratios = [lv["overhead"]["first_token_p50_ratio"] if "overhead" in lv else math.nan for lv in levels]
    ax_o.plot(xs, ratios, "-o", color="C2", label="service / direct, first token p50")
    ax_o.axhline(TARGETS["overhead"][1], color="grey", linestyle=":", label="target")
    ax_o.set_title("service overhead")
    ax_o.set_ylabel("ratio")
    ax_r.plot(xs, series("service", "words_per_s", "p50"), "-o", label="service words/s")
    ax_r.plot(xs, series("direct", "words_per_s", "p50"), "-o", label="vLLM direct words/s")
    ax_r.plot(xs, series("direct", "pieces_per_s", "p50"), "--o", label="vLLM direct chunks/s")
    ax_r.set_title("per-stream rate after the first token (p50)")
    for ax in axes.flat:
        ax.set_xlabel("concurrent shoppers")
        ax.set_xticks(xs)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _finite(value: Any) -> Any:
    """NaN/inf -> None, so the report is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- main -----------------------------------------------------------------------------------------


def discover_vllm_url(data_dir: Path) -> str | None:
    """The newest "Starting vLLM server on http://…" in the embedded server's log, as an OpenAI base URL."""
    logfile = data_dir / "vllm.log"
    if not logfile.is_file():
        return None
    found = re.findall(r"Starting vLLM (?:API )?server on (http://\S+)", logfile.read_text(errors="replace"))
    return openai_base(found[-1]) if found else None


def openai_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not levels or levels[0] < 1 or levels[-1] > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"concurrency levels must be between 1 and {MAX_CONCURRENCY}")
    return levels


def load_catalog_by_id(path: Path, mapping: str) -> dict[str, Product]:
    if not path.is_file():
        return {}
    return {p.id: p for p in load_catalog(path, mapping).products}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_chat", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"the running service (default {DEFAULT_BASE_URL})")
    ap.add_argument("--api-key", default=DEFAULT_KEY, help="an agent key: shoppers are named by shopper_id")
    ap.add_argument(
        "--vllm-url",
        default=os.environ.get("SHOP_LLM_BASE_URL") or "auto",
        help="OpenAI-compatible base URL of the service's model server (…/v1); 'auto' reads the newest address "
        "in <data dir>/vllm.log; 'none' skips the direct measurement (default $SHOP_LLM_BASE_URL or auto)",
    )
    ap.add_argument("--vllm-model", default=None, help="served model name (default: the first of GET /v1/models)")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SHOP_DATA_DIR", ".cache/shop")))
    ap.add_argument("--concurrency", type=parse_levels, default=[1, 4, 8], help="levels, e.g. 1,4,8")
    ap.add_argument("--turns", type=int, default=3, help="turns per shopper and level")
    ap.add_argument("--max-seconds", type=float, default=1200.0, help="global limit; later turns are not started")
    ap.add_argument("--request-timeout", type=float, default=120.0, help="one turn longer than this is an error")
    ap.add_argument("--wait-ready", type=float, default=60.0, help="seconds to wait for GET /readyz")
    ap.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up pass")
    settings_defaults = AssistantSettings.model_fields
    ap.add_argument(
        "--catalog",
        type=Path,
        default=Path(os.environ.get("SHOP_CATALOG_PATH") or settings_defaults["catalog_path"].default),
    )
    ap.add_argument(
        "--catalog-format", default=os.environ.get("SHOP_CATALOG_FORMAT") or settings_defaults["catalog_format"].default
    )
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the full report here")
    ap.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --json; needs matplotlib)")
    ap.add_argument("--quiet", action="store_true", help="no per-turn progress on stderr")
    args = ap.parse_args(argv)

    if not 1 <= args.turns <= MAX_TURNS:
        ap.error(f"--turns must be between 1 and {MAX_TURNS}")
    if args.max_seconds <= 0 or args.request_timeout <= 0:
        ap.error("--max-seconds and --request-timeout must be positive")
    vllm_url: str | None = None
    if args.vllm_url == "auto":
        vllm_url = discover_vllm_url(args.data_dir)
    elif args.vllm_url != "none":
        vllm_url = openai_base(args.vllm_url)

    started = time.monotonic()
    cfg = Config(
        base_url=args.base_url.rstrip("/"),
        api_key=args.api_key,
        vllm_url=vllm_url,
        vllm_model=args.vllm_model,
        levels=args.concurrency,
        turns=args.turns,
        request_timeout=args.request_timeout,
        deadline=started + args.max_seconds,
        warmup=not args.no_warmup,
        prompts=PromptRegistry.load(),
        catalog=load_catalog_by_id(args.catalog, args.catalog_format),
        quiet=args.quiet,
    )
    load_start = os.getloadavg()
    try:
        result = asyncio.run(bench(cfg, args.wait_ready))
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not cfg.catalog:
        result["notes"].append(f"catalog {args.catalog} not found: direct prompts use the cards' fields only")
    result["config"] = {
        "base_url": cfg.base_url,
        "concurrency": cfg.levels,
        "turns": cfg.turns,
        "max_seconds": args.max_seconds,
        "request_timeout_s": cfg.request_timeout,
        "warmup": cfg.warmup,
        "scripts": [list(s) for s in SCRIPTS],
        "catalog": str(args.catalog),
        "elapsed_s": time.monotonic() - started,
    }
    result["environment"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    result["targets"] = {
        name: {
            **dict(zip(("op", "threshold", "unit"), target_for(name), strict=True)),
            "value": value,
            "pass": judge(name, value),
        }
        for name, value in figures(result).items()
    }
    plot = args.plot or (args.json.with_suffix(".png") if args.json else DEFAULT_JSON.with_suffix(".png"))
    result["plot"] = write_plot(result, plot)
    result["summary"] = summary_line(result)

    print()
    print_report(result)
    print(f"plot: {result['plot']}" if result["plot"] else "plot: skipped (matplotlib not installed or no level ran)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(result), indent=2))
        print(f"report: {args.json}")
    print(result["summary"])
    ran_all = len(result["levels"]) == len(cfg.levels)
    return 0 if ran_all and all(lv["service"]["turns"] > lv["service"]["errors"] for lv in result["levels"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
