"""The scenarios: the index table and, per scenario, its section with each trial's failed checks, end state and
transcript (turn by turn: message, intent, tools, cards, answer, citations, actions, grounding, timing).
"""

from __future__ import annotations

from typing import Any

from eval.dialogues.html.markup import Markup, anchor, as_text, badge, el, join, ms, num, plural, status


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
