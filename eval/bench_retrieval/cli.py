"""Retrieval performance: cold indexing, unchanged re-index, search latency at catalog size and at scale.

python -m eval.bench_retrieval [--products P] [--queries Q] [--scale N] [--searches N] [--json OUT] [--plot PNG]
                               [--skip-scale] [--fake-encoder]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eval.bench_retrieval.measure import WARMUP_SEARCHES, K, memory_snapshot
from eval.bench_retrieval.queries import build_query_list
from eval.bench_retrieval.report import (
    TARGET_SCALE,
    TARGETS,
    environment,
    finite,
    judge,
    print_table,
    summary_line,
    write_plot,
)
from eval.bench_retrieval.stages import bench_base, bench_scale
from eval.metrics import read_queries
from retrieval.catalog import load_catalog
from retrieval.encoders import HashingEncoder

DEFAULT_PRODUCTS = Path("../shared/data/esci-subset/products.jsonl")
DEFAULT_QUERIES = Path("../shared/data/esci-subset/queries.tsv")
DEFAULT_JSON = Path("eval/out/bench_retrieval.json")
DEFAULT_PLOT = Path("eval/out/bench_retrieval.png")
MAX_SEARCHES = 100_000
MAX_SCALE = 2_000_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_retrieval", description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=Path, default=DEFAULT_PRODUCTS)
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES, help="TSV with query_id and query columns")
    ap.add_argument("--mapping", default="esci", help="catalog field mapping (default esci)")
    ap.add_argument("--scale", type=int, default=100_000, help="catalog size of the scaled stage")
    ap.add_argument("--searches", type=int, default=300, help="timed searches per stage")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="write the full report here")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="latency plot (PNG; needs matplotlib)")
    ap.add_argument("--skip-scale", action="store_true", help="skip the scaled-catalog stage")
    ap.add_argument("--fake-encoder", action="store_true", help="HashingEncoder instead of MiniLM (smoke tests)")
    args = ap.parse_args(argv)

    for p in (args.products, args.queries):
        if not p.is_file():
            ap.error(f"file not found: {p}")
    if not 1 <= args.searches <= MAX_SEARCHES:
        ap.error(f"--searches must be between 1 and {MAX_SEARCHES}")
    if not 1 <= args.scale <= MAX_SCALE:
        ap.error(f"--scale must be between 1 and {MAX_SCALE}")

    memory = [memory_snapshot("start")]
    loaded = load_catalog(args.products, args.mapping)
    for err in loaded.errors[:20]:
        print(f"skipped {err}", file=sys.stderr)
    products = loaded.products
    if not products:
        ap.error(f"no products loaded from {args.products}")
    query_list, distinct = build_query_list(list(read_queries(args.queries).values()), args.searches)
    warmup = [" ".join(p.title.split()[:6]) for p in products[:WARMUP_SEARCHES]]
    memory.append(memory_snapshot("catalog loaded"))

    checks: dict[str, bool] = {}
    encoder = HashingEncoder() if args.fake_encoder else None
    base, encoder_used, vectors = bench_base(
        products, query_list, warmup, encoder, memory, checks, keep_vectors=not args.skip_scale
    )
    if not args.skip_scale and not checks.get("base_vectors_cached"):
        raise RuntimeError("the embedding cache lost some real product vectors; cannot build the scaled catalog")
    if args.skip_scale:
        scale_out: dict[str, Any] = {"skipped": True}
    else:
        scale_out = bench_scale(products, vectors, args.scale, query_list, warmup, encoder_used, memory, checks)
    del vectors

    result: dict[str, Any] = {
        "catalog": {"path": str(args.products), "products": len(products), "skipped_rows": loaded.skipped},
        "queries": {
            "path": str(args.queries),
            "searches": len(query_list),
            "distinct_real": distinct,
            "suffixed": len(query_list) - distinct,
            "warmup": len(warmup),
            "k": K,
            "mode": "full",
        },
        "scale": args.scale,
        "components_load_s": base["components_load_s"],
        "index": base["index"],
        "reindex": base["reindex"],
        "search_base": base["search"],
        "search_scale": scale_out,
        "memory": memory,
        "peak_rss_mb": max(m["peak_rss_mb"] for m in memory),
        "checks": checks,
        "environment": environment(encoder_used),
    }
    figures = {
        "index_pps": result["index"]["products_per_s"],
        "reindex_pps": result["reindex"]["products_per_s"],
        "p99_ms_base": result["search_base"]["p99_ms"],
        "p99_ms_scale": None if args.skip_scale else scale_out["p99_ms"],
    }
    result["targets"] = {
        name: {
            "op": op,
            "threshold": threshold,
            "unit": unit,
            "value": figures[name],
            "pass": judge(name, figures[name]),
        }
        for name, (op, threshold, unit) in TARGETS.items()
    }
    result["targets"]["p99_ms_scale"]["stated_for"] = TARGET_SCALE
    result["plot"] = write_plot(result, args.plot) if args.plot else None
    result["summary"] = summary_line(result)

    print()
    print_table(result)
    if result["plot"]:
        print(f"plot: {result['plot']}")
    elif args.plot:
        print("plot: skipped (matplotlib not installed)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(finite(result), indent=2))
        print(f"report: {args.json}")
    print(result["summary"])
    return 0 if all(checks.values()) else 1
