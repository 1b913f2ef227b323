"""report.html: one self-contained page over a run's results.json — its figures, regressions and fixes against a
baseline, plots, and every scenario's failed checks and transcripts.

Nothing in the page is fetched: styles, plots (PNG data URIs from matplotlib) and the few lines of script that
filter failed scenarios are inline, and a Content-Security-Policy forbids anything else. Messages and answers
are untrusted text (adversarial scenarios carry HTML and script in them): every value goes through `esc`,
and only `Markup` built here is written as it is.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATUS_ORDER = {"regression": 0, "fixed": 1, "failed": 2, "skipped": 3, "passed": 4}
VOID = {"input", "meta", "img"}
PASS, FAIL, SKIP = "#009E73", "#D55E00", "#999999"  # Okabe-Ito: told apart with colour-blindness too


class Markup(str):
    """HTML built here, written as it is; any other str is escaped."""


def esc(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def join(children: Iterable[object]) -> Markup:
    out = []
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, list | tuple):
            out.append(join(child))
        else:
            out.append(esc(child))
    return Markup("".join(out))


def el(tag: str, *children: object, **attrs: object) -> Markup:
    """<tag attrs>children</tag>; `class_` is class, `aria_label` is aria-label; None or False leaves one out."""
    attr = "".join(
        f" {k.rstrip('_').replace('_', '-')}" + ("" if v is True else f'="{esc(v)}"')
        for k, v in attrs.items()
        if v is not None and v is not False
    )
    if tag in VOID:
        return Markup(f"<{tag}{attr}>")
    return Markup(f"<{tag}{attr}>{join(children)}</{tag}>")


def num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ms(v: Any) -> str:
    return "—" if v is None else f"{v:,.1f} ms"


def as_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def anchor(name: str) -> str:
    return "s-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def status(s: dict[str, Any]) -> str:
    return "skipped" if s.get("skipped") else ("passed" if s.get("passed") else "failed")


def badge(word: str) -> Markup:
    return el("span", word, class_=f"badge {word}")


# ---- header and figures


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
        ("Model", meta.get("llm") or ("the deployment's" if meta.get("base_url") else "?")),
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


# ---- plots


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


# ---- scenarios


def index_table(scenarios: list[dict[str, Any]]) -> Markup:
    rows = []
    for s in scenarios:
        trials = s.get("trials") or []
        rows.append(
            el(
                "tr",
                el("th", el("a", s["name"], href="#" + anchor(s["name"])), scope="row"),
                el("td", badge(status(s))),
                el("td", badge(s["change"]) if s.get("change") in ("regression", "fixed") else s.get("change") or ""),
                el("td", ", ".join(s.get("tags") or [])),
                el("td", f"{s.get('passes', 0)}/{len(trials)}"),
                el("td", sum(len(t.get("turns") or []) for t in trials)),
                data_status=status(s),
            )
        )
    head = ["Scenario", "Status", "Change", "Tags", "Trials passed", "Turns"]
    return el(
        "table",
        el("caption", "All scenarios, regressions and failures first"),
        el("thead", el("tr", *[el("th", h, scope="col") for h in head])),
        el("tbody", *rows),
        class_="index",
    )


def scenario_section(s: dict[str, Any]) -> Markup:
    word, change, trials = status(s), s.get("change"), s.get("trials") or []
    hid = anchor(s["name"])
    return el(
        "section",
        el(
            "h3",
            s["name"],
            " ",
            badge(word),
            " ",
            badge(change) if change in ("regression", "fixed") else None,
            id=f"{hid}-h",
        ),
        el("p", "Tags: ", ", ".join(s.get("tags") or []) or "none", class_="tags"),
        el("p", s["description"]) if s.get("description") else None,
        el("p", el("strong", "Skipped: "), s["skipped"], class_="skipped") if s.get("skipped") else None,
        [trial_block(s, t, len(trials)) for t in trials if not t.get("skipped")],
        id=hid,
        class_=f"scenario {word} {change or ''}".strip(),
        aria_labelledby=f"{hid}-h",
        data_status=word,
    )


def trial_block(s: dict[str, Any], t: dict[str, Any], n: int) -> Markup:
    failures = t.get("failures") or []
    turns = t.get("turns") or []
    word = "passed" if t.get("passed") else "failed"
    extra = [
        f"nDCG@5 {num(t.get('ndcg@5'))}" if t.get("ndcg@5") is not None else None,
        f"{t['hallucinated']} unknown product ids" if t.get("hallucinated") else None,
        f"{t['wrong_prices']} wrong card prices" if t.get("wrong_prices") else None,
        f"shopper {t['shopper_id']}" if t.get("shopper_id") else None,
    ]
    return el(
        "div",
        el("h4", f"Trial {t.get('trial', 1)} of {n}: {word} in {t.get('seconds', 0)} s"),
        el("p", " · ".join(x for x in extra if x), class_="muted") if any(extra) else None,
        failures_table(failures) if failures else None,
        end_state(t["state"]) if t.get("state") else None,
        el(
            "details",
            el("summary", f"Transcript of {s['name']}, trial {t.get('trial', 1)} ({plural(len(turns), 'turn')})"),
            el("ol", *[turn_item(i, r, failures) for i, r in enumerate(turns, start=1)], class_="turns"),
        ),
        class_="trial",
    )


def failures_table(failures: list[dict[str, Any]]) -> Markup:
    rows = [
        el(
            "tr",
            el("td", "end state" if f.get("turn") is None else f"turn {f['turn']}"),
            el("th", f.get("check", "?"), scope="row"),
            el("td", el("code", as_text(f.get("expected")))),
            el("td", el("code", as_text(f.get("got")))),
        )
        for f in failures
    ]
    head = el("tr", *[el("th", h, scope="col") for h in ("Where", "Check", "Expected", "Got")])
    return el("table", el("caption", "Failed checks"), el("thead", head), el("tbody", *rows), class_="failures")


def end_state(state: dict[str, Any]) -> Markup:
    cart = ", ".join(f"{q} × {pid}" for pid, q in (state.get("cart") or {}).items()) or "empty"
    orders = "; ".join(f"{oid}: {as_text(o)}" for oid, o in (state.get("orders") or {}).items()) or "none"
    return el(
        "dl",
        el("dt", "Cart at the end"),
        el("dd", cart),
        el("dt", "Orders"),
        el("dd", orders),
        el("dt", "Open handoffs"),
        el("dd", ", ".join(state.get("handoffs") or []) or "none"),
        class_="state",
    )


def turn_item(n: int, r: dict[str, Any], failures: list[dict[str, Any]]) -> Markup:
    mine = [f for f in failures if f.get("turn") == n]
    intent = r.get("intent") or {}
    g = r.get("grounding") or {}
    unbacked = [f"{k}: {', '.join(map(str, v))}" for k, v in g.items() if v]
    rows: list[tuple[str, object]] = [
        ("Shopper", el("p", r.get("message", ""), class_="said")),
        ("Intent", intent_text(intent) if intent else "none"),
        ("Tools", el("ul", *[el("li", tool_text(c)) for c in r.get("tools") or []]) if r.get("tools") else None),
        ("Cards", cards_table(r["cards"]) if r.get("cards") else None),
        ("Answer", el("p", r.get("answer") or "(no answer)", class_="said")),
        ("Citations", el("ul", *[el("li", el("code", c)) for c in r["citations"]]) if r.get("citations") else None),
        ("Actions", el("ul", *[el("li", action_text(a)) for a in r["actions"]]) if r.get("actions") else None),
        ("Handoff", "yes" if r.get("handoff") else None),
        ("Withheld", el("ul", *[el("li", w) for w in r["withheld"]]) if r.get("withheld") else None),
        ("Unbacked claims", el("ul", *[el("li", u) for u in unbacked], class_="bad") if unbacked else None),
        ("Error", el("p", r["error"], class_="bad") if r.get("error") else None),
        ("Status", r.get("status") if r.get("status") != "completed" else None),
        ("Failed checks", el("ul", *[el("li", failure_text(f)) for f in mine], class_="bad") if mine else None),
    ]
    timing = (
        f"products {ms(r.get('products_ms'))} · first token {ms(r.get('first_token_ms'))} · "
        f"whole turn {ms(r.get('turn_ms'))}"
    )
    return el(
        "li",
        el("h5", f"Turn {n}", " ", badge("failed") if mine else None, el("span", timing, class_="timing")),
        el("dl", *[[el("dt", k), el("dd", v)] for k, v in rows if v is not None]),
        class_="turn bad-turn" if mine else "turn",
    )


def failure_text(f: dict[str, Any]) -> Markup:
    expected, got = el("code", as_text(f.get("expected"))), el("code", as_text(f.get("got")))
    return join([f.get("check", "?"), ": expected ", expected, ", got ", got])


def intent_text(intent: dict[str, Any]) -> Markup:
    slots = intent.get("slots") or {}
    sources = intent.get("slot_sources") or {}
    parts: list[object] = [el("code", intent.get("intent", "?"))]
    if intent.get("group") or intent.get("confidence") is not None:
        parts.append(
            f" ({intent.get('group', '')}{', ' if intent.get('group') else ''}"
            f"confidence {num(intent.get('confidence'), 2)})"
        )
    if slots:
        parts += [
            "; slots ",
            ", ".join(f"{k}={as_text(v)}" + (f" ({sources[k]})" if k in sources else "") for k, v in slots.items()),
        ]
    if intent.get("references"):
        parts += ["; references ", ", ".join(map(str, intent["references"]))]
    return join(parts)


def tool_text(call: dict[str, Any]) -> Markup:
    outcome = "ok" if call.get("ok") else f"error: {as_text(call.get('error'))}"
    return join([el("code", f"{call.get('name')}({as_text(call.get('arguments') or {})})"), f" → {outcome}"])


def action_text(a: dict[str, Any]) -> Markup:
    return join([el("code", a.get("tool", "?")), f" {a.get('status', '')}: {a.get('description', '')}"])


def cards_table(cards: list[dict[str, Any]]) -> Markup:
    def stock(c: dict[str, Any]) -> str:
        if c.get("stock") is not None:
            return f"{c['stock']} in stock" if c["stock"] else "out of stock"
        return "—" if c.get("in_stock") is None else ("in stock" if c["in_stock"] else "out of stock")

    rows = [
        el(
            "tr",
            el("td", i),
            el("th", c.get("title") or "?", scope="row"),
            el(
                "td",
                f"{c['price']:.2f} {c.get('currency') or ''}".strip()
                if isinstance(c.get("price"), int | float)
                else "—",
            ),
            el("td", stock(c)),
            el("td", el("code", c.get("id", ""))),
        )
        for i, c in enumerate(cards, start=1)
    ]
    head = el("tr", *[el("th", h, scope="col") for h in ("#", "Title", "Price", "Stock", "Id")])
    return el("table", el("thead", head), el("tbody", *rows), class_="cards")


# ---- the page

SCRIPT = """
const box = document.getElementById("only-failed");
document.getElementById("filter").hidden = false;
box.addEventListener("change", () => {
  for (const node of document.querySelectorAll("[data-status]"))
    node.hidden = box.checked && node.dataset.status !== "failed";
});
"""

CSS = """
:root { --fg: #1a1a1a; --bg: #fff; --muted: #555; --line: #ccc; --panel: #f4f5f7; --pass: #17643a;
  --fail: #a8200d; --skip: #555; --link: #0b57d0; color-scheme: light dark; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e8; --bg: #16181c; --muted: #b0b0b0; --line: #444;
  --panel: #23262b; --pass: #7ddc9f; --fail: #ff9b85; --skip: #c0c0c0; --link: #8ab4f8; } }
body { font: 15px/1.45 system-ui, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg);
  margin: 0 auto; padding: 1rem 1.5rem 4rem; max-width: 78rem; }
