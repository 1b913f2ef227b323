"""The report: targets and their verdicts, the table, the summary line, the plot, the environment."""

from __future__ import annotations

import math
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders import TextEncoder

# Target name -> (comparison, threshold, unit).
TARGETS: dict[str, tuple[str, float, str]] = {
    "index_pps": (">=", 150.0, "products/s"),
    "reindex_pps": (">=", 5_000.0, "products/s"),
    "p99_ms_base": ("<=", 30.0, "ms"),
    "p99_ms_scale": ("<=", 100.0, "ms"),
}
TARGET_SCALE = 100_000  # the catalog size the p99_ms_scale target is stated for


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 else str(n)


def judge(name: str, value: float | None) -> bool | None:
    if value is None or math.isnan(value):
        return None
    op, threshold, _ = TARGETS[name]
    return value >= threshold if op == ">=" else value <= threshold


def print_table(result: dict[str, Any]) -> None:
    n = result["catalog"]["products"]
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, value: float | None, unit: str, target: str | None = None, note: str = "") -> None:
        shown = "skipped" if value is None else f"{value:,.1f} {unit}" if unit != "ms" else f"{value:.2f} ms"
        if target is None:
            rows.append((label, shown, "", ""))
            return
        op, threshold, t_unit = TARGETS[target]
        verdict = judge(target, value)
        mark = "-" if verdict is None else "PASS" if verdict else "FAIL"
        rows.append((label, shown, f"{op} {threshold:,.0f} {t_unit}{note}", mark))

    add(f"index, cold cache ({n} products)", result["index"]["products_per_s"], "products/s", "index_pps")
    add("re-index, unchanged", result["reindex"]["products_per_s"], "products/s", "reindex_pps")
    base = result["search_base"]
    add(f"search p50 @ {n}", base["p50_ms"], "ms")
    add(f"search p99 @ {n}", base["p99_ms"], "ms", "p99_ms_base")
    scale = result["search_scale"]
    s_n = result["scale"]
    if scale.get("skipped"):
        add(f"search p99 @ {s_n}", None, "ms", "p99_ms_scale")
    else:
        note = "" if s_n == TARGET_SCALE else f" (stated for {TARGET_SCALE:,})"
        add(f"search p50 @ {s_n}", scale["p50_ms"], "ms")
        add(f"search p99 @ {s_n}", scale["p99_ms"], "ms", "p99_ms_scale", note)
    add("peak RSS", result["peak_rss_mb"], "MB")
    widths = [max(len(r[i]) for r in [("stage", "figure", "target", ""), *rows]) for i in range(4)]
    for row in [("stage", "figure", "target", ""), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print()
    print("memory by stage (MB):  stage / peak RSS (getrusage) / current RSS (psutil)")
    for m in result["memory"]:
        print(f"  {m['stage']:<28} {m['peak_rss_mb']:>9.1f} {m['rss_mb'] if m['rss_mb'] is not None else '-':>9}")
    for label, block in (("base", base), ("scale", scale)):
        if block.get("breakdown"):
            parts = " ".join(f"{k}={v:.2f}" for k, v in block["breakdown"].items())
            print(f"search step p50 ({label}): {parts}")
    failed = [k for k, ok in result["checks"].items() if not ok]
    print("invariant checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))


def summary_line(result: dict[str, Any]) -> str:
    base_label, scale_label = size_label(result["catalog"]["products"]), size_label(result["scale"])
    scale = result["search_scale"]
    nan = float("nan")
    return (
        f"index_pps={result['index']['products_per_s']:.1f} reindex_pps={result['reindex']['products_per_s']:.1f} "
        f"p50_ms_{base_label}={result['search_base']['p50_ms']:.2f} "
        f"p99_ms_{base_label}={result['search_base']['p99_ms']:.2f} "
        f"p50_ms_{scale_label}={scale.get('p50_ms', nan):.2f} p99_ms_{scale_label}={scale.get('p99_ms', nan):.2f} "
        f"peak_rss_mb={result['peak_rss_mb']:.1f}"
    )


def write_plot(result: dict[str, Any], path: Path) -> str | None:
    """Box plot of the latency distributions (and p50/p99 bars); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = [(f"{result['catalog']['products']:,} products", result["search_base"])]
    if not result["search_scale"].get("skipped"):
        series.append((f"{result['scale']:,} products", result["search_scale"]))
    fig, (box, bars) = plt.subplots(1, 2, figsize=(10, 4.5))
    box.boxplot([s["latencies_ms"] for _, s in series], whis=(1, 99), showfliers=True)
    box.set_xticks(range(1, len(series) + 1), [name for name, _ in series])
    box.set_ylabel("search latency (ms), k=10, mode=full")
    box.set_title("latency distribution (whiskers p1-p99)")
    for target, style in (("p99_ms_base", "--"), ("p99_ms_scale", ":")):
        box.axhline(TARGETS[target][1], linestyle=style, color="grey", linewidth=1, label=f"{target} target")
    box.legend(fontsize=8)
    x = np.arange(len(series))
    bars.bar(x - 0.2, [s["p50_ms"] for _, s in series], width=0.4, label="p50")
    bars.bar(x + 0.2, [s["p99_ms"] for _, s in series], width=0.4, label="p99")
    bars.set_xticks(x, [name for name, _ in series])
    bars.set_ylabel("ms")
    bars.set_title("p50 / p99")
    bars.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def environment(encoder: TextEncoder) -> dict[str, Any]:
    import os

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "encoder": encoder.model_id,
        "encoder_dim": encoder.dim,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
    try:
        import chromadb

        env["chromadb"] = chromadb.__version__
    except ImportError:  # pragma: no cover - a dependency
        pass
    return env


def finite(value: Any) -> Any:
    """NaN/inf -> None, so the report is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
