"""The simulated shoppers: their scripts, and their turns against the service and replayed straight to vLLM."""

from __future__ import annotations

import asyncio
import time

import httpx

from eval.bench_chat.client import TurnResult, attach_model_calls, bounded, direct_turn, service_turn
from eval.bench_chat.config import Config, log

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


async def run_service(
    client: httpx.AsyncClient, cfg: Config, n: int, label: str, round_no: int = 1
) -> tuple[list[TurnResult], float]:
    """N shoppers at once, `turns` turns each in one (new) session; (results, wall seconds)."""
    results: list[TurnResult] = []
    t0 = time.perf_counter()

    async def shopper(i: int) -> None:
        script = SCRIPTS[i % len(SCRIPTS)]
        session: str | None = None
        for j in range(cfg.turns):
            if time.monotonic() >= cfg.deadline:
                return
            r = TurnResult(
                "service", i + 1, j + 1, script[j % len(script)], round=round_no, started_s=time.perf_counter() - t0
            )
            r.session_id = session
            results.append(r)
            await bounded(
                service_turn(client, cfg.base_url, cfg.api_key, str(i + 1), r), r, cfg.deadline, cfg.request_timeout
            )
            session = r.session_id
            log(cfg, f"[{label}] shopper {i + 1} turn {j + 1} {r.message!r}: {_fmt_turn(r)}")

    await asyncio.gather(*(shopper(i) for i in range(n)))
    wall = time.perf_counter() - t0
    await attach_model_calls(client, cfg.base_url, cfg.api_key, results)
    return sorted(results, key=lambda r: (r.shopper, r.turn)), wall


async def run_direct(
    client: httpx.AsyncClient, cfg: Config, model: str, service: list[TurnResult], label: str
) -> tuple[list[TurnResult], float]:
    """Each shopper's model-phrased service turns (the messages their traces recorded) replayed straight to
    vLLM, shoppers at once. Failed service turns are not replayed."""
    plans: dict[int, list[TurnResult]] = {}
    for s in service:
        if s.model_call is not None and not s.failed:
            plans.setdefault(s.shopper, []).append(s)
    results: list[TurnResult] = []
    t0 = time.perf_counter()

    async def shopper(items: list[TurnResult]) -> None:
        for s in items:
            if time.monotonic() >= cfg.deadline:
                return
            call = s.model_call or {}
            r = TurnResult(
                "direct", s.shopper, s.turn, s.message, s.round, started_s=time.perf_counter() - t0, prompt=s.prompt
            )
            results.append(r)
            await bounded(
                direct_turn(client, cfg.vllm_url or "", model, call["messages"], int(call["max_tokens"]), r),
                r,
                cfg.deadline,
                cfg.request_timeout,
            )
            log(cfg, f"[{label}] shopper {r.shopper} turn {r.turn} ({r.prompt} prompt): {_fmt_turn(r)}")

    await asyncio.gather(*(shopper(items) for items in plans.values()))
    return sorted(results, key=lambda r: (r.shopper, r.turn)), time.perf_counter() - t0
