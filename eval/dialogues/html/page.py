"""The page: header with the run's metadata and figures (overall and by tag), the baseline section, and the
assembly of head, plots and scenarios into one document with its Content-Security-Policy; `write_html` writes it.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from eval.dialogues.html.markup import Markup, anchor, badge, el, num, plural, status
from eval.dialogues.html.plots import plots
from eval.dialogues.html.scenarios import index_table, scenario_section
from eval.dialogues.html.style import CSS, SCRIPT

STATUS_ORDER = {"regression": 0, "fixed": 1, "failed": 2, "skipped": 3, "passed": 4}


FIGURES = [  # (key in figures, label, digits)
    ("scenarios", "Scenarios", 0),
    ("passed", "Passed", 0),
    ("skipped", "Skipped", 0),
    ("pass1", "pass^1", 3),
    ("passk", "pass^k", 3),
    ("grounded", "Grounded answers", 3),
    ("ndcg5", "Discovery nDCG@5", 3),
    ("ttft_p95_ms", "First token p95 (ms)", 1),
    ("hallucinated", "Unknown product ids", 0),
]


def header(data: dict[str, Any]) -> Markup:
    meta = data.get("meta") or {}
    driver = meta.get("driver") or "?"
    if meta.get("base_url"):
        driver = f"{driver} ({meta['base_url']})"
    rows = [
        ("Suites", ", ".join(map(str, meta.get("suites") or []))),
        ("Driver", driver),
        (
            "Model",
            " ".join(str(v) for v in (meta.get("model"), f"({meta['llm']})" if meta.get("llm") else None) if v)
            or ("the deployment's" if meta.get("base_url") else "?"),
        ),
        ("Trials per scenario", meta.get("repeat")),
        ("Only", ", ".join(meta.get("only") or []) or None),
        ("Commit", meta.get("commit")),
        ("Date", meta.get("started")),
        ("Machine", meta.get("machine")),
    ]
    f = data.get("figures") or {}
    return el(
        "header",
        el("h1", "Dialogue evaluation: ", ", ".join(map(str, meta.get("suites") or [])) or "run"),
        el("dl", *[[el("dt", k), el("dd", v)] for k, v in rows if v not in (None, "")], class_="meta"),
        el("h2", "Figures"),
        el(
            "dl",
            *[el("div", el("dt", label), el("dd", num(f.get(key), d))) for key, label, d in FIGURES],
            class_="figures",
        ),
        figures_table(data),
    )


def figures_table(data: dict[str, Any]) -> Markup:
    rows = [("all", data.get("figures") or {}), *sorted((data.get("by_tag") or {}).items())]
    head = el("tr", el("th", "Tag", scope="col"), *[el("th", label, scope="col") for _, label, _ in FIGURES])
    body = [
        el("tr", el("th", tag, scope="row"), *[el("td", num(f.get(key), d)) for key, _, d in FIGURES])
        for tag, f in rows
    ]
    return el("table", el("caption", "Figures by tag"), el("thead", head), el("tbody", *body), class_="numbers")


def baseline_section(scenarios: list[dict[str, Any]]) -> Markup | None:
    changes = [s.get("change") for s in scenarios]
    if not any(changes):
        return None
    counts = {c: changes.count(c) for c in ("regression", "fixed", "new", "same")}
    items = [
        el("li", badge(s["change"]), " ", el("a", s["name"], href="#" + anchor(s["name"])))
        for kind in ("regression", "fixed")
        for s in scenarios
        if s.get("change") == kind
    ]
    return el(
        "section",
        el("h2", "Against the baseline", id="baseline"),
        el(
            "p",
            f"{plural(counts['regression'], 'regression')}, {counts['fixed']} fixed, {counts['new']} new, "
            f"{counts['same']} unchanged.",
        ),
        el("ul", *items) if items else el("p", "No regressions and no fixes."),
        aria_labelledby="baseline",
    )


def render(data: dict[str, Any]) -> str:
    """The page as a string."""
    scenarios = sorted(
        data.get("scenarios") or [],
        key=lambda s: STATUS_ORDER[s.get("change") if s.get("change") in ("regression", "fixed") else status(s)],
    )
    failed = sum(status(s) == "failed" for s in scenarios)
    f = data.get("figures") or {}
    suites = ", ".join(map(str, (data.get("meta") or {}).get("suites") or []))
    title = f"Dialogues {suites}: {f.get('passed', 0)}/{f.get('scenarios', 0)} passed"
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"
    body = el(
        "body",
        header(data),
        el(
            "main",
            baseline_section(scenarios),
            el("section", el("h2", "Plots", id="plots"), plots(scenarios), aria_labelledby="plots"),
            el(
                "section",
                el("h2", "Scenarios", id="scenarios"),
                el(
                    "p",
                    el(
                        "label",
                        el("input", type="checkbox", id="only-failed"),
                        f" Show only the failed scenarios ({failed})",
                    ),
                    id="filter",
                    hidden=True,
                ),
                index_table(scenarios),
                *[scenario_section(s) for s in scenarios],
                aria_labelledby="scenarios",
            ),
        ),
        el("script", Markup(SCRIPT)),
    )
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", http_equiv="Content-Security-Policy", content=csp),
        el("title", title),
        el("style", Markup(CSS)),
    )
    return f'<!doctype html>\n<html lang="en">\n{head}\n{body}\n</html>\n'


def write_html(path: Path, data: dict[str, Any]) -> None:
    """Write the report for a results.json dict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
