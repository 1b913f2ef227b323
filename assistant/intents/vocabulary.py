"""The catalog's own words (categories, brands, colours), normalised so the shopper's spelling finds them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from retrieval.product import Product

VocabKind = Literal["category", "brand", "color"]
KINDS: tuple[VocabKind, ...] = ("category", "brand", "color")
MAX_KEY_TOKENS = 6
# Token-level synonyms, applied after singularising: both spellings then share one key.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "gray": ("grey",),
    "colour": ("color",),
    "tshirt": ("t", "shirt"),
    "tee": ("t", "shirt"),
    "trainer": ("sneaker",),
    "rucksack": ("backpack",),
    "couch": ("sofa",),
    "cellphone": ("phone",),
    "smartphone": ("phone",),
}
_STOP = frozenset(
    "a an the and or of for with in on to it this that one new set pack size other none na generic unbranded unknown"
    " no brand misc various single more all general everything assorted".split()
)
_NEGATORS = frozenset("not no never dont without except excluding besides nor non avoid hate dislike".split())
_NEG_BIGRAMS = frozenset({("anything", "but"), ("other", "than")})
_FILLERS = frozenset("any the a in too so really want like wanna need".split())
_WORD = re.compile(r"[a-z0-9]+")
# Catalog colour fields hold anything ("Dad", "1 Pack", "Linen"); a colour counts when every word is a colour word.
COLOR_WORDS = frozenset(
    "black white red blue green yellow orange purple pink brown grey beige navy silver gold cream tan ivory burgundy"
    " maroon teal turquoise olive khaki charcoal coral mint lavender lilac violet indigo cyan aqua magenta fuchsia"
    " rose peach salmon copper bronze brass chrome platinum champagne mustard camel taupe nude blush plum emerald"
    " cobalt slate graphite gunmetal pewter rust ochre burgundy multicolor multicolored multicolour multi camo"
    " light dark pale bright deep matte matt metallic hot baby sky royal neon pastel dusty soft off heather".split()
)


# Colour words that only shade another ("light blue"): not a colour of their own in a title.
_SHADES = frozenset(
    "light dark pale bright deep matte matt metallic hot baby sky royal neon pastel dusty soft off heather"
    " multi".split()
)


def title_colors(title: str, color_words: frozenset[str] = COLOR_WORDS) -> list[str]:
    """Colours a product title names ("Urban Stride Blue Runner" -> ["Blue"]), for catalogs without a colour field."""
    return [w for w in re.findall(r"[A-Za-z]+", title) if w.lower() in color_words and w.lower() not in _SHADES]


def singular(word: str) -> str:
    """A conservative English singular that maps both forms to one key (hoodie/hoodies -> hoody)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ie"):
        return word[:-2] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1] if word.endswith("s") else word


def tokens(text: str) -> list[str]:
    """Lower-cased, singular, synonym-folded word tokens without "and"; "Men's T-Shirts" -> men, t, shirt."""
    text = re.sub(r"['’]s\b", "", text.lower()).replace("'", "").replace("’", "")
    out: list[str] = []
    for word in _WORD.findall(text):
        if word == "and":  # "&" is dropped as punctuation; "and" goes too, so both spell one key
            continue
        word = singular(word)
        out.extend(SYNONYMS.get(word, (word,)))
    return out


def phrase_key(text: str) -> tuple[str, ...]:
    return tuple(tokens(text))


def _usable(key: tuple[str, ...]) -> bool:
    if not key or len(key) > MAX_KEY_TOKENS or all(t in _STOP or t.isdigit() for t in key):
        return False
    return len("".join(key)) >= 2


@dataclass(frozen=True)
class Mention:
    """One vocabulary entry found in a text, at token positions [start, end)."""

    kind: VocabKind
    value: str
    start: int
    end: int
    negated: bool = False


