"""Checks: the per-turn assertions a scenario states, and the end state it must leave.

Each check returns failures, each naming the check, what was expected and what came; nothing here reads the
answer's wording except the `text`, `states` and `not_carried` checks a scenario asks for (`states` looks for a
record's values, not for phrasing).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from assistant.grounding import format_price
from eval.dialogues.global_checks import SENTENCE
from eval.dialogues.record import State, TurnRecord
from eval.dialogues.scenario import CardFilters, Expect, Final, Ref, States, ToolCall, Trajectory

NOT_CARRIED = re.compile(
    r"\b(?:do not|don't|doesn't|does not|don’t)\s+(?:carry|sell|stock|have)\b|\bnot\s+(?:carried|sold)\b", re.I
)
OPERATORS = {"regex", "contains", "gte", "lte", "absent"}


@dataclass
class Failure:
    """One check that did not hold: where (turn from 1; None for the end state), which check, expected, got."""

    check: str
    expected: Any
    got: Any
    turn: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"turn": self.turn, "check": self.check, "expected": self.expected, "got": self.got}

    def __str__(self) -> str:
        where = f"turn {self.turn}: " if self.turn is not None else "end state: "
        return f"{where}{self.check}: expected {self.expected!r}, got {self.got!r}"


def resolve(ref: Ref, history: list[TurnRecord]) -> str | None:
    """The id of the card a reference names, if that turn showed that many."""
    if ref.turn > len(history):
        return None
    cards = history[ref.turn - 1].cards
    return str(cards[ref.rank - 1]["id"]) if ref.rank <= len(cards) else None


def check_turn(n: int, expect: Expect, rec: TurnRecord, history: list[TurnRecord]) -> list[Failure]:
    """The scenario's assertions about turn `n` (from 1); `history` holds the turns before it."""
    out: list[Failure] = []

    def fail(check: str, expected: Any, got: Any) -> None:
        out.append(Failure(check, expected, got, n))

    if rec.error is not None:
        fail("request", "a streamed turn", rec.error)
        return out
    if rec.status != expect.status:
        errors = [e.data.get("error", {}).get("code") for e in rec.all("error")]
        fail("status", expect.status, f"{rec.status} {errors}" if errors else rec.status)
    intent = rec.intent.get("intent")
    if expect.intent is not None and intent not in expect.intent:
        fail("intent", expect.intent, intent)
    if expect.slots is not None:
        got_slots = rec.intent.get("slots") or {}
        for key, want in expect.slots.items():
            if not _equal(want, got_slots.get(key)):
                fail(f"slots.{key}", want, got_slots.get(key))
    if expect.references is not None:
        wanted = [resolve(r, history) for r in expect.references]
        if None in wanted:
            fail("references", "cards shown at the referenced ranks", [h.cards and len(h.cards) for h in history])
        elif sorted(map(str, rec.intent.get("references") or [])) != sorted(str(w) for w in wanted):
            fail("references", wanted, rec.intent.get("references") or [])
    if expect.tools is not None:
        out.extend(Failure(c, e, g, n) for c, e, g in check_trajectory(expect.tools, rec.tool_calls()))
    cards = rec.cards
    if expect.products is not None:
        p = expect.products
        if p.min is not None and len(cards) < p.min:
            fail("products.min", p.min, len(cards))
        if p.max is not None and len(cards) > p.max:
            fail("products.max", p.max, len(cards))
        if p.filters is not None:
            for card in cards:
                broken = card_breaks(card, p.filters)
                if broken:
                    fail("products.filters", broken, {k: card.get(k) for k in ("id", "title", "price", "color")})
        for ref in p.include or []:
            pid = resolve(ref, history)
            if pid is None or pid not in {str(c["id"]) for c in cards}:
                fail("products.include", pid, [c["id"] for c in cards])
    answer = rec.answer
    if expect.text is not None:
        for pattern in expect.text.contains:
            if not re.search(pattern, answer, re.I):
                fail("text.contains", pattern, answer)
        for pattern in expect.text.not_contains:
            if re.search(pattern, answer, re.I):
                fail("text.not_contains", pattern, answer)
    for want in expect.states or []:
        out.extend(Failure(c, e, g, n) for c, e, g in check_states(want, answer, [*history, rec]))
    if expect.citations is not None:
        kinds = {c.split(":", 1)[0] for c in rec.citations}
        if not expect.citations and rec.citations:
            fail("citations", "none", rec.citations)
        for kind in expect.citations:
            if kind not in kinds:
                fail("citations", kind, rec.citations)
    if expect.action is not None:
        acts = [(a.get("tool"), a.get("status")) for a in rec.actions]
        if not any(s == expect.action.status and (expect.action.tool in (None, t)) for t, s in acts):
            fail("action", expect.action.model_dump(exclude_none=True), acts)
    if expect.no_action is not None and (not rec.actions) != expect.no_action:
        fail("no_action", expect.no_action, [(a.get("tool"), a.get("status")) for a in rec.actions])
    if expect.handoff is not None and bool(rec.all("handoff")) != expect.handoff:
        fail("handoff", expect.handoff, bool(rec.all("handoff")))
    if expect.not_carried is not None and bool(NOT_CARRIED.search(answer)) != expect.not_carried:
        fail("not_carried", expect.not_carried, answer)
    if expect.no_products is not None and (not cards) != expect.no_products:
        fail("no_products", expect.no_products, [c["id"] for c in cards])
    if expect.latency is not None:
        budget = expect.latency
        for name, limit, got in (
            ("products_ms", budget.products_ms, rec.products_ms),
            ("first_token_ms", budget.first_token_ms, rec.first_token_ms),
            ("turn_ms", budget.turn_ms, rec.turn_ms),
        ):
            if limit is not None and (got is None or got > limit):
                fail(f"latency.{name}", f"<= {limit:g}", None if got is None else round(got, 1))
    return out


