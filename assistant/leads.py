"""Fact-first sentences: the answer's opening, built from the catalog records for what the shopper asked (price,
stock, colour, size, material, brand, rating; a comparison; a result list). They go out before the model says
anything, so a direct question is answered correctly and at once, whatever the model adds after them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.grounding import format_price
from retrieval.product import Product

ASPECTS: dict[str, re.Pattern[str]] = {
    "price": re.compile(r"\b(?:how much|price|prices|cost|costs|costing|pricey|expensive|cheap)\b", re.I),
    "stock": re.compile(r"\b(?:in stock|stock|available|availability|left|sold out|have it|have any)\b", re.I),
    "colour": re.compile(r"\b(?:colou?rs?|shades?)\b", re.I),
    "size": re.compile(r"\b(?:sizes?|fit|fits|dimensions?|how (?:big|large|small|tall|wide|long))\b", re.I),
    "material": re.compile(r"\b(?:material|made of|made from|fabric)\b", re.I),
    "brand": re.compile(r"\b(?:brand|who makes|made by|manufacturer)\b", re.I),
    "rating": re.compile(r"\b(?:rating|rated|reviews?|stars?)\b", re.I),
}
COLOURS = (
    "black white red blue green yellow orange purple pink brown grey gray beige navy silver gold ivory cream "
    "teal turquoise maroon burgundy tan khaki olive charcoal"
).split()
MATERIALS = (
    "leather suede cotton wool linen silk denim cashmere polyester nylon canvas rubber wood wooden bamboo steel "
    "stainless aluminium aluminum ceramic porcelain glass marble plastic velvet"
).split()


def asked(message: str) -> list[str]:
    """The aspects a question asks about, in the order it names them."""
    found = [(m.start(), name) for name, rx in ASPECTS.items() if (m := rx.search(message))]
    return [name for _, name in sorted(found)]


def price_text(p: Product) -> str | None:
    return format_price(p.price, p.currency) if p.price is not None else None


def stock_clause(p: Product) -> str:
    if p.stock is None:
        return "its stock isn't listed"
    if not p.in_stock:
        return "it's out of stock"
    return f"{p.stock} {'is' if p.stock == 1 else 'are'} in stock"


def _words_in(p: Product, vocabulary: Sequence[str]) -> list[str]:
    text = " ".join([p.title, p.description or "", *p.bullet_points, *map(str, p.attributes.values())]).lower()
    return [w for w in vocabulary if re.search(rf"\b{re.escape(w)}\b", text)]


def aspect_sentence(p: Product, aspect: str) -> str | None:
    """One sentence on one aspect, from the record alone (None for price and stock: `product_lead` joins them)."""
    if aspect == "colour":
        colours = [p.color.lower()] if p.color else _words_in(p, COLOURS)
        return f"Its colour is {' and '.join(colours)}." if colours else "The catalog doesn't list its colour."
    if aspect == "size":
        sizes = p.attributes.get("sizes") or p.attributes.get("size")
        return f"It comes in {sizes}." if sizes else "The catalog doesn't list sizes for it."
    if aspect == "material":
        found = [str(p.attributes["material"])] if p.attributes.get("material") else _words_in(p, MATERIALS)
        return f"The catalog describes it as {', '.join(found)}." if found else "The catalog doesn't say its material."
    if aspect == "brand":
        return f"It's made by {p.brand}." if p.brand else "The catalog doesn't list its brand."
    if aspect == "rating":
        if p.rating is None:
            return "It has no rating yet."
        count = f" from {p.rating_count} reviews" if p.rating_count else ""
        return f"It's rated {p.rating:g} out of 5{count}."
    return None


def product_lead(p: Product, message: str) -> str:
    """What the record says about what was asked; price and stock when nothing in particular was."""
    aspects = asked(message) or ["price", "stock"]
    parts: list[str] = []
    if "price" in aspects or "stock" in aspects or not set(aspects) - {"price", "stock"}:
        price = price_text(p)
        head = f"The {p.title} costs {price}" if price else f"The {p.title}'s price isn't listed"
        parts.append(f"{head}, and {stock_clause(p)}." if "stock" in aspects or len(aspects) > 1 else f"{head}.")
    else:
        parts.append(f"About the {p.title}:")
    parts += [s for a in aspects if (s := aspect_sentence(p, a))]
    return " ".join(parts)


def products_lead(products: Sequence[Product]) -> str:
    """Each product's price and stock, in the order shown."""
    items = [f"the {p.title} costs {price_text(p) or 'an unlisted price'} ({stock_clause(p)})" for p in products]
    text = "; ".join(items)
    return text[0].upper() + text[1:] + "."


def budget_lead(products: Sequence[Product], low: float | None, high: float | None) -> str | None:
    """For a search with a budget: the best match's price and stock, so the answer states the figure asked about."""
    best = next((p for p in products if p.price is not None), None)
    if best is None or (low is None and high is None):
        return None
    return f"The best match in your price range is the {best.title} at {price_text(best)} ({stock_clause(best)})."


def compare_lead(products: Sequence[Product]) -> str:
    """The products side by side on price, stock and rating, and which is cheaper, from the records."""
    parts = [products_lead(products)]
    priced = [p for p in products if p.price is not None]
    if len(priced) >= 2:
        cheap = min(priced, key=lambda p: p.price or 0.0)
        dear = max(priced, key=lambda p: p.price or 0.0)
        if cheap.price != dear.price:  # which, not by how much: every amount said is one the records hold
            parts.append(f"The {cheap.title} is the cheaper one.")
    rated = [p for p in products if p.rating is not None]
    if len(rated) >= 2:
        best = max(rated, key=lambda p: p.rating or 0.0)
        parts.append(f"The {best.title} has the best rating, {best.rating:g} out of 5.")
    return " ".join(parts)
