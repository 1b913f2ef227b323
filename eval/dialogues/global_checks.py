"""Checks run on every turn of every scenario: the stream's structure, product ids the catalog holds, and whether
every price, stock level and product name in the answer is backed by the turn's facts.

The grounding check here is the evaluation's own, written from the turn's events and trace: the cards shown,
the tools' results (products, orders, cart, policy passages) and the shopper's own message. A violation is a
claim none of them backs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.grounding import CatalogTitles, amounts_in, format_price
from assistant.leads import asked
from eval.dialogues.record import TurnRecord
from retrieval.product import Product

STOCK_COUNT = re.compile(r"\b(\d+)\s+(?:units?\s+|pieces?\s+|items?\s+)?(?:left|in stock|available|remaining)\b", re.I)
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
EVENT_ID = re.compile(r"^(?P<turn>[0-9a-f]{32}):(?P<seq>\d+)$")


@dataclass
class Grounding:
    """One answer's unbacked claims."""

    prices: list[float] = field(default_factory=list)
    stock: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    misattributed: list[str] = field(default_factory=list)  # a real price, said of the wrong product

    @property
    def violations(self) -> int:
        return len(self.prices) + len(self.stock) + len(self.names) + len(self.misattributed)

    def to_json(self) -> dict[str, Any]:
        return {"prices": self.prices, "stock": self.stock, "names": self.names, "misattributed": self.misattributed}


def stream_problems(rec: TurnRecord) -> list[str]:
    """What is wrong with the event stream's shape: session first, one done last, ids `<turn>:<seq>` in order."""
    if rec.error is not None:
        return []  # refused before the stream: the request check reports it
    names = [e.name for e in rec.events]
    out = []
    if not names or names[0] != "session":
        out.append(f"first event is {names[0] if names else 'missing'}, not session")
    if names.count("done") != 1 or (names and names[-1] != "done"):
        out.append(f"{names.count('done')} done events; last event {names[-1] if names else 'missing'}")
    ids = [e.id for e in rec.events]
    if len(set(ids)) != len(ids):
        out.append("repeated event ids")
    for seq, ev in enumerate(rec.events):
        m = EVENT_ID.match(ev.id or "")
        if m is None or m.group("turn") != rec.turn_id or int(m.group("seq")) != seq:
            out.append(f"event {seq} has id {ev.id!r}, expected '{rec.turn_id}:{seq}'")
            break
    return out


def unknown_products(rec: TurnRecord, catalog: dict[str, Product]) -> list[str]:
    """Card ids and product citations the catalog does not hold (a hallucinated product)."""
    ids = [str(c.get("id")) for c in rec.cards]
    ids += [c.split(":", 1)[1] for c in rec.citations if c.startswith("product:")]
    return sorted({i for i in ids if i not in catalog})


def wrong_card_prices(rec: TurnRecord, catalog: dict[str, Product]) -> list[str]:
    """Cards whose price differs from the catalog's."""
    out = []
    for card in rec.cards:
        product = catalog.get(str(card.get("id")))
        if product is not None and _price(card.get("price")) != _price(product.price):
            out.append(f"{product.id}: card {card.get('price')} vs catalog {product.price}")
    return out


def _price(v: Any) -> float | None:
    return None if v is None else round(float(v), 2)


def grounding(rec: TurnRecord, catalog: dict[str, Product], titles: CatalogTitles) -> Grounding:
    """The answer's prices, stock levels and product names that nothing in the turn backs, and prices stated of a
    product (named alone in its sentence) that are another product's."""
    answer = rec.answer
    result = Grounding()
    if not answer:
        return result
    product_ids = {str(c.get("id")) for c in rec.cards}
    other: set[float] = set(amounts_in(rec.message))  # amounts that are no product's price: budgets, totals
    stock: set[int] = set()
    texts: list[str] = []
    for call in rec.tool_calls():
        _walk(call.get("data"), product_ids, other, stock, texts)
    for text in texts:
        other.update(amounts_in(text))
    prices: dict[str, float] = {}
    for pid in product_ids:
        p = catalog.get(pid)
        if p is not None:
            if p.price is not None:
                prices[pid] = round(p.price, 2)
            if p.stock is not None:
                stock.add(p.stock)
    known = {round(a, 2) for a in other} | set(prices.values())
    result.prices = [a for a in amounts_in(answer) if round(a, 2) not in known]
    result.stock = [int(m.group(1)) for m in STOCK_COUNT.finditer(answer) if int(m.group(1)) not in stock]
    result.names = [title for title, ids in titles.named_in(answer) if not set(ids) & product_ids]
    allowed_other = {round(a, 2) for a in other}
    shown = {pid: catalog[pid].title for pid in prices}
    for sentence in SENTENCE.split(answer):
        named = [[pid for pid in ids if pid in prices] for _, ids in titles.named_in(sentence)]
        named = [ids for ids in named if ids] or shortened_titles(sentence, shown)
        if len(named) != 1:
            continue
        own = {prices[pid] for pid in named[0]}  # several products may share the title
        for amount in amounts_in(sentence):
            a = round(amount, 2)
            if a not in own and a not in allowed_other and a in known:
                title = catalog[named[0][0]].title
                result.misattributed.append(f"${a:.2f} said of {title} (catalog ${min(own):.2f})")
    return result