def check_states(want: States, answer: str, turns: list[TurnRecord]) -> list[tuple[str, Any, Any]]:
    """(check, expected, got) for each field the answer (or its first sentence) does not state as the record of
    the card `want.ref` names holds it; `turns` runs up to this turn."""
    if want.ref.turn > len(turns) or want.ref.rank > len(turns[want.ref.turn - 1].cards):
        return [("states", f"a card at turn {want.ref.turn}, rank {want.ref.rank}", "no such card")]
    card = turns[want.ref.turn - 1].cards[want.ref.rank - 1]
    text = answer.strip()
    if want.where == "first_sentence":
        text = SENTENCE.split(text, maxsplit=1)[0]
    out: list[tuple[str, Any, Any]] = []
    for name in want.fields:
        pattern = value_pattern(card, name)
        if pattern is None:
            out.append((f"states.{name}", f"a card whose record has a {name}", card.get("title")))
        elif not re.search(pattern, text, re.I):
            out.append((f"states.{name}", f"{pattern} in the {want.where.replace('_', ' ')}", text))
    return out


def value_pattern(card: dict[str, Any], name: str) -> str | None:
    """A regular expression for a card's value of one field as an answer states it; None when the record has none."""
    if name == "name":
        return _word(str(card["title"])) if card.get("title") else None
    if name == "price":
        price = card.get("price")
        return None if price is None else re.escape(format_price(float(price), str(card.get("currency") or "USD")))
    if name == "stock":
        stock = card.get("stock")
        if stock is None:
            return None
        return rf"\b{int(stock)}\b.*\bin stock\b" if int(stock) > 0 else r"\bout of stock\b"
    if name == "rating":
        rating = card.get("rating")
        return None if rating is None else rf"(?<![\d.]){re.escape(f'{float(rating):g}')}(?![\d])"
    value = card.get("color" if name == "colour" else name)
    return _word(str(value)) if value else None


def _word(value: str) -> str:
    """`value` as whole words ("red" is not in "rated")."""
    return rf"(?<!\w){re.escape(value)}(?!\w)"


def category_share(cards: list[dict[str, Any]], categories: list[str]) -> float:
    """The share of cards in any of `categories` (category or any level of its path)."""
    if not cards:
        return 0.0
    wanted = {c.lower() for c in categories}
    hits = sum(
        bool(wanted & {str(c).lower() for c in [card.get("category"), *(card.get("category_path") or [])] if c})
        for card in cards
    )
    return hits / len(cards)


def check_personalized(n: int, expect: Expect, rec: TurnRecord, fresh: TurnRecord) -> list[Failure]:
    """This shopper's cards against a fresh shopper's for the same message."""
    p = expect.personalized
    if p is None:
        return []
    mine, theirs = category_share(rec.cards, p.categories), category_share(fresh.cards, p.categories)
    if mine <= theirs + p.min_gain - 1e-9 or mine == 0.0:
        return [Failure("personalized", f"share of {p.categories} above a fresh shopper's {theirs:.2f}", mine, n)]
    return []


def card_breaks(card: dict[str, Any], f: CardFilters) -> str | None:
    """Which asked-for constraint a card breaks (colour also counts when the title names it: some catalogs keep
    colours in titles only)."""
    price = card.get("price")
    if f.min_price is not None and (price is None or price < f.min_price - 1e-9):
        return f"price >= {f.min_price:g}"
    if f.max_price is not None and (price is None or price > f.max_price + 1e-9):
        return f"price <= {f.max_price:g}"
    title = str(card.get("title") or "").lower()
    if f.color and not any(c.lower() == str(card.get("color") or "").lower() or c.lower() in title for c in f.color):
        return f"colour in {f.color}"
    if f.brand and str(card.get("brand") or "").lower() not in {b.lower() for b in f.brand}:
        return f"brand in {f.brand}"
    if f.category:
        cats = {str(c).lower() for c in [card.get("category"), *(card.get("category_path") or [])] if c}
        if not cats & {c.lower() for c in f.category}:
            return f"category in {f.category}"
    if f.in_stock is not None and bool(card.get("in_stock")) != f.in_stock:
        return f"in_stock is {f.in_stock}"
    return None


