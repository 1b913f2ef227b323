"""One whole sentence checked against the facts: wrong prices and stock levels repaired; a sentence naming a product
the turn did not show, or saying a number, date, percentage, size, colour, material or feature the facts do not
hold, dropped whole."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.grounding.facts import Facts, format_price, stock_text
from assistant.grounding.patterns import MONEY, STOCK, amount_of
from retrieval.product import Product


def stock_claim_ok(m: re.Match[str], about: Product | None, facts: Facts) -> bool:
    """Does a STOCK match hold for `about` (or, with no product named, for every product of the facts)?"""
    products = [about] if about is not None else list(facts.products.values())
    if not products:
        return False
    if m.group("n") is not None:
        return about is not None and about.stock == int(m.group("n"))
    if m.group("neg") is not None:
        return all(not p.in_stock for p in products)
    return all(p.in_stock for p in products)


@dataclass
class Check:
    """The sentence as it may go out ("" when dropped), and what was held back or repaired."""

    text: str
    withheld: list[str]


def check_sentence(sentence: str, facts: Facts) -> Check:
    """Repair the sentence's prices and stock claims, or drop it whole for any other unbacked claim."""
    withheld: list[str] = []
    mentions = facts.mentions(sentence)
    only = list(facts.products.values()) if len(facts.products) == 1 else []
    subject = mentions[0][1] if len(mentions) == 1 else (only[0] if only else None)

    def subject_at(pos: int) -> Product | None:
        """The product a claim at `pos` is about: the last one named before it, else the sentence's subject."""
        before = [p for end, p in mentions if end <= pos]
        return before[-1] if before else subject

    foreign = facts.foreign_titles(sentence) or facts.unknown_names(sentence)
    if foreign:
        return Check("", [f"product not in the results: {n}" for n in foreign])

    def fix_price(m: re.Match[str]) -> str:
        amount = amount_of(m)
        about = subject_at(m.start())
        if about is not None and about.price is not None:
            right = format_price(about.price, about.currency)
            namesakes = [p for _, p in mentions if p.title.lower() == about.title.lower()]  # one title, two prices
            if any(p.price is not None and round(amount, 2) == round(p.price, 2) for p in [about, *namesakes]):
                return m.group(0)
            withheld.append(f"price {m.group(0).strip()} replaced by {right}")
            return right
        if round(amount, 2) in facts.amounts:
            return m.group(0)
        withheld.append(f"price {m.group(0).strip()} not in the results")
        return "the price shown on the card"

    text = MONEY.sub(fix_price, sentence)

    def fix_stock(m: re.Match[str]) -> str:
        about = subject_at(m.start())
        if about is None and not facts.products:
            withheld.append(f"stock claim {m.group(0)!r} with no product")
            return "availability unknown"
        if stock_claim_ok(m, about, facts):
            return m.group(0)
        withheld.append(f"stock claim {m.group(0)!r} not backed")
        if about is None:
            return "availability as shown on the cards"
        return stock_text(about) if about.stock is not None else "not confirmed in stock"

    text = STOCK.sub(fix_stock, text)
    # Checked after the repairs: a repaired stock level is the catalog's, and prices are not claims here.
    unbacked = facts.unbacked(text)
    if unbacked:
        return Check("", [f"{c.describe()} not in the results (sentence dropped)" for c in unbacked])
    return Check(text, withheld)
