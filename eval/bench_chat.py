"""Chat latency under load: time to products and to the first token, rates and errors, against vLLM direct.

python -m eval.bench_chat [--base-url URL] [--vllm-url URL|auto|none] [--vllm-model NAME] [--concurrency 1,4,8]
                          [--turns 3] [--rounds 1] [--max-seconds 1200] [--json OUT] [--plot PNG] [--no-warmup]

Benchmarks a running service; starts no server. Per concurrency level N (levels run one after another),
N shoppers chat at once, each in its own session (agent key, shopper_id "1".."N") for a fixed number of
turns from a fixed script: a search, the follow-up "tell me about the second one", another search.
Times are taken from sending `POST /v1/chat`: to the `products` event, to the first `token` event, to the
end of the stream. A turn is an error when the HTTP status is not 200, the stream breaks or times out,
it carries an `error` event, or it ends with a `done` status other than completed.

The same prompt sent straight to vLLM: the service keeps every answer-model call in the turn's trace, with
the exact messages it sent. After a level's service turns, the bench reads each session (GET
/v1/sessions/{id}) and replays every model-phrased turn's messages against the model server at the same
concurrency (one client per shopper, its turns in order), with the same max_tokens and temperature 0.
Overhead = service first-token p50 / direct first-token p50 over those paired turns at that concurrency.
The service's time also holds what it does besides the answer (routing, search, storing events, the
grounding filter holding text back) — which is the point. The trace's timings split it: time before the
model request, the model's own first text, and the filters' hold (`breakdown` in the JSON).

`--rounds R` repeats each level R times with new sessions, service and direct alternating, and pools the
turns: at 8 shoppers x 3 turns the p95 of one round is its second-slowest turn, and varied 2-5x between
runs on a shared 2-core machine.

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
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eval.bench_chat_report import (
    figures,
    finite,
    judge,
    print_report,
    summary_line,
    target_for,
    write_plot,
)
from eval.chat_client import (
    WORD,
    TurnResult,
    attach_model_calls,
    bounded,
    direct_turn,
    service_turn,
    short,
)
from eval.metrics import percentile

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_JSON = Path("eval/out/bench_chat.json")
DEFAULT_KEY = "demo-agent-key"
MAX_CONCURRENCY = 64
MAX_TURNS = 20
MAX_ROUNDS = 20

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


# -- phases ---------------------------------------------------------------------------------------


@dataclass
class Config:
    base_url: str
    api_key: str
    vllm_url: str | None
    vllm_model: str | None
    levels: list[int]
    turns: int
    rounds: int
    request_timeout: float
    deadline: float  # time.monotonic()
    warmup: bool
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


def breakdown(service: Sequence[TurnResult]) -> dict[str, Any]:
    """Where a service turn's first-token time went, in ms, from the timings its trace recorded: before the
    model request (routing, search, storing events), the model's first text, the filters' hold."""
    before, model, hold = [], [], []
    for r in service:
        call = r.model_call or {}
        text_ms, piece_ms = call.get("first_text_ms"), call.get("first_piece_ms")
        if r.failed or r.first_token_s is None or text_ms is None or piece_ms is None:
            continue
        before.append(r.first_token_s * 1000 - piece_ms)
        model.append(text_ms)
        hold.append(piece_ms - text_ms)
    return {"before_model_ms": dist(before), "model_first_text_ms": dist(model), "filter_hold_ms": dist(hold)}


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
    """Service / direct over the turns both sides answered (same round, shopper and turn)."""
    by_key = {(r.round, r.shopper, r.turn): r for r in service}
    pairs = [
        (by_key[(d.round, d.shopper, d.turn)], d)
        for d in direct
        if not d.cut and not d.failed and d.first_token_s is not None and (d.round, d.shopper, d.turn) in by_key
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
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds per level, each with new sessions, service and direct alternating; pooled (p95 of 8 shoppers "
        "x 3 turns is one of 24 turns, the second slowest: more rounds steady it)",
    )
    ap.add_argument("--max-seconds", type=float, default=1200.0, help="global limit; later turns are not started")
    ap.add_argument("--request-timeout", type=float, default=120.0, help="one turn longer than this is an error")
    ap.add_argument("--wait-ready", type=float, default=60.0, help="seconds to wait for GET /readyz")
    ap.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up pass")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the full report here")
    ap.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --json; needs matplotlib)")
    ap.add_argument("--quiet", action="store_true", help="no per-turn progress on stderr")
    args = ap.parse_args(argv)

    if not 1 <= args.turns <= MAX_TURNS:
        ap.error(f"--turns must be between 1 and {MAX_TURNS}")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        ap.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
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
        rounds=args.rounds,
        request_timeout=args.request_timeout,
        deadline=started + args.max_seconds,
        warmup=not args.no_warmup,
        quiet=args.quiet,
    )
    load_start = os.getloadavg()
    try:
        result = asyncio.run(bench(cfg, args.wait_ready))
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["config"] = {
        "base_url": cfg.base_url,
        "concurrency": cfg.levels,
        "turns": cfg.turns,
        "rounds": cfg.rounds,
        "max_seconds": args.max_seconds,
        "request_timeout_s": cfg.request_timeout,
        "warmup": cfg.warmup,
        "scripts": [list(s) for s in SCRIPTS],
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
        args.json.write_text(json.dumps(finite(result), indent=2))
        print(f"report: {args.json}")
    print(result["summary"])
    ran_all = len(result["levels"]) == len(cfg.levels)
    return 0 if ran_all and all(lv["service"]["turns"] > lv["service"]["errors"] for lv in result["levels"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
