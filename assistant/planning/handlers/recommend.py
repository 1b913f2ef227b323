"""Recommendations and gifts (the `recommendation` intent, and gift requests the rewrite rules send here).

A suggestion is not a search for the message's words ("any gift ideas for my brother? about $40" names no product):
it is a soft budget around what was said, the categories the recipient, their interests or the occasion point to
(`gift_words.yaml`, where this catalog has them), then the shopper's own profile and the search's quality prior.
When the catalog has products in the budget it shows at least three and says why, from the records; a request that
names no product never gets "we don't carry".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from assistant import answers
from assistant.intents.need import request_text
from assistant.planning.gift_words import Wish, load_gift_words
from assistant.planning.handlers.catalog import search
from assistant.planning.handlers.cheaper import CHEAPER, cheaper
from assistant.planning.plan import Handler, Plan, TurnContext, saying, showing
from assistant.planning.suggest import MIN_SHOWN, POOL, SoftBudget, and_join, listing, soft_budget
from retrieval.product import Product

LEAD_SHARE = 0.7  # of the cards, for the categories the shopper's profile favours when they lead
PROFILE_CATEGORIES = 4  # at most this many of the profile's categories lead, those within half of its strongest
NEAR = 0.1  # what a price's distance from the budget's target (as a log ratio) costs a candidate


@dataclass
class Candidate:
    product: Product
    score: float
    item: dict[str, Any]


@dataclass(frozen=True)
class Group:
    """Categories that share a number of the cards: `lanes` take turns (None: any category, spread by top level)."""

    lanes: tuple[str, ...] | None
    quota: int


async def recommend(t: TurnContext) -> Plan:
    """Gift ideas and open suggestions: budget, recipient/interest/occasion categories, then profile and quality."""
    wish = load_gift_words().read(request_text(t.message), t.deps.vocab)
    budget = soft_budget(t.message, t.slots)
    n = max(t.deps.search_results, MIN_SHOWN)
    named = _named_category(t)
    words_lanes = [named] if named else wish.categories("interest") or wish.categories("recipient")
    occasion = wish.categories("occasion")
    if wish.content and not words_lanes and not occasion:
        # A need in the shopper's words ("something to keep me warm"): a search, unless nothing matches it.
        return await _need(t, wish, budget, n)
    favoured = _favoured(t)
    groups, led = _groups(t, words_lanes, occasion, favoured, n)
    query = _query(wish)
    picks, items, best = await _pick(t, query, groups, budget, n, diverse=not wish.content)
    # Never "we don't carry" while the store has something in the budget: when the categories hold too little of
    # it, the rest of the store (of the asked-for kind only, when one was named) up to three, then for "about $X"
    # below the soft floor too. Without a budget a short list stands: two dog toys beat three unrelated things.
    budgets = [budget] + ([replace(budget, low=None)] if budget is not None and budget.loose_floor else [])
    fitting = len(picks)
    for wider in budgets:
        if len(picks) >= MIN_SHOWN or (wider is None and picks):
            break
        k = MIN_SHOWN - len(picks)
        more, more_items, _ = await _pick(
            t, query, [Group((named,) if named else None, k)], wider, k, diverse=True, skip=picks
        )
        picks, items = picks + more, {**items, **more_items}
    if not picks:
        return await _nothing_fits(t, named, budget)
    missing = " ".join(wish.content) if wish.content and not named and best < t.deps.min_relevance else None
    widened = len(picks) > fitting and any(g.lanes for g in groups)
    lead = _why(wish, named, budget, led, picks, missing, widened=widened)
    amounts = {v for v in ((budget.low, budget.high, budget.target) if budget else ()) if v is not None}
    return showing(
        picks,
        items,
        lead=lead,
        prompt="answer",
        facts=t.facts(picks, amounts),
        variables={"facts": answers.products_facts(picks), "message": t.message},
        fixed=lead,
    )


def _named_category(t: TurnContext) -> str | None:
    """The product kind the message names ("a necklace for my wife"), unless its word is one of the gift words
    ("christmas" is an occasion, "cooking" an interest, "gift" a request, even where a catalog has such a category)."""
    category = t.slots.category
    return None if category is None or load_gift_words().names(category) else category


def _favoured(t: TurnContext) -> list[str]:
    """The catalog categories the shopper's profile favours most (none without a profile)."""
    lookup = t.deps.shopper_profile
    profile = lookup(t.inp.session.shopper_id) if lookup is not None else None
    if profile is None or not profile.categories:
        return []
    strongest = max(profile.categories.values())
    out: list[str] = []
    for name, weight in sorted(profile.categories.items(), key=lambda kv: -kv[1]):
        canonical = t.deps.vocab.canonical("category", name)
        if weight >= strongest / 2 and canonical is not None and canonical not in out:
            out.append(canonical)
    # A category and its parent both favoured (fishing, outdoors): the parent, whose lane holds both.
    out = [c for c in out if not t.deps.vocab.ancestors(c) & set(out)]
    return out[:PROFILE_CATEGORIES]


