"""The report: the judged figures, the table, the summary line and the plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Target name -> (comparison, threshold, unit); "@N" is the concurrency it is judged at.
TARGETS: dict[str, tuple[str, float, str]] = {
    "products_p95_ms": ("<=", 150.0, "ms"),  # at every level
    "first_token_p95_s@1": ("<=", 1.0, "s"),
    "first_token_p95_s@8": ("<=", 2.5, "s"),
    "overhead": ("<=", 1.15, "x"),  # at every level
}


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
    for lv in result["levels"]:
        b = lv.get("breakdown") or {}
        if b and b["model_first_text_ms"]["n"]:
            parts = ", ".join(
                f"{label} {b[key]['p50']:.0f} / {b[key]['p95']:.0f}"
                for key, label in (
                    ("before_model_ms", "before the model"),
                    ("model_first_text_ms", "model first text"),
                    ("filter_hold_ms", "filter hold"),
                )
            )
            print(f"first token at {lv['concurrency']} shoppers, p50 / p95 ms: {parts}")
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


def finite(value: Any) -> Any:
    """NaN/inf -> None, so the report is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
