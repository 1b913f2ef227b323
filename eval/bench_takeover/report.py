"""Figures from the samples: p50/p95/max per path and backend, the target, the summary line and the plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import percentile

TARGET_ACROSS_P95_MS = 100.0
PATHS = ("same", "across")


def dist_ms(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else float("nan"),
    }


def summarize(samples: Sequence[Any]) -> dict[str, Any]:
    """Per path ("same", "across"): latency distribution of the delivered messages, how many were lost (posted
    but never seen on the stream) and how many posts failed; the POST round trip too."""
    out: dict[str, Any] = {}
    for path in PATHS:
        mine = [s for s in samples if s.path == path]
        posted = [s for s in mine if s.error is None]
        got = [s.latency_ms for s in posted if s.latency_ms is not None]
        out[path] = {
            "sent": len(mine),
            "post_errors": len(mine) - len(posted),
            "lost": len(posted) - len(got),
            "latency_ms": dist_ms(got),
            "post_ms": dist_ms([(s.posted - s.sent) * 1000 for s in posted if s.posted is not None]),
        }
    return out


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.1f}"


def summary_line(backends: dict[str, dict[str, Any]]) -> str:
    """`redis_same_p50_ms=… redis_same_p95_ms=… redis_across_p50_ms=… redis_across_p95_ms=… … lost=… errors=…`."""
    parts = []
    lost = errors = 0
    for name, stats in backends.items():
        for path in PATHS:
            d = stats[path]["latency_ms"]
            parts += [f"{name}_{path}_p50_ms={_fmt(d['p50'])}", f"{name}_{path}_p95_ms={_fmt(d['p95'])}"]
            lost += stats[path]["lost"]
            errors += stats[path]["post_errors"]
    return " ".join([*parts, f"lost={lost}", f"errors={errors}"])


def meets_target(stats: dict[str, Any]) -> bool | None:
    p95 = stats["across"]["latency_ms"]["p95"]
    return None if math.isnan(p95) else bool(p95 <= TARGET_ACROSS_P95_MS)


def print_table(backends: dict[str, dict[str, Any]]) -> None:
    header = ["backend", "path", "delivered", "lost", "post errors", "p50 ms", "p95 ms", "max ms", "POST p50 ms"]
    rows = [header]
    for name, stats in backends.items():
        for path in PATHS:
            s, d = stats[path], stats[path]["latency_ms"]
            rows.append(
                [
                    name,
                    "same replica" if path == "same" else "across replicas",
                    str(d["n"]),
                    str(s["lost"]),
                    str(s["post_errors"]),
                    _fmt(d["p50"]),
                    _fmt(d["p95"]),
                    _fmt(d["max"]),
                    _fmt(s["post_ms"]["p50"]),
                ]
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for j, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name, stats in backends.items():
        ok = meets_target(stats)
        mark = "-" if ok is None else "PASS" if ok else "FAIL"
        p95 = _fmt(stats["across"]["latency_ms"]["p95"])
        print(f"target {name} across-replica p95 {p95} ms <= {TARGET_ACROSS_P95_MS:g} ms: {mark}")


def write_plot(latencies: dict[str, dict[str, list[float]]], path: Path) -> str | None:
    """CDF of the delivery latency, one line per backend and path; None without matplotlib or data."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not any(v for paths in latencies.values() for v in paths.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for backend, paths in latencies.items():
        for p, values in paths.items():
            if not values:
                continue
            xs = sorted(values)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post", label=f"{backend}, {'same replica' if p == 'same' else 'across replicas'}")
    ax.axvline(TARGET_ACROSS_P95_MS, color="grey", linestyle=":", label="target p95 (across)")
    ax.axhline(0.95, color="grey", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("agent message post → shopper's stream (ms, log)")
    ax.set_ylabel("share of messages")
    ax.set_title("Takeover delivery latency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
