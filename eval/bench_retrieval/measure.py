"""What is timed and counted: memory by stage, search latency and its steps, embedding cache rows."""

from __future__ import annotations

import resource
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.metrics import percentile
from retrieval.search import SearchEngine

K = 10
WARMUP_SEARCHES = 5
BREAKDOWN_QUERIES = 50  # queries timed component by component (encode / BM25 / ANN / fetch)


def memory_snapshot(stage: str) -> dict[str, Any]:
    """RSS high-water mark of this process (getrusage) and current RSS (psutil, when installed)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB on Linux
    try:
        import psutil

        rss_mb: float | None = psutil.Process().memory_info().rss / 2**20
    except ImportError:  # psutil is a dev extra
        rss_mb = None
    return {"stage": stage, "peak_rss_mb": round(peak_mb, 1), "rss_mb": None if rss_mb is None else round(rss_mb, 1)}


def distribution(values_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values_ms),
        "p50_ms": percentile(values_ms, 50),
        "p90_ms": percentile(values_ms, 90),
        "p99_ms": percentile(values_ms, 99),
        "mean_ms": float(np.mean(values_ms)) if values_ms else float("nan"),
        "min_ms": float(min(values_ms)) if values_ms else float("nan"),
        "max_ms": float(max(values_ms)) if values_ms else float("nan"),
    }


def measure_search(
    engine: SearchEngine, queries: Sequence[str], warmup: Sequence[str], label: str, show: bool = True
) -> dict[str, Any]:
    """Latency of engine.search(q, k=10, mode="full") per query, after a few warm-up searches."""
    for q in warmup[:WARMUP_SEARCHES]:
        engine.search(q, k=K, mode="full")
    latencies: list[float] = []
    empty = 0
    for q in tqdm(queries, desc=f"searching ({label})", unit="query", disable=not show):
        started = time.perf_counter()
        results = engine.search(q, k=K, mode="full")
        latencies.append((time.perf_counter() - started) * 1000)
        empty += not results
    return {**distribution(latencies), "empty_results": empty, "latencies_ms": [round(v, 3) for v in latencies]}


def measure_breakdown(engine: SearchEngine, queries: Sequence[str]) -> dict[str, float]:
    """p50 of the main steps of a search, timed one by one over a bounded sample of queries."""
    steps: dict[str, list[float]] = {"encode": [], "bm25": [], "ann": [], "fetch": []}
    fetch: Callable[[list[str]], Any] | None = getattr(engine, "get_products", None) or getattr(
        engine.store, "get_products", None
    )
    for q in queries[:BREAKDOWN_QUERIES]:
        t0 = time.perf_counter()
        qvec = engine.encoder.embed_query(q)
        t1 = time.perf_counter()
        engine.lexical.scores(q)
        t2 = time.perf_counter()
        hits = engine.store.query_text(qvec, engine.pool)
        t3 = time.perf_counter()
        if fetch is not None:
            fetch([h.id for h in hits])
        t4 = time.perf_counter()
        for name, a, b in (("encode", t0, t1), ("bm25", t1, t2), ("ann", t2, t3), ("fetch", t3, t4)):
            steps[name].append((b - a) * 1000)
    return {f"{name}_p50_ms": percentile(v, 50) for name, v in steps.items() if name != "fetch" or fetch}


def cache_rows(path: Path) -> int:
    """Rows in an embedding cache file (0 when the file does not exist yet)."""
    if not path.is_file():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
        except sqlite3.OperationalError:  # table not created yet
            return 0