def check_trajectory(t: Trajectory, calls: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(check, expected, got) for each way the calls break the trajectory."""
    out: list[tuple[str, Any, Any]] = []
    names = [c.get("name") for c in calls]
    if t.exact is not None and (
        len(t.exact) != len(calls) or not all(call_matches(w, c) for w, c in zip(t.exact, calls, strict=False))
    ):
        out.append(("tools.exact", [w.model_dump(exclude_defaults=True) for w in t.exact], _calls(calls)))
    if t.in_order is not None:
        i = 0
        for call in calls:
            if i < len(t.in_order) and call_matches(t.in_order[i], call):
                i += 1
        if i < len(t.in_order):
            out.append(("tools.in_order", [w.model_dump(exclude_defaults=True) for w in t.in_order], _calls(calls)))
    for want in t.any_order or []:
        if not any(call_matches(want, c) for c in calls):
            out.append(("tools.any_order", want.model_dump(exclude_defaults=True), _calls(calls)))
    for name in t.none or []:
        if name in names:
            out.append(("tools.none", f"no {name}", _calls(calls)))
    return out


def _calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": c.get("name"), "args": c.get("arguments")} for c in calls]


def call_matches(want: ToolCall, call: dict[str, Any]) -> bool:
    if call.get("name") != want.name:
        return False
    args = call.get("arguments") or {}
    return all(arg_matches(expected, args.get(key)) for key, expected in want.args.items())


def arg_matches(expected: Any, got: Any) -> bool:
    """A value (numbers with a tolerance, strings without case), a list (any of; a list argument: the same set),
    or an operator object: {regex}, {contains}, {gte, lte}, {absent}."""
    if isinstance(expected, dict) and expected and set(expected) <= OPERATORS:
        if expected.get("absent"):
            return got is None
        if got is None:
            return False
        if "regex" in expected and not re.search(str(expected["regex"]), str(got), re.I):
            return False
        if "contains" in expected:
            needle = str(expected["contains"]).lower()
            hay = [str(x).lower() for x in got] if isinstance(got, list) else str(got).lower()
            if needle not in hay:
                return False
        try:
            if "gte" in expected and float(got) < float(expected["gte"]) - 1e-9:
                return False
            if "lte" in expected and float(got) > float(expected["lte"]) + 1e-9:
                return False
        except (TypeError, ValueError):
            return False
        return True
    if isinstance(expected, list):
        if isinstance(got, list):
            return sorted(map(_norm, got)) == sorted(map(_norm, expected))
        return any(_equal(e, got) for e in expected)
    if isinstance(got, list) and len(got) == 1:
        got = got[0]  # a one-item list filter stands for its value
    return _equal(expected, got)


def _norm(v: Any) -> str:
    return str(v).strip().lower()


def _equal(expected: Any, got: Any) -> bool:
    if got is None or expected is None:
        return got is expected
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-6)
    return _norm(expected) == _norm(got)


def check_final(final: Final, state: State, order_ids: list[str], history: list[TurnRecord]) -> list[Failure]:
    """The end state against the expected one (stores in-process; tools' results over HTTP)."""
    out: list[Failure] = []
    if final.cart is not None:
        wanted: dict[str, int | None] = {}
        for line in final.cart.items:
            pid = line.product_id or (resolve(line.ref, history) if line.ref else None)
            if pid is None:
                out.append(Failure("cart", f"the card at {line.ref}", "no such card"))
                continue
            wanted[pid] = line.quantity
        for pid, qty in wanted.items():
            if pid not in state.cart:
                out.append(Failure("cart", f"{pid} in the cart", dict(state.cart)))
            elif qty is not None and state.cart[pid] != qty:
                out.append(Failure(f"cart.{pid}.quantity", qty, state.cart[pid]))
        if final.cart.exact and set(state.cart) - set(wanted):
            out.append(Failure("cart.exact", sorted(wanted), sorted(state.cart)))
    for want in final.orders:
        oid = order_ids[want.order - 1] if want.order <= len(order_ids) else None
        got = state.orders.get(oid) if oid else None
        if got is None:
            out.append(Failure(f"order {want.order}", "the order in the store", None))
            continue
        if want.status is not None and got["status"] != want.status:
            out.append(Failure(f"order {want.order}.status", want.status, got["status"]))
        if want.return_started is not None and bool(got["returns"]) != want.return_started:
            out.append(Failure(f"order {want.order}.return_started", want.return_started, got["returns"]))
    if final.handoff_open is not None and bool(state.handoffs) != final.handoff_open:
        out.append(Failure("handoff_open", final.handoff_open, state.handoffs))
    return out
