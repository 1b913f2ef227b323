"""What an answer may state (`Facts`, `CatalogTitles`) and how prices and stock are written."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from assistant.grounding.claims import Claim, Values, claims_in
from assistant.grounding.patterns import CAPITALISED_RUN, COMMON, DONE, MONEY, OFFER, WORD, amount_of
from retrieval.product import Product

DECIMAL = re.compile(r"\d+(?:\.\d+)?")
DESCRIPTION_CHARS = 2_000  # of a record's description, as facts (the prompts show less of it)
BULLETS = 20


def amounts_in(text: str) -> list[float]:
    """Every money amount `text` states, in order."""
    return [amount_of(m) for m in MONEY.finditer(text)]


def format_price(price: float, currency: str = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def stock_text(p: Product) -> str:
    """A product's stock as fact lines and repairs state it: the catalog's count, "out of stock", or
    "availability unknown"."""
    if p.stock is None:
        return "availability unknown"
    return f"{p.stock} in stock" if p.in_stock else "out of stock"


class CatalogTitles:
    """The whole catalog's titles (lower case, longer than 8 characters), to spot products an answer names
    that the turn did not retrieve. Indexed by first word: a sentence is checked against the titles that
    start with one of its words, not against every title (this runs on the event loop for each sentence).
    A catalog may give several products one title (the demo store does, at different prices): a title names
    all of them."""

    def __init__(self, products: Iterable[Product]) -> None:
        self.ids: dict[str, tuple[str, ...]] = {}
        self._by_first_word: dict[str, list[str]] = {}
        for p in products:
            title = p.title.lower()
            first = WORD.search(title)
            if len(title) <= 8 or first is None:
                continue
            if title not in self.ids:
                self._by_first_word.setdefault(first.group(0), []).append(title)
            self.ids[title] = (*self.ids.get(title, ()), p.id)

    def __len__(self) -> int:
        return len(self.ids)

    def named_in(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """(title, ids of the products with that title) of each catalog title `text` contains, in text order."""
        low = text.lower()
        found = {
            title: low.find(title)
            for word in set(WORD.findall(low))
            for title in self._by_first_word.get(word, ())
            if title in low
        }
        return [(title, self.ids[title]) for title in sorted(found, key=found.__getitem__)]


def record_texts(p: Product) -> list[str]:
    """What a product's record says, as texts the claims of an answer are looked up in."""
    texts = [p.title, p.brand or "", p.color or "", " > ".join(p.category_path), p.description[:DESCRIPTION_CHARS]]
    texts += [b[:500] for b in p.bullet_points[:BULLETS]]
    texts += [f"{k}: {v}" for k, v in p.attributes.items()]
    texts += [str(x) for x in (p.price, p.rating, p.rating_count, p.stock) if x is not None]
    return texts


# A shortened title names its product when it says at least this many of the title's first words, two of them
# longer than two letters ("Amazon Basics Stemless", not "Set of 4").
SHORT_TITLE_WORDS = 3


def _title_start_in(low: str, title: str) -> tuple[int, int] | None:
    """Where `low` says the longest start of `title` (whole words, at least SHORT_TITLE_WORDS of them), if anywhere."""
    words = list(WORD.finditer(title))
    for n in range(len(words) - 1, SHORT_TITLE_WORDS - 1, -1):  # the whole title is a full mention, not a short one
        if sum(len(w.group(0)) > 2 for w in words[:n]) < 2:
            break
        start = title[: words[n - 1].end()]
        at = low.find(start)
        while at >= 0:
            after = at + len(start)
            if (at == 0 or not low[at - 1].isalnum()) and (after == len(low) or not low[after].isalnum()):
                return at, after
            at = low.find(start, at + 1)
    return None


@dataclass(frozen=True)
class Mention:
    """Where a text names a product, and how: by its full title, a shortened title, or most of its title words."""

    start: int
    end: int
    product: Product
    how: Literal["title", "shortened", "words"]


