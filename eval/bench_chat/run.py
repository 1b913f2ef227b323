"""The whole run: wait for the service, warm up, then each concurrency level's rounds, service then direct."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from eval.bench_chat.client import short
from eval.bench_chat.config import Config, discover_vllm_url, log
from eval.bench_chat.shoppers import SCRIPTS, run_direct, run_service
from eval.bench_chat.stats import breakdown, overhead, side_stats


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
            last = f"HTTP {resp.status_code}: {short(resp.text)}"
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
        if cfg.vllm_url is None and cfg.vllm_log is not None:
            # Read only now: a service that was still starting had not written its model server's address yet.
            cfg.vllm_url = discover_vllm_url(cfg.vllm_log)
        model = None
        if cfg.vllm_url:
            try:
                model = cfg.vllm_model or await served_model(client, cfg.vllm_url)
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as e:
                out["notes"].append(f"direct vLLM measurement skipped: {cfg.vllm_url}: {type(e).__name__}: {e}")
                log(cfg, out["notes"][-1])
        else:
            where = f"no address in {cfg.vllm_log}" if cfg.vllm_log is not None else "--vllm-url none"
            out["notes"].append(f"direct vLLM measurement skipped: {where}")
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
            # Rounds alternate service and direct, so both sides meet the same machine; samples are pooled.
            service, direct, s_wall, d_wall = [], [], 0.0, 0.0
            for k in range(1, cfg.rounds + 1):
                if k > 1 and time.monotonic() >= cfg.deadline:
                    out["notes"].append(f"concurrency {n}: {k - 1} of {cfg.rounds} rounds (--max-seconds reached)")
                    break
                tag = f"c={n}" + (f" round {k}" if cfg.rounds > 1 else "")
                got, wall = await run_service(client, cfg, n, f"{tag} service", k)
                service += got
                s_wall += wall
                if model:
                    got, wall = await run_direct(client, cfg, model, got, f"{tag} vLLM")
                    direct += got
                    d_wall += wall
            level: dict[str, Any] = {
                "concurrency": n,
                "rounds": cfg.rounds,
                "loadavg_1m_before": load_before,
                "service": side_stats(service, s_wall),
                "breakdown": breakdown(service),
                "service_turns": [r.to_json() for r in service],
            }
            if model:
                level["direct"] = side_stats(direct, d_wall)
                level["direct_turns"] = [r.to_json() for r in direct]
                level["overhead"] = overhead(service, direct)
            out["levels"].append(level)
    return out
