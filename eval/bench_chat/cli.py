"""Chat latency under load: time to products and to the first token, rates and errors, against vLLM direct.

python -m eval.bench_chat [--base-url URL] [--vllm-url URL|auto|none] [--vllm-model NAME] [--concurrency 1,4,8]
                          [--turns 3] [--rounds 1] [--max-seconds 1200] [--json OUT] [--plot PNG] [--no-warmup]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

from eval.bench_chat.config import Config, openai_base
from eval.bench_chat.report import figures, finite, judge, print_report, summary_line, target_for, write_plot
from eval.bench_chat.run import bench
from eval.bench_chat.shoppers import SCRIPTS

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_JSON = Path("eval/out/bench_chat.json")
DEFAULT_KEY = "demo-agent-key"
MAX_CONCURRENCY = 64
MAX_TURNS = 20
MAX_ROUNDS = 20


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
    if args.vllm_url not in ("auto", "none"):
        vllm_url = openai_base(args.vllm_url)

    started = time.monotonic()
    cfg = Config(
        base_url=args.base_url.rstrip("/"),
        api_key=args.api_key,
        vllm_url=vllm_url,
        vllm_log=args.data_dir / "vllm.log" if args.vllm_url == "auto" else None,
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
