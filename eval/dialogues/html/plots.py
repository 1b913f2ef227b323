"""The plots: latency by tag (box and dots per tag, with its table) and outcomes by tag (stacked bars), drawn
with matplotlib and inlined as PNG data URIs; without matplotlib, a line that says what to install.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from eval.dialogues.html.markup import Markup, el, join, ms, status

PASS, FAIL, SKIP = "#009E73", "#D55E00", "#999999"  # Okabe-Ito: told apart with colour-blindness too


def plots(scenarios: list[dict[str, Any]]) -> Markup:
    try:
        import matplotlib
    except ImportError:
        return el("p", "The plots need matplotlib: pip install -e '.[dev]'")
    tags = ["all", *sorted({t for s in scenarios for t in s.get("tags") or []})]
    with matplotlib.rc_context({"font.size": 9}):
        return join([latency_plot(scenarios, tags), outcome_plot(scenarios, tags)])


def tagged(tag: str, scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in scenarios if tag == "all" or tag in (s.get("tags") or [])]


def latency_plot(scenarios: list[dict[str, Any]], tags: list[str]) -> Markup | None:
    from matplotlib.figure import Figure

    ran = [s for s in scenarios if status(s) != "skipped"]

    def turns(tag: str, key: str) -> list[float]:
        trials = [t for s in tagged(tag, ran) for t in s.get("trials") or []]
        return [float(r[key]) for t in trials for r in t.get("turns") or [] if r.get(key) is not None]

    rows = [t for t in tags if turns(t, "turn_ms")]
    if not rows:
        return None
    fig = Figure(figsize=(9, 0.32 * len(rows) + 1.3), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("first_token_ms", "turn_ms"), ("First token", "Whole turn"), strict=True):
        values = [turns(t, key) for t in rows]
        box = dict(orientation="horizontal", widths=0.6, showfliers=False, medianprops={"color": "#000"})
        ax.boxplot([v or [math.nan] for v in values], **box)
        for i, v in enumerate(values, start=1):
            jitter = [i + 0.25 * (((j * 7) % 11) / 10 - 0.5) for j in range(len(v))]  # spread, reproducibly
            ax.scatter(v, jitter, s=9, color="#0072B2", alpha=0.6, linewidths=0)
        flat = [x for v in values for x in v if x > 0]
        if flat and max(flat) / min(flat) > 50:
            ax.set_xscale("log")
        ax.set(title=title, xlabel="ms")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(1, len(rows) + 1), rows)
    axes[0].invert_yaxis()
    caption = (
        "Time to the first token and to the end of each turn, by tag: a box per tag (quartiles and median) "
        "and a dot per turn."
    )
    alt = "Box plots of first-token and whole-turn times by tag; the table below gives their medians and p95."
    return figure(fig, caption, alt, latency_table(rows, turns))


def outcome_plot(scenarios: list[dict[str, Any]], tags: list[str]) -> Markup:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 0.32 * len(tags) + 1.1), layout="constrained")
    ax = fig.subplots()
    left = [0] * len(tags)
    counted: dict[str, list[int]] = {}
    for word, colour, hatch in (("passed", PASS, ""), ("failed", FAIL, "//"), ("skipped", SKIP, "..")):
        counts = counted[word] = [sum(status(s) == word for s in tagged(t, scenarios)) for t in tags]
        bars = ax.barh(tags, counts, left=left, color=colour, hatch=hatch, edgecolor="white", label=word)
        labels = [str(c) if c else "" for c in counts]
        ax.bar_label(bars, labels=labels, label_type="center", bbox={"fc": "white", "ec": "none", "pad": 1})
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("scenarios")
    ax.legend(loc="lower right", frameon=False, ncols=3, bbox_to_anchor=(1, 1))
    alt = "; ".join(
        f"{t}: {counted['passed'][i]} passed, {counted['failed'][i]} failed, {counted['skipped'][i]} skipped"
        for i, t in enumerate(tags)
    )
    return figure(fig, "Scenarios passed, failed and skipped, by tag.", "Bars by tag. " + alt, None)


def figure(fig: Any, caption: str, alt: str, table: Markup | None) -> Markup:
    """A PNG inline (an inline SVG would bring matplotlib's global style rule and repeated element ids)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return el("figure", el("img", src=src, alt=alt), el("figcaption", caption), table, class_="plot")


def latency_table(tags: list[str], turns: Any) -> Markup:
    def q(values: list[float], p: float) -> str:
        ordered = sorted(values)
        return ms(ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]) if ordered else "—"

    head = ["Tag", "Turns", "First token p50", "First token p95", "Whole turn p50", "Whole turn p95"]
    body = []
    for tag in tags:
        ft, whole = turns(tag, "first_token_ms"), turns(tag, "turn_ms")
        cells = [len(whole), q(ft, 0.5), q(ft, 0.95), q(whole, 0.5), q(whole, 0.95)]
        body.append(el("tr", el("th", tag, scope="row"), *[el("td", c) for c in cells]))
    table = el(
        "table", el("thead", el("tr", *[el("th", h, scope="col") for h in head])), el("tbody", *body), class_="numbers"
    )
    return el("details", el("summary", "Latency by tag as a table"), table)