a { color: var(--link); }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid var(--line); }
h3 { margin: 0 0 .3rem; font-size: 1.15rem; } h4 { margin: .8rem 0 .3rem; } h5 { margin: 0 0 .3rem; font-size: 1rem; }
dl.meta, dl.state { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0; }
dl.meta dt, .turn dt, .state dt { color: var(--muted); } dl.meta dd, .turn dd, .state dd { margin: 0; }
dl.state { margin: .5rem 0; }
dl.figures { display: flex; flex-wrap: wrap; gap: .6rem; margin: 0 0 1rem; }
dl.figures div { background: var(--panel); border-radius: 6px; padding: .4rem .8rem; min-width: 7rem; }
dl.figures dt { color: var(--muted); font-size: .85rem; }
dl.figures dd { margin: 0; font-size: 1.3rem; font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
code { font: .85rem/1.3 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; white-space: pre-wrap; }
.badge { display: inline-block; border: 1px solid currentColor; border-radius: 4px; padding: 0 .35rem;
  font-size: .8rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
.badge.passed, .badge.fixed { color: var(--pass); } .badge.failed, .badge.regression { color: var(--fail); }
.badge.skipped { color: var(--skip); } .badge.regression { background: var(--fail); color: var(--bg); }
.badge.fixed { background: var(--pass); color: var(--bg); }
.scenario { border-left: 5px solid var(--pass); padding: .3rem 0 .3rem 1rem; margin: 1.6rem 0; }
.scenario.failed { border-color: var(--fail); } .scenario.skipped { border-color: var(--skip); }
.tags, .muted, .timing { color: var(--muted); font-size: .9rem; } .timing { font-weight: normal; margin-left: .6rem; }
summary { cursor: pointer; color: var(--link); padding: .2rem 0; }
ol.turns { padding-left: 0; list-style: none; }
.turn { background: var(--panel); border-radius: 6px; padding: .6rem .8rem; margin: .6rem 0; }
.turn.bad-turn { outline: 2px solid var(--fail); }
.turn dl { display: grid; grid-template-columns: 9rem 1fr; gap: .25rem 1rem; margin: 0; }
.turn ul { margin: 0; padding-left: 1.1rem; } .turn table { margin: 0; }
table.cards td, table.cards code { white-space: nowrap; }
.said { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; } .bad { color: var(--fail); }
figure.plot { margin: 1rem 0; } figure.plot img { max-width: 100%; height: auto; border-radius: 6px; }
#filter { margin: .5rem 0; }
"""


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