def _groups(
    t: TurnContext, words: Sequence[str], occasion: Sequence[str], favoured: Sequence[str], n: int
) -> tuple[list[Group], list[str]]:
    """Which categories share the cards, and those the shopper's profile led. The message's product kind,
    interest or recipient bounds them, the profile's categories among those going first; without such words the
    profile leads and an occasion (or the whole store) fills the rest; a new shopper with no words gets the
    occasion's categories, or a spread over the store."""
    lead = math.ceil(LEAD_SHARE * n)
    if words:
        liked = {f.lower() for f in favoured}
        mine = tuple(c for c in words if {c.lower(), *(a.lower() for a in t.deps.vocab.ancestors(c))} & liked)
        rest = tuple(c for c in words if c not in mine)
        if mine and rest:
            return [Group(mine, lead), Group(rest, n - lead)], list(mine)
        return [Group(tuple(words), n)], list(mine)
    if favoured:
        return [Group(tuple(favoured), lead), Group(tuple(occasion) or None, n - lead)], list(favoured)
    return [Group(tuple(occasion) or None, n)], []


def _query(wish: Wish) -> str:
    """What the searches look for: the message's own product words, else what the gift words say."""
    if wish.content:
        return " ".join(wish.content)
    parts = [f.entry.likes or "" for f in wish.of("interest")] + [f.entry.word for f in wish.of("occasion")]
    parts.append("gift")
    parts += [f"for {f.entry.word}" for f in wish.of("recipient")[:1]]
    return " ".join(p for p in parts if p)


async def _pick(
    t: TurnContext,
    query: str,
    groups: Sequence[Group],
    budget: SoftBudget | None,
    n: int,
    *,
    diverse: bool,
    skip: Sequence[Product] = (),
) -> tuple[list[Product], dict[str, dict[str, Any]], float]:
    """Up to `n` products: each group searched within its categories and the budget, its lanes taking turns (or,
    for a need in the shopper's words, best first), the rest filled from any group's leftovers; and how well the
    best result matched the query (raw cosine)."""
    best = 0.0
    taken: list[Product] = []
    seen = {p.id for p in skip}
    items: dict[str, dict[str, Any]] = {}
    leftovers: list[Candidate] = []
    for group in groups:
        args: dict[str, Any] = {"query": query, "limit": POOL, **(budget.args() if budget else {})}
        if group.lanes:
            args["category"] = list(group.lanes)
        result = await t.call("search_products", args)
        found, products = t.search_results(result)
        items.update(found)
        best = max(best, float(result.data.get("best_match", 0.0)) if result.ok else 0.0)
        pool = [
            Candidate(
                p,
                float(found[p.id].get("score") or 0.0) - NEAR * (budget.distance(p.price) if budget else 0.0),
                found[p.id],
            )
            for p in products
            if p.id not in seen and p.stock != 0  # a gift that can't be bought is no suggestion
        ]
        pool.sort(key=lambda c: -c.score)
        chosen = _take(pool, group.lanes, group.quota, diverse)
        for c in chosen:
            seen.add(c.product.id)
        taken += [c.product for c in chosen]
        leftovers += [c for c in pool if c.product.id not in seen]
    leftovers.sort(key=lambda c: -c.score)
    for c in leftovers:
        if len(taken) >= n:
            break
        if c.product.id not in seen:
            seen.add(c.product.id)
            taken.append(c.product)
    return taken[:n], items, best


