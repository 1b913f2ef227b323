"""Takeover delivery latency: agent message post → shopper's session stream, same replica and across replicas.

python -m eval.bench_takeover [--backends redis[,postgres]] [--messages 200] [--interval-ms 50] [--warmup 10]
                              [--max-seconds 300] [--json OUT] [--plot PNG]
                              [--redis-url URL] [--postgres-dsn DSN] [--seed-data-dir DIR]
                              [--replica-a URL --replica-b URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from eval.bench_takeover.measure import run_backend
from eval.bench_takeover.report import (
    TARGET_ACROSS_P95_MS,
    meets_target,
    print_table,
    summarize,
    summary_line,
    write_plot,
)
from eval.bench_takeover.services import replicas
from eval.local_servers import postgres_server, redis_server
from eval.stub_llm import StubLLM

BACKENDS = ("redis", "postgres")
DEFAULT_JSON = Path("eval/out/bench_takeover.json")
MAX_MESSAGES = 5000


def parse_backends(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if not names or bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"backends: a comma-separated subset of {', '.join(BACKENDS)}, got {text!r}")
    return names


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_takeover", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--backends", type=parse_backends, default=["redis"], help="redis, postgres or redis,postgres")
    ap.add_argument("--messages", type=int, default=200, help="measured agent messages per backend, half per path")
    ap.add_argument("--interval-ms", type=float, default=50.0, help="pause after each message has arrived")
    ap.add_argument("--warmup", type=int, default=10, help="unmeasured messages first")
    ap.add_argument("--wait-s", type=float, default=5.0, help="a message not on the stream by then is lost")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="per backend; later messages are not sent")
    ap.add_argument("--start-s", type=float, default=300.0, help="how long a replica may take to become ready")
    ap.add_argument("--redis-url", default=None, help="use this Redis instead of starting one")
    ap.add_argument("--postgres-dsn", default=None, help="use this PostgreSQL instead of starting one")
    ap.add_argument(
        "--seed-data-dir",
        type=Path,
        default=Path(os.environ.get("SHOP_DATA_DIR", ".cache/shop")),
        help="a data dir `serve` has built: each replica starts from a copy of its index and router",
    )
    ap.add_argument("--replica-a", default=None, help="a running replica (the shopper's); with --replica-b")
    ap.add_argument("--replica-b", default=None, help="a second running replica sharing A's session store")
    ap.add_argument("--label", default=None, help="backend name for --replica-a/-b (default: external)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the full report here")
    ap.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --json; needs matplotlib)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)

    if not 2 <= args.messages <= MAX_MESSAGES:
        ap.error(f"--messages must be between 2 and {MAX_MESSAGES}")
    if not 0 <= args.warmup <= 100 or args.interval_ms < 0 or args.wait_s <= 0 or args.max_seconds <= 0:
        ap.error("--warmup 0..100, --interval-ms >= 0, --wait-s and --max-seconds > 0")
    if (args.replica_a is None) != (args.replica_b is None):
        ap.error("--replica-a and --replica-b go together")

    started = time.monotonic()
    load_start = os.getloadavg()
    runs: dict[str, dict[str, Any]] = {}
    mode = "running replicas" if args.replica_a else "two `serve` processes (stub model server), started here"

    def measure(name: str, a: str, b: str) -> None:
        if not args.quiet:
            print(f"[{name}] measuring: stream on {a}, agent posts on {a} and {b}", file=sys.stderr)
        run = asyncio.run(
            run_backend(
                a.rstrip("/"),
                b.rstrip("/"),
                messages=args.messages,
                interval_s=args.interval_ms / 1000,
                warmup=args.warmup,
                wait_s=args.wait_s,
                deadline=time.monotonic() + args.max_seconds,
                label=name,
                quiet=args.quiet,
            )
        )
        runs[name] = {"replicas": [a, b], **run}

    try:
        if args.replica_a:
            measure(args.label or "external", args.replica_a, args.replica_b)
        else:
            with StubLLM() as stub:
                for name in args.backends:
                    with ExitStack() as stack:
                        given = args.redis_url if name == "redis" else args.postgres_dsn
                        url = given or stack.enter_context(redis_server() if name == "redis" else postgres_server())
                        t0 = time.monotonic()
                        if not args.quiet:
                            print(f"[{name}] starting two replicas over {url}", file=sys.stderr)
                        pair = stack.enter_context(
                            replicas(url, stub.base_url, args.seed_data_dir, start_s=args.start_s)
                        )
                        if not args.quiet:
                            pids = ", ".join(f"{r.name} pid {r.pid} at {r.base_url}" for r in pair)
                            print(f"[{name}] ready in {time.monotonic() - t0:.1f} s: {pids}", file=sys.stderr)
                        measure(name, pair[0].base_url, pair[1].base_url)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    stats = {name: summarize(run["samples"]) for name, run in runs.items()}
    latencies = {
        name: {
            path: [s.latency_ms for s in run["samples"] if s.path == path and s.latency_ms is not None]
            for path in ("same", "across")
        }
        for name, run in runs.items()
    }
    plot = args.plot or (args.json.with_suffix(".png") if args.json else DEFAULT_JSON.with_suffix(".png"))
    result: dict[str, Any] = {
        "mode": mode,
        "config": {
            "backends": list(runs),
            "messages": args.messages,
            "interval_ms": args.interval_ms,
            "warmup": args.warmup,
            "wait_s": args.wait_s,
            "max_seconds": args.max_seconds,
            "elapsed_s": time.monotonic() - started,
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        },
        "target": {"across_p95_ms": TARGET_ACROSS_P95_MS, **{n: meets_target(s) for n, s in stats.items()}},
        "backends": {
            name: {
                **stats[name],
                "replicas": run["replicas"],
                "session_id": run["session_id"],
                "stream_events": run["stream_events"],
                "stream_error": run["stream_error"],
                "samples": [
                    {"i": s.index, "path": s.path, "latency_ms": s.latency_ms, "status": s.status, "error": s.error}
                    for s in run["samples"]
                ],
            }
            for name, run in runs.items()
        },
        "plot": write_plot(latencies, plot),
        "summary": summary_line(stats),
    }

    print()
    print(f"replicas: {mode}")
    print_table(stats)
    load = result["environment"]
    print(f"load average (1 min) at start / end: {load['loadavg_start'][0]:.2f} / {load['loadavg_end'][0]:.2f}")
    print(f"plot: {result['plot']}" if result["plot"] else "plot: skipped (matplotlib not installed or no data)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(result), indent=2))
        print(f"report: {args.json}")
    print(result["summary"])
    delivered = all(s[p]["latency_ms"]["n"] > 0 for s in stats.values() for p in ("same", "across"))
    return 0 if runs and delivered and not any(s[p]["lost"] for s in stats.values() for p in ("same", "across")) else 1
