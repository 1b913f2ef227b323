"""One whole sentence checked against the facts: wrong prices and stock levels repaired; a sentence dropped whole
when it names a product the turn did not show; says a number, date, percentage, size, colour, material or feature
the facts do not hold; carries markup or a link; or offers a coupon, discount, refund or free item (or claims a
change was made) that no tool result or policy states."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.grounding.facts import Facts, Mention, format_price, stock_text
from assistant.grounding.patterns import MARKUP, MONEY, STOCK, amount_of
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
    """Repair the sentence's prices and stock claims, or drop it whole for any other unbacked claim, and for a price
    whose product is not sure: a repair never makes a price that belongs to a product the sentence names into
    another product's price."""
    withheld: list[str] = []
    named = facts.named(sentence)
    only = list(facts.products.values()) if len(facts.products) == 1 else []
    subject = named[0] if len(named) == 1 else None

    def subject_at(pos: int) -> Mention | None:
        """The mention a claim at `pos` is about: the last one named before it, else the sentence's subject."""
        before = [m for m in named if m.end <= pos]
        return before[-1] if before else subject

    def about_at(pos: int) -> Product | None:
        m = subject_at(pos)
        return m.product if m is not None else (only[0] if only else None)

    foreign = facts.foreign_titles(sentence) or facts.unknown_names(sentence)
    if foreign:
        return Check("", [f"product not in the results: {n}" for n in foreign])
    unsure: list[str] = []

    def fix_price(m: re.Match[str]) -> str:
        amount = round(amount_of(m), 2)
        said = m.group(0).strip()
        mention = subject_at(m.start())
        about = mention.product if mention is not None else (only[0] if only else None)
        if about is not None and about.price is not None:
            # Products named by the same words (one title, or one shortened title, for two products) may each be meant.
            span = (mention.start, mention.end) if mention is not None else None
            alike = [n.product for n in named if (n.start, n.end) == span]
            if any(p.price is not None and amount == round(p.price, 2) for p in [about, *alike]):
                return m.group(0)
            owners = [p for p in facts.products.values() if p.price is not None and amount == round(p.price, 2)]
            if any(n.product in owners for n in named) or (owners and (mention is None or mention.how == "words")):
                # The price is one a named product has, or the product is known only by some of its words while
                # another shown product has this price: which product is meant is not sure, so nothing is repaired.
                unsure.append(f"price {said} belongs to the {owners[0].title}, said of the {about.title}")
                return m.group(0)
            if len({p.id for p in [about, *alike]}) > 1:
                unsure.append(f"price {said} said of {len(alike)} products named alike")
                return m.group(0)
            right = format_price(about.price, about.currency)
            withheld.append(f"price {said} replaced by {right}")
            return right
        if amount in facts.amounts:
            return m.group(0)
        withheld.append(f"price {said} not in the results")
        return "the price shown on the card"

    text = MONEY.sub(fix_price, sentence)
    if unsure:
        return Check("", [f"{u} (sentence dropped)" for u in unsure])

    def fix_stock(m: re.Match[str]) -> str:
        about = about_at(m.start())
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
    markup = [m.group(0) for m in MARKUP.finditer(text) if m.group(0) not in " ".join(facts.names)]
    if markup:
        return Check("", [f"markup or link {m[:60]!r} (sentence dropped)" for m in markup])
    offers = facts.unbacked_offers(text)
    if offers:
        return Check("", [f"offer or done-claim {o!r} not in the results (sentence dropped)" for o in offers])
    return Check(text, withheld)