def _take(pool: list[Candidate], lanes: tuple[str, ...] | None, quota: int, diverse: bool) -> list[Candidate]:
    """`quota` candidates: lanes in turn, each its best remaining one (no lanes: spread over top-level categories),
    or simply the best ones when the shopper's own words rank them."""
    if not diverse:
        return pool[:quota]
    if lanes:
        keys = [lane.lower() for lane in lanes]
        member = {id(c): next((k for k in keys if k in _path(c.product)), None) for c in pool}
    else:
        top = [c.product.category_path[0].lower() if c.product.category_path else "" for c in pool]
        keys = list(dict.fromkeys(top))
        member = {id(c): k for c, k in zip(pool, top, strict=True)}
    queues = {k: [c for c in pool if member[id(c)] == k] for k in keys}
    out: list[Candidate] = []
    while len(out) < quota and any(queues.values()):
        for k in keys:
            if queues[k] and len(out) < quota:
                out.append(queues[k].pop(0))
    return out


def _path(p: Product) -> set[str]:
    return {c.lower() for c in p.category_path}


def _why(
    wish: Wish,
    named: str | None,
    budget: SoftBudget | None,
    led: Sequence[str],
    picks: Sequence[Product],
    missing: str | None = None,
    widened: bool = False,
) -> str:
    """The answer's first sentence: who or what it is for, the budget, and the first picks with their prices."""
    recipient, interest, occasion = wish.of("recipient")[:1], wish.of("interest")[:1], wish.of("occasion")[:1]
    parts: list[str] = []
    if recipient:
        parts.append(recipient[0].phrase())
        if interest:
            parts.append(f"who likes {interest[0].phrase()}")
    elif interest:
        parts.append(f"for someone who likes {interest[0].phrase()}")
    if occasion:
        parts.append(occasion[0].phrase())
    head = " ".join(parts)
    if not head and led:
        head = f"based on what you've been browsing ({and_join(led)})"
    elif led:
        head += f", leaning to {and_join(led)} as you've browsed"
    if not head:
        head = f"some {named} ideas" if named else "some ideas" if wish.content else "a few ideas from around the store"
    if budget is not None:
        head += f", {budget.said}"
    if widened:
        head += " (little of the usual fits, so these come from across the store)"
    text = f"{head}: {listing(picks)}."
    text = text[0].upper() + text[1:]
    return f"I couldn't find {missing}. {text}" if missing else text


async def _need(t: TurnContext, wish: Wish, budget: SoftBudget | None, n: int) -> Plan:
    """A suggestion for a need in the shopper's words: the catalog search answers it (and says when the store has
    nothing like it); within a budget, picks near its target."""
    if budget is None:
        return await search(t)
    args: dict[str, Any] = {"query": t.message, "limit": POOL, **budget.args()}
    result = await t.call("search_products", args)
    items, products = t.search_results(result)
    if len(products) < MIN_SHOWN or result.data.get("best_match", 0.0) < t.deps.min_relevance:
        return await search(t)
    scored = sorted(
        products[: 2 * n], key=lambda p: -(float(items[p.id].get("score") or 0.0) - NEAR * budget.distance(p.price))
    )
    picks = scored[:n]
    lead = _why(wish, None, budget, [], picks)
    return showing(
        picks,
        items,
        lead=lead,
        prompt="answer",
        facts=t.facts(picks, {v for v in (budget.low, budget.high, budget.target) if v is not None}),
        variables={"facts": answers.products_facts(picks), "message": t.message},
        fixed=lead,
    )


async def _nothing_fits(t: TurnContext, named: str | None, budget: SoftBudget | None) -> Plan:
    """Nothing in the budget: say so, and show the most affordable of what was asked for."""
    args: dict[str, Any] = {"query": named or "gift", "limit": POOL}
    if named:
        args["category"] = named
    result = await t.call("search_products", args)
    items, products = t.search_results(result)
    cheapest = sorted((p for p in products if p.price is not None), key=lambda p: p.price or 0.0)[:MIN_SHOWN]
    what = named or "anything"
    within = f" {budget.said}" if budget else ""
    if not cheapest:
        return saying(f"I couldn't find {what}{within}. Tell me a little more about what you have in mind?")
    text = f"I couldn't find {what}{within}; the most affordable I have are {listing(cheapest)}."
    return showing(cheapest, items, lead=text, fixed=text, facts=t.facts(cheapest))


INTENTS: dict[str, Handler] = {"recommendation": recommend, CHEAPER: cheaper}
