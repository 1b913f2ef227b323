"""Shopping handlers: search, questions about shown products, variants ("does it come in black"), comparison."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from assistant import answers, leads
from assistant.dialogue.references import BASIC_COLORS, variant_search
from assistant.intents.need import content_words, covers, head_word, shopping_need, thing_named
from assistant.planning.plan import Handler, Plan, TurnContext, saying, showing
from assistant.tools.base import ToolResult
from retrieval.product import Product

# Colour words a query may hold that a new colour filter makes wrong ("red jackets" after "the blue one").
_COLOUR_WORDS = frozenset(BASIC_COLORS)
# The search tool's argument for each slot that narrows a search.
SEARCH_SLOTS = {
    "category": "category",
    "brand": "brand",
    "color": "color",
    "size": "size",
    "price_min": "min_price",
    "price_max": "max_price",
}


async def search(t: TurnContext) -> Plan:
    """Search the catalog for the shopping need (the message without its framing) and its slots; cards, and an
    answer over their facts — or, when nothing covers the need, "we don't carry" it, naming close categories."""
    s = t.slots
    previous = t.understood.refines
    if previous is not None:
        args = refined_search(previous, {arg: getattr(s, slot) for slot, arg in SEARCH_SLOTS.items()})
        args["limit"] = t.deps.search_results
        need = str(args["query"])
    else:
        need = shopping_need(t.message)
        query = need if content_words(need) else t.message
        args = {"query": query, "limit": t.deps.search_results}
        for slot, arg in SEARCH_SLOTS.items():
            value = getattr(s, slot)
            if value is not None:
                args[arg] = value
    result, items, products = await _search_in_colour(t, args)
    best = float(result.data.get("best_match", 0.0))
    if products and not covers(need, products, best, t.deps.min_relevance):
        t.trace.note("relevance_check", data={"verdict": "not carried", "need": need, "best_match": round(best, 4)})
        products = []
    if not products:
        closest = await asyncio.to_thread(t.deps.nearest_categories, need) if t.deps.nearest_categories else []
        named = thing_named(need)
        what = named if len(named) < 60 else "that"
        return showing([], items, fixed=answers.not_carried(what, closest))
    budget = {v for v in (s.price_min, s.price_max) if v is not None}
    return showing(
        products,
        items,
        prompt="answer",
        facts=t.facts(products, budget),
        variables={"facts": answers.products_facts(products), "message": t.message},
        fixed=answers.list_answer(products, t.message),
        lead=leads.budget_lead(products, s.price_min, s.price_max),
    )


def _names_colour(p: Product, words: list[str]) -> bool:
    """Whether the title names the colour (not the description: free text that may list other colours, or carry
    whatever a catalog row's author put there)."""
    title = set(re.findall(r"[a-z]+", p.title.lower()))
    return all(w in title for w in words)


async def _search_in_colour(
    t: TurnContext, args: dict[str, Any]
) -> tuple[ToolResult, dict[str, dict[str, Any]], list[Product]]:
    """Search; a colour asked for is a filter on the catalog's colour field, and, where that field is missing (a
    catalog without one, or records that leave it empty), the titles that name the colour ("Black and White Wall
    Art") count too: a wider search without the filter finds them."""
    colour = args.get("color")
    if not colour:
        plain = await t.call("search_products", args)
        return (plain, *t.search_results(plain))
    n = t.deps.search_results
    words = [w for w in re.findall(r"[a-z]+", colour.lower()) if w not in ("and", "with")]
    result: ToolResult | None = None
    items: dict[str, dict[str, Any]] = {}
    products: list[Product] = []
    if t.deps.color_field:
        result = await t.call("search_products", args)
        items, products = t.search_results(result)
        if len(products) >= n:
            return result, items, products
    wider = {k: v for k, v in args.items() if k != "color"}
    if not any(w in str(wider["query"]).lower() for w in words):
        wider["query"] = f"{colour.lower()} {wider['query']}"  # titles naming the colour are what it favours
    wider["limit"] = min(4 * n, 20)
    found = await t.call("search_products", wider)
    more_items, more = t.search_results(found)
    # In the colour, and still what was asked for: among the best matches, or naming the thing itself (a wider
    # search also finds a copper lamp for "a copper kettle").
    head = head_word(str(args["query"]))
    named = [
        p
        for rank, p in enumerate(more)
        if p.id not in items
        and _names_colour(p, words)
        and (rank < n or head is None or head in content_words(p.title))
    ]
    if not t.deps.color_field and not named:
        named = more  # no colour anywhere to go by: the query's words decide
    items |= {p.id: more_items[p.id] for p in named}
    # The relevance check reads the best match of the search whose results lead the list.
    lead = result if result is not None and products else found
    return lead, items, (products + named)[:n]


def refined_search(previous: dict[str, Any], changed: dict[str, Any]) -> dict[str, Any]:
    """The last search with the constraints the message changed: a new colour or brand replaces the old one (and
    leaves the query, where the old one was a word of it: "red jackets" → "jackets"); a new price bound replaces
    the old bound; everything else is kept."""
    args = {k: v for k, v in previous.items() if k in ("query", *SEARCH_SLOTS.values())}
    query = str(args.get("query") or "")
    for arg, value in changed.items():
        if value is None:
            continue
        old = args.get(arg)
        if isinstance(old, str) and arg in ("color", "brand"):
            query = " ".join(w for w in query.split() if w.lower() != old.lower())
        elif arg == "color":
            query = " ".join(w for w in query.split() if w.lower() not in _COLOUR_WORDS)
        args[arg] = value
    args["query"] = query.strip() or str(previous.get("query") or "")
    return args


async def product_question(t: TurnContext) -> Plan:
    """A question about products shown earlier ("how much is the second one"); a search when it points at none."""
    refs = t.resolution.product_ids
    if not refs and t.resolution.kind != "none":
        # "the second one" with nothing (or too little) shown: ask, don't search for the words.
        return saying(answers.unresolved(t.resolution, shown=len(t.shown[0])))
    if not refs:
        return await search(t)
    results = [await t.call("get_product", {"product_id": pid}) for pid in refs[:4]]
    products = t.products([pid for pid, r in zip(refs[:4], results, strict=True) if r.ok])
    if not products:
        return showing([], fixed=answers.NO_REFERENCE)
    # The question is answered from the record first; the model may add one sentence.
    lead = leads.product_lead(products[0], t.message) if len(products) == 1 else leads.products_lead(products)
    answer: dict[str, Any] = {"facts": t.facts(products), "fixed": answers.product_answer(products[0]), "lead": lead}
    if t.resolution.kind == "comparative" and len(products) == 1:
        return showing(products, **answer)  # "the cheaper one" is answered by the catalog fact itself
    if len(products) == 1:
        details = {"facts": answers.product_details(products[0]), "message": t.message}
        return showing(products, prompt="product", variables=details, **answer)
    listed = {"facts": answers.products_facts(products), "message": t.message}
    return showing(products, prompt="answer", variables=listed, **answer)


async def variant_question(t: TurnContext) -> Plan:
    """ "does it come in black": look for the same product in the asked colour (or check its size)."""
    constraint = t.resolution.constraint
    found = t.products(t.resolution.product_ids[:1])
    if constraint is None or not found:
        return await product_question(t)
    product = found[0]
    variant = variant_search(product, constraint)
    args: dict[str, Any] = {"query": variant.query, "limit": t.deps.search_results}
    if constraint.color and product.color:
        args["color"] = constraint.color
    elif constraint.color:
        # This catalog keeps colours in titles, not in a field: search for it and check the title.
        args["query"] = f"{constraint.color} {variant.query}"
    if variant.size:
        args["size"] = variant.size
    if product.category:
        args["category"] = product.category
    result = await t.call("search_products", args)
    items, products = t.search_results(result)
    if constraint.color and not product.color:
        colour = constraint.color.lower()
        products = [p for p in products if colour in p.title.lower() or colour == (p.color or "").lower()]
    wanted = " ".join(filter(None, [constraint.color, f"size {variant.size}" if variant.size else None]))
    if not products:
        return showing([product], fixed=f"Sorry, I couldn't find the {product.title} in {wanted}.")
    return showing(
        products,
        items,
        prompt="answer",
        facts=t.facts(products),
        variables={"facts": answers.products_facts(products), "message": t.message},
        fixed=f"Here is what we have in {wanted}: " + answers.list_answer(products, t.message),
    )


async def compare(t: TurnContext) -> Plan:
    """Compare the products referred to, or the first two of the latest list."""
    refs = t.resolution.product_ids
    ids = refs if len(refs) >= 2 else [p.id for p in t.shown[0][:2]]
    if len(ids) < 2:
        return saying("Which products should I compare? Search first, then ask me to compare them.")
    result = await t.call("compare_products", {"product_ids": ids[:4]})
    products = t.products(ids[:4]) if result.ok else []
    return showing(
        products,
        lead=leads.compare_lead(products) if len(products) >= 2 else None,
        prompt="answer",
        facts=t.facts(products),
        variables={"facts": answers.products_facts(products), "message": t.message},
        fixed=answers.compare_answer(products),
    )


INTENTS: dict[str, Handler] = {
    "search_products": search,
    "product_question": product_question,
    "variant_question": variant_question,
    "compare_products": compare,
}