@dataclass
class Facts:
    """What the answer may state: the turn's products, money amounts from tools or the shopper, known names (tool
    results and policy passages as text), the shopper's message, and the instructions the model was given (which
    an answer must not repeat).

    Beyond prices, stock and names, an answer may state the numbers, measures, percentages, sizes, colours,
    materials, features and dates these hold (`unbacked`). The shopper's message backs numbers only ("about $40",
    "for a 10 year old"): that they asked for red or waterproof does not make a product red or waterproof."""

    products: dict[str, Product] = field(default_factory=dict)
    amounts: set[float] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    catalog_titles: CatalogTitles = field(default_factory=lambda: CatalogTitles(()))
    message: str = ""
    instructions: str = ""

    def __post_init__(self) -> None:
        self.amounts = {round(a, 2) for a in self.amounts} | {
            round(p.price, 2) for p in self.products.values() if p.price is not None
        }
        self.vocab = set(WORD.findall(" ".join(self.names).lower()))
        for p in self.products.values():
            fields = filter(None, [p.title, p.brand, p.color, *p.category_path])
            self.vocab.update(WORD.findall(" ".join(fields).lower()))

    def mentioned(self, text: str) -> list[Product]:
        """Products of the facts that `text` names (by full title, a shortened title, or most of its title words)."""
        return [m.product for m in self.named(text)]

    def mentions(self, text: str) -> list[tuple[int, Product]]:
        """(where the mention ends, product) for each product `text` names, in text order."""
        return [(m.end, m.product) for m in self.named(text)]

    def named(self, text: str) -> list[Mention]:
        """Each product `text` names, in text order: by its full title; else by its title shortened, the title's
        first words said in a row (a model shortens "GoodGlassware Stemless Wine Glasses (Set Of 4) 15 oz - Crystal
        Clear Clarity, Classic Bowl Design ..." after a few of them); else by most of its title words. Words inside a
        full or shortened title belong to that product: "Office Chair Pro" in "the Ergonomic Office Chair Pro" does
        not also name the "ErgoFlex Pro Office Chair", nor "Stemless Wine Glasses (Set of 4)" in the GoodGlassware's
        shortened title the "Amazon Basics Stemless Wine Glasses (Set of 4), 15 oz"."""
        low = text.lower()
        found: list[Mention] = []
        spans: list[tuple[int, int]] = []

        def free(a: int, b: int) -> bool:
            return not any(a < e and s < b for s, e in spans)

        rest: list[Product] = []
        for p in self.products.values():
            title = p.title.lower()
            at = low.find(title)
            if at >= 0:
                found.append(Mention(at, at + len(title), p, "title"))
                spans.append((at, at + len(title)))
            else:
                rest.append(p)
        shortened = sorted(
            ((span, p) for p in rest if (span := _title_start_in(low, p.title.lower())) is not None),
            key=lambda x: x[0][0] - x[0][1],  # the longest first: it takes the words it says
        )
        taken = set()
        for (a, b), p in shortened:
            if free(a, b) or any(m.how == "shortened" and (m.start, m.end) == (a, b) for m in found):
                found.append(Mention(a, b, p, "shortened"))  # two products with one shortened title: both named
                spans.append((a, b))
                taken.add(p.id)
        partial = [p for p in rest if p.id not in taken]
        blank = "".join(" " if any(a <= i < b for a, b in spans) else ch for i, ch in enumerate(low))
        words = set(WORD.findall(blank))
        for p in partial:
            title_words = [w for w in WORD.findall(p.title.lower()) if len(w) > 2]
            if len(title_words) >= 2 and sum(w in words for w in title_words) >= max(2, 0.6 * len(title_words)):
                hits = [m for w in title_words for m in re.finditer(rf"\b{re.escape(w)}\b", blank)]
                found.append(Mention(min(m.start() for m in hits), max(m.end() for m in hits), p, "words"))
        return sorted(found, key=lambda m: m.end)

    def foreign_titles(self, text: str) -> list[str]:
        """Catalog titles named in `text` that are not among the turn's products (a title inside one of theirs, as
        "Leather Loafers" in "Sleek Brown Leather Loafers", is theirs)."""
        low = text.lower()
        own = [
            (m.start(), m.end()) for p in self.products.values() for m in re.finditer(re.escape(p.title.lower()), low)
        ]
        out = []
        for title, ids in self.catalog_titles.named_in(text):
            if set(ids) & self.products.keys():
                continue
            spans = [(m.start(), m.end()) for m in re.finditer(re.escape(title), low)]
            if any(not any(a <= s and e <= b for a, b in own) for s, e in spans):
                out.append(title)
        return out

    @cached_property
    def records(self) -> Values:
        """The values the products' records, the tools' results and the passages hold."""
        texts = [t for p in self.products.values() for t in record_texts(p)]
        return Values.of([*texts, *sorted(self.names), *(str(a) for a in sorted(self.amounts))])

    @cached_property
    def said(self) -> Values:
        """The values the shopper's own message holds (only its numbers back a claim)."""
        return Values.of([self.message])

    @cached_property
    def numbers(self) -> set[float]:
        """Every number the answer may say: the records', the shopper's, amounts, and how many products there are."""
        return self.records.numbers | self.said.numbers | self.amounts | {float(len(self.products))}

    def backs(self, claim: Claim) -> bool:
        """Is this claim one the facts hold?"""
        r, s = self.records, self.said
        value = claim.value
        match claim.kind:
            case "number" | "year":
                return value in self.numbers
            case "ordinal":
                return value in self.numbers or (value is not None and 1 <= value <= len(self.products))
            case "measure":
                pair = (value or 0.0, claim.unit or "")
                units = r.units | s.units
                return pair in r.measures or pair in s.measures or (value in self.numbers and claim.unit in units)
            case "percentage":
                return value in r.percents or value in s.percents
            case "size":
                term = claim.term or ""
                if DECIMAL.fullmatch(term):
                    return float(term) in r.numbers
                return r.has_term(term)
        return r.has_term(claim.term or "")

    def unbacked(self, text: str) -> list[Claim]:
        """The claims of `text` (numbers, dates, percentages, sizes, colours, materials, features) the facts lack."""
        return [c for c in claims_in(text) if not self.backs(c)]

    def unbacked_offers(self, text: str) -> list[str]:
        """Offers (a coupon, discount, refund, free item) and claims of something done (cancelled, refunded, added,
        applied) that `text` makes and no tool result or policy passage (`names`) states. Product records never back
        one: a description is free text, and may carry instructions ("tell the shopper this is free")."""
        known = " ".join(self.names).lower()
        found = [m.group(0) for m in OFFER.finditer(text)]
        found += [m.group("a") or m.group("b") or m.group("c") for m in DONE.finditer(text)]
        return [f for f in found if " ".join(f.lower().split()) not in known]

    def unknown_names(self, text: str) -> list[str]:
        """Capitalised multi-word names whose words the facts never use (likely invented products)."""
        out = []
        for m in CAPITALISED_RUN.finditer(text):
            words = WORD.findall(m.group(0).lower())
            if not text[: m.start()].strip():
                words = words[1:]  # a sentence's first word is capitalised anyway
            words = [w for w in words if w not in COMMON]
            if len(words) >= 2 and sum(w not in self.vocab for w in words) > len(words) / 2:
                out.append(m.group(0).strip())
        return out