# An answer that shortens a long title says its first words: at least this many, two longer than two letters.
SHORT_TITLE_WORDS = 3
WORDS = re.compile(r"[a-z0-9]+")


def shortened_titles(sentence: str, shown: dict[str, str]) -> list[list[str]]:
    """The shown products (id -> title) whose titles `sentence` says the first words of, grouped by the words said,
    in text order; a shortened title inside a longer one's words is that one's ("Stemless Wine Glasses (Set of 4)"
    inside "GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz")."""
    low = sentence.lower()
    spans: dict[tuple[int, int], list[str]] = {}
    for pid, title in shown.items():
        title = title.lower()
        words = list(WORDS.finditer(title))
        for n in range(len(words), SHORT_TITLE_WORDS - 1, -1):
            if sum(len(w.group(0)) > 2 for w in words[:n]) < 2:
                break
            start = title[: words[n - 1].end()]
            whole = rf"(?<![a-z0-9]){re.escape(start)}(?![a-z0-9])"  # whole words of the sentence
            if (m := re.search(whole, low)) is not None:
                spans.setdefault(m.span(), []).append(pid)
                break
    kept = [s for s in spans if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans)]
    return [spans[s] for s in sorted(kept)]


def _walk(data: Any, ids: set[str], amounts: set[float], stock: set[int], texts: list[str]) -> None:
    """Collect what a tool result states: product ids, money amounts other than catalog prices (totals,
    subtotals, refunds, prices paid), stock counts and passage texts. Catalog prices come from the catalog by id."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("id", "product_id") and isinstance(value, str):
                ids.add(value)
            elif key in ("subtotal", "total", "refund_amount", "unit_price") and isinstance(value, int | float):
                amounts.add(float(value))  # unit_price: what an order was paid; the catalog's price may differ now
            elif key == "price":
                continue  # a catalog price: taken from the catalog by the product's id
            elif key == "stock" and isinstance(value, int):
                stock.add(value)
            elif key == "text" and isinstance(value, str):
                texts.append(value)
            else:
                _walk(value, ids, amounts, stock, texts)
    elif isinstance(data, list):
        for item in data:
            _walk(item, ids, amounts, stock, texts)


def catalog_titles(catalog: dict[str, Product]) -> CatalogTitles:
    return CatalogTitles(catalog.values())



DIRECT = {"price", "stock"}


def direct_answer(rec: TurnRecord, catalog: dict[str, Product]) -> bool | None:
    """For a price or stock question about products the message referred to (a product question): whether the
    answer's first sentence states the asked value (the catalog's price; its stock count, or that it is out of
    stock) for one of them. None for any other turn."""
    wanted = DIRECT & set(asked(rec.message))
    refs = [catalog[str(r)] for r in rec.intent.get("references") or [] if str(r) in catalog]
    if not wanted or not refs or rec.error is not None or rec.intent.get("intent") != "product_question":
        return None
    first = SENTENCE.split(rec.answer.strip(), maxsplit=1)[0].lower() if rec.answer else ""
    for p in refs:
        ok = True
        if "price" in wanted and p.price is not None:
            ok &= format_price(p.price, p.currency).lower() in first
        if "stock" in wanted and p.stock is not None:
            ok &= (f"{p.stock} " in first and "stock" in first) if p.in_stock else "out of stock" in first
        if ok:
            return True
    return False
