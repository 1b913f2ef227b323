""" "Something cheaper" after a list (the `cheaper_alternatives` intent a rewrite rule gives it): the same kind of
product as shown, for less, not a search for the words "something cheaper"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from statistics import median
from typing import Any

from assistant import answers
from assistant.grounding import format_price
from assistant.planning.plan import Plan, TurnContext, saying, showing
from assistant.planning.suggest import POOL, and_join, listing
from assistant.sessions.models import Session
from retrieval.product import Product

CHEAPER = "cheaper_alternatives"


async def cheaper(t: TurnContext) -> Plan:
    """The kind shown (the last search's categories and filters), under the cheapest price shown; when that one
    is already the cheapest of its kind, the others that cost less than most of those shown."""
    shown, _ = t.shown
    # "The second one is too expensive": cheaper than that one; "anything cheaper?": than all of them.
    basis = t.products(t.resolution.product_ids) or shown
    priced = [p for p in basis if p.price is not None]
    if not priced:
        return saying("Cheaper than what? Tell me what you're looking for, and a budget if you have one.")
    cheapest = min(priced, key=lambda p: p.price or 0.0)
    previous = _previous_search(t.inp.session, [p.id for p in shown])
    asked = previous.get("category")
    lanes = [asked] if isinstance(asked, str) else list(asked or []) or [_common_category(shown)]
    args: dict[str, Any] = {
        "query": previous.get("query") or " ".join(lanes),
        "limit": POOL,
        "category": lanes,
        **{k: previous[k] for k in ("brand", "color", "size") if previous.get(k)},
    }
    kind = and_join(lanes) if lanes[0] else "products"
    shown_ids = {p.id for p in shown}
    below = t.slots.price_max if t.slots.price_max is not None else (cheapest.price or 0.0)
    picks, items = await _under(t, args, below, shown_ids)
    lead = f"Cheaper than the ones I showed: {listing(picks)}." if picks else ""
    if not picks and len(priced) > 1:
        under_most = median(p.price or 0.0 for p in priced)
        picks, items = await _under(t, args, under_most, shown_ids)
        if picks:
            picks = [cheapest, *picks][: t.deps.search_results]
            lead = (
                f"The {cheapest.title} ({format_price(cheapest.price or 0.0, cheapest.currency)}) is the lowest-priced "
                f"{kind} here; these cost less than most of what I showed: {listing(picks[1:])}."
            )
    if not picks:
        price = format_price(cheapest.price or 0.0, cheapest.currency)
        text = f"The {cheapest.title} at {price} is the lowest-priced {kind} I have."
        return showing([cheapest], lead=text, fixed=text, facts=t.facts([cheapest]))
    return showing(
        picks,
        items,
        lead=lead,
        prompt="answer",
        facts=t.facts(picks),
        variables={"facts": answers.products_facts(picks), "message": t.message},
        fixed=lead,
    )


async def _under(
    t: TurnContext, args: dict[str, Any], price: float, shown: set[str]
) -> tuple[list[Product], dict[str, dict[str, Any]]]:
    """Products like the last search's, priced under `price`, not among those shown."""
    if price <= 0:
        return [], {}
    result = await t.call("search_products", {**args, "max_price": round(price - 0.01, 2)})
    items, products = t.search_results(result)
    return [p for p in products if p.id not in shown and p.stock != 0][: t.deps.search_results], items


def _previous_search(session: Session, ids: Sequence[str]) -> dict[str, Any]:
    """The arguments of the search that found the products shown last (empty when another step showed them)."""
    for turn in reversed(session.turns):
        if turn.finished and turn.product_ids and set(ids) <= set(turn.product_ids):
            calls = [c for c in turn.tool_trace if c.get("name") == "search_products" and c.get("ok")]
            args = calls[0].get("arguments") if len(calls) == 1 else None
            return dict(args) if isinstance(args, dict) else {}
    return {}


def _common_category(products: Sequence[Product]) -> str:
    counts = Counter(p.category for p in products if p.category)
    return counts.most_common(1)[0][0] if counts else ""