class CatalogVocabulary:
    """Categories (every category-path part), brands and colours of a catalog, matched on whole words."""

    def __init__(
        self,
        categories: Iterable[str] = (),
        brands: Iterable[str] = (),
        colors: Iterable[str] = (),
        category_paths: Iterable[Sequence[str]] = (),
        *,
        color_words: frozenset[str] | None = COLOR_WORDS,
    ) -> None:
        self._spellings: dict[VocabKind, dict[tuple[str, ...], Counter[str]]] = {k: {} for k in KINDS}
        self._color_words = color_words
        paths = [list(p) for p in category_paths]
        for kind, values in (("category", categories), ("brand", brands), ("color", colors)):
            for value in values:
                self._add(kind, value)  # type: ignore[arg-type]
        for path in paths:
            for part in path:
                self._add("category", part)
        self._index: dict[tuple[str, ...], list[tuple[VocabKind, str]]] = {}
        for kind, entries in self._spellings.items():
            for key in entries:
                self._index.setdefault(key, []).append((kind, self._canonical(kind, key)))
        self._max_len = max((len(k) for k in self._index), default=0)
        self._ancestors: dict[str, set[str]] = {}
        for path in paths:
            names = [self.canonical("category", p) for p in path]
            for i, name in enumerate(names):
                if name is not None:
                    self._ancestors.setdefault(name, set()).update(n for n in names[:i] if n and n != name)

    @classmethod
    def from_products(
        cls, products: Iterable[Product], *, color_words: frozenset[str] | None = COLOR_WORDS
    ) -> CatalogVocabulary:
        """Every category-path part, brand and colour of `products`; `color_words=None` keeps every colour. A catalog
        with no colour field gets the colours its titles name."""
        items = list(products)
        colors = [p.color for p in items if p.color]
        if not colors:
            colors = [c for p in items for c in title_colors(p.title)]
        return cls(
            brands=[p.brand for p in items if p.brand],
            colors=colors,
            category_paths=[p.category_path for p in items if p.category_path],
            color_words=color_words,
        )

    def _add(self, kind: VocabKind, value: str) -> None:
        key = phrase_key(value)
        if kind == "color" and self._color_words is not None and not set(key) <= self._color_words:
            return
        if _usable(key):
            self._spellings[kind].setdefault(key, Counter())[value.strip()] += 1

    def _canonical(self, kind: VocabKind, key: tuple[str, ...]) -> str:
        return self._spellings[kind][key].most_common(1)[0][0]

    def canonical(self, kind: VocabKind, value: str) -> str | None:
        """The catalog's usual spelling of `value` ("gray" -> "Grey"), or None when the catalog lacks it."""
        key = phrase_key(value)
        return self._canonical(kind, key) if key in self._spellings[kind] else None

    def variants(self, kind: VocabKind, value: str) -> list[str]:
        """Every catalog spelling sharing `value`'s key, so a filter matches Grey and gray alike."""
        key = phrase_key(self.canonical(kind, value) or value)
        spellings = self._spellings[kind].get(key)
        return sorted(spellings, key=lambda s: -spellings[s]) if spellings else [value]

    def values(self, kind: VocabKind) -> list[str]:
        """Canonical values, most frequent first."""
        entries = self._spellings[kind]
        ranked = sorted(entries, key=lambda k: -sum(entries[k].values()))
        return [self._canonical(kind, k) for k in ranked]

    def ancestors(self, category: str) -> set[str]:
        return set(self._ancestors.get(category, set()))

    def prompt_values(self, kind: VocabKind, text: str, limit: int) -> list[str]:
        """Up to `limit` values for a prompt: those sharing a word with `text` first, then the most frequent."""
        words = set(tokens(text))
        ranked = self.values(kind)
        near = [v for v in ranked if words & set(phrase_key(v))]
        return list(dict.fromkeys(near + ranked))[:limit]

    def find(self, text: str) -> list[Mention]:
        """Longest-first, non-overlapping whole-word matches; a value the shopper negates is marked."""
        toks = tokens(text)
        out: list[Mention] = []
        i = 0
        while i < len(toks):
            for n in range(min(self._max_len, len(toks) - i), 0, -1):
                entries = self._index.get(tuple(toks[i : i + n]))
                if not entries:
                    continue
                negated = _negated(toks, i)
                out.extend(Mention(kind, value, i, i + n, negated) for kind, value in entries)
                i += n
                break
            else:
                i += 1
        return out


def _negated(toks: list[str], i: int) -> bool:
    j = i - 1
    while j >= 0 and i - j <= 2 and toks[j] in _FILLERS:
        j -= 1
    if j < 0:
        return False
    return toks[j] in _NEGATORS or (j > 0 and (toks[j - 1], toks[j]) in _NEG_BIGRAMS)
