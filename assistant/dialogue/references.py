"""Reference resolution: "the second one", "the cheaper one", "does it come in black" -> products shown earlier.

Pure functions over the products the session showed. `shown` is the most recent list of product cards
(what ordinals and comparatives count in); `earlier` holds every product shown before it, so a focus id
or a description ("the mug") can still be found. A resolution carries the product ids, which rule
matched and why, the candidates when the text fits several products, and an attribute constraint
(colour/size) when the shopper asks for a variant of the referenced product.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from assistant.intents.slot_rules import find_sizes
from assistant.intents.vocabulary import CatalogVocabulary, tokens
from retrieval.filters import Filters
from retrieval.product import Product

RefKind = Literal["none", "ordinal", "comparative", "descriptor", "other", "pronoun", "plural", "named"]
BASIC_COLORS = (
    "black white red blue green yellow orange purple pink brown grey beige navy silver gold cream tan ivory"
    " burgundy maroon teal turquoise olive khaki charcoal".split()
)
_ORDINALS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split(), 1)}
_CARDINALS = {w: i for i, w in enumerate("one two three four five six seven eight nine ten".split(), 1)}
_ORD_WORD = "|".join(_ORDINALS) + r"|\d{1,2}(?:st|nd|rd|th)"
_CARD = "|".join(_CARDINALS) + r"|\d{1,2}"
_ORD_NOUN = (
    r"ones?|items?|results?|options?|products?|picks?|choices?|pairs?|links?|listings?|of\s+(?:them|those|these)"
)
_BLOCK = (
    r"time|times|week|weekend|year|month|day|night|orders?|purchases?|visit|message|question|place|step|name|half|hour"
    r"|minute|thing|impression|few|couple"
)
_TIME_AFTER_THIS = re.compile(rf"\s+(?:{_BLOCK}|morning|evening|afternoon|season|christmas|summer|winter)\b")
_FILLER = frozenset(
    "a an the one ones this that these those it its of for with and or to in on my me i you is are be please".split()
)


class AttributeConstraint(BaseModel):
    """The variant the shopper asks about ("in black", "in size M")."""

    color: str | None = None
    size: str | None = None


class Resolution(BaseModel):
    """Which shown products the message refers to, and why; empty when it refers to none."""

    product_ids: list[str] = Field(default_factory=list)
    kind: RefKind = "none"
    reason: str = "no reference"
    candidates: list[str] = Field(default_factory=list, description="products the text fits when it fits several")
    constraint: AttributeConstraint | None = None

    @property
    def resolved(self) -> bool:
        return bool(self.product_ids)


class VariantSearch(BaseModel):
    """How to look for another variant of a product: a query of its title words plus filters."""

    query: str
    filters: Filters
    size: str | None = None


def variant_search(product: Product, constraint: AttributeConstraint) -> VariantSearch:
    """Same title words without colour words, same brand and category, the requested colour."""
    colour_words = set(BASIC_COLORS) | set(tokens(product.color or ""))
    words = [w for w in product.title.split() if not (set(tokens(w)) & colour_words)]
    return VariantSearch(
        query=" ".join(words) or product.title,
        filters=Filters(
            color=[constraint.color] if constraint.color else None,
            brand=[product.brand] if product.brand else None,
            category=[product.category] if product.category else None,
        ),
        size=constraint.size,
    )


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def _number(word: str) -> int:
    return int(re.sub(r"\D", "", word)) if word[0].isdigit() else _ORDINALS.get(word) or _CARDINALS[word]


# --- rules, strongest first: each returns (indices into the last list, reason) or None -------------------------


def _ordinals(t: str, n: int) -> tuple[list[int], str] | None:
    m = re.search(rf"\b(?:the\s+)?(?P<end>first|top|last)\s+(?P<k>{_CARD})\b(?!\s*(?:{_BLOCK}|dollars?|bucks))", t)
    if m and 2 <= (k := _number(m["k"])) <= 10:
        idx = list(range(min(k, n))) if m["end"] != "last" else list(range(max(n - k, 0), n))
        return idx, f"the {m['end']} {k}"
    picks: list[tuple[int, int, str]] = []  # (position in text, index, words)
    for m in re.finditer(r"\b(?:the\s+)?(?:second\s+(?:to\s+)?last|next\s+to\s+last|penultimate)\b", t):
        picks.append((m.start(), n - 2, m[0]))
    t = re.sub(r"\b(?:second\s+(?:to\s+)?last|next\s+to\s+last|penultimate)\b", lambda x: "_" * len(x[0]), t)
    for m in re.finditer(rf"(?:#\s?|\b(?:number|no\.|item|option|result|product|choice)\s+#?)(?P<k>{_CARD})\b", t):
        picks.append((m.start(), _number(m["k"]) - 1, m[0]))
    for m in re.finditer(r"\bthe\s+(?P<w>latter|former)\b", t):
        picks.append((m.start(), n - 1 if m["w"] == "latter" else 0, m[0]))
    accepted_end = -1
    for m in re.finditer(rf"\b(?P<the>the\s+(?:very\s+)?)?(?P<w>{_ORD_WORD}|last)\b", t):
        after = t[m.end() :]
        if re.match(rf"\s*(?:{_BLOCK})\b", after):
            continue
        joined = accepted_end >= 0 and re.fullmatch(
            r"\s*(?:,|and|or|&|vs\.?|versus|with|to)?\s*", t[accepted_end : m.start()]
        )
        framed = m["the"] or re.match(rf"\s*(?:{_ORD_NOUN})\b", after) or re.match(r"\s*(?:$|[?.!,;])", after)
        if m["w"] == "last" and not (m["the"] or re.match(r"\s*ones?\b", after)):
            continue
        if framed or joined:
            picks.append((m.start(), n - 1 if m["w"] == "last" else _number(m["w"]) - 1, m[0].strip()))
            accepted_end = m.end()
    if not picks:
        return None
    picks.sort()
    words = ", ".join(f"'{w}'" for _, _, w in picks)
    return list(dict.fromkeys(i for _, i, _ in picks)), words


_COMPARATIVES: list[tuple[str, str, Callable[[Product], float | None], bool]] = [
    # (pattern, description, key, pick the highest)
    (
        r"cheap(?:er|est)|less\s+expensive|least\s+expensive|lower[- ]priced|lowest[- ]priced"
        r"|(?:more|most)\s+affordable|lowest\s+price",
        "cheapest",
        lambda p: p.price,
        False,
    ),
    (
        r"(?:more|most)\s+expensive|pricier|priciest|higher[- ]priced|highest[- ]priced|highest\s+price"
        r"|(?:more|most)\s+premium",
        "most expensive",
        lambda p: p.price,
        True,
    ),
    (
        r"(?:better|best|higher|highest|top)[- ]rated|(?:better|best)[- ]reviewed|(?:better|best)\s+reviews",
        "best rated",
        lambda p: None if p.rating is None else p.rating + (p.rating_count or 0) * 1e-9,
        True,
    ),
    (r"(?:worse|worst|lower|lowest)[- ]rated", "worst rated", lambda p: p.rating, False),
    (r"most\s+popular|most\s+reviewed", "most reviewed", lambda p: p.rating_count, True),
]


def _comparative(t: str, last: Sequence[Product]) -> tuple[list[int], str] | None:
    for pattern, label, key, highest in _COMPARATIVES:
        for m in re.finditer(rf"\b(?:{pattern})\b", t):
            before, after = t[: m.start()], t[m.end() :]
            if re.search(r"\b(?:a|an|any|some|something|anything|another|other|even|much|bit)\s+$", before):
                continue  # "something cheaper" asks for a new search, not a shown product
            framed = (
                re.search(r"\b(?:the|which|which\s+one|which\s+is|which\s+one\s+is)\s+(?:the\s+)?$", before)
                or re.match(r"\s*one\b", after)
                or len(t.split()) <= 3
            )
            if not framed:
                continue
            scored = [(key(p), i) for i, p in enumerate(last) if key(p) is not None]
            if not scored:
                return [], f"'{m[0]}' but none of the shown products has that information"
            best = max(scored, key=lambda s: (s[0], -s[1])) if highest else min(scored, key=lambda s: (s[0], s[1]))
            return [best[1]], f"'{m[0]}': the {label} of the {len(last)} last shown"
    return None


def _descriptor(
    t: str, pools: Sequence[Sequence[Product]], focused: Product | None
) -> tuple[list[Product], str] | None:
    """ "the red one", "the Swift boots", "this mug": the shown products whose words contain every described word."""
    for m in re.finditer(r"\b(the|this|that|these|those)\s+(?=((?:[\w'-]+\s*){1,4}))", t):
        words = [w for w in tokens(m[2]) if w not in _FILLER]
        # "this mug" may be the product in focus; "the red one" picks among the shown lists.
        for pool in ([focused], *pools) if focused and m[1] in ("this", "that") else pools:
            known = {w for p in pool for w in _words(p)}
            run: list[str] = []  # the leading run of known words: "the red shoes are nice" -> red, shoe
            for w in words:
                if w not in known:
                    break
                run.append(w)
            hits = [p for p in pool if run and set(run) <= _words(p)]
            if hits:
                return hits, f"'{m[1]} {' '.join(run)}' fits {len(hits)} shown product(s)"
    return None


def _words(product: Product) -> set[str]:
    return {w for w in tokens(" ".join([product.title, product.brand or "", product.color or ""])) if w not in _FILLER}


def _pronoun(t: str) -> Literal["singular", "plural", "both", "all"] | None:
    if re.search(rf"\b(?:{_CARD}|a\s+couple|a\s+few|some)\s+of\s+(?:them|those|these)\b", t):
        return "singular"  # "two of those": how many of the product, not which products
    if re.search(r"\bboth\b", t):
        return "both"
    if re.search(r"\ball\s+(?:of\s+)?(?:them|those|these|three|four|five)\b", t):
        return "all"
    if re.search(r"\b(?:it|its|it's|this\s+one|that\s+one)\b", t):
        return "singular"
    if (m := re.search(r"\bthis\b", t)) and not _TIME_AFTER_THIS.match(t, m.end()):
        return "singular"
    if re.search(r"\bthat\b(?=\s*(?:$|[?.!,;]|one\b|in\b|please\b|to\b|for\b|too\b|instead\b|come|available))", t):
        return "singular"
    if re.search(r"\b(?:them|these|those|they)\b", t):
        return "plural"
    return None


_VARIANT_CUE = re.compile(
    r"\b(?:come|comes|available|version|variant|instead|exist|what\s+about|how\s+about|same|also|any)\b"
    r"|^(?:and\s+)?in\s+"
)


def _constraint(text: str, t: str, vocab: CatalogVocabulary | None) -> AttributeConstraint | None:
    """The colour or size asked for; a colour counts only as a variant ask ("in black", "come in"), not as a
    description ("the black one")."""
    colour = None
    if vocab is not None:
        colour = next((m.value for m in vocab.find(text) if m.kind == "color" and not m.negated), None)
    if colour is None:
        words = tokens(text)
        colour = next((c for c in BASIC_COLORS if c in words), None)
    if colour is not None:
        said = "|".join(re.escape(w) for w in {colour.lower(), *tokens(colour)})
        if not (_VARIANT_CUE.search(t) or re.search(rf"\bin\s+(?:a\s+)?(?:{said})\b", t)):
            colour = None
    sizes = find_sizes(text)
    if colour is None and not sizes:
        return None
    return AttributeConstraint(color=colour, size=sizes[0] if sizes else None)


def resolve_references(
    text: str,
    shown: Sequence[Product],
    focus: str | None = None,
    *,
    earlier: Sequence[Product] = (),
    vocab: CatalogVocabulary | None = None,
) -> Resolution:
    """Resolve the products `text` points at among `shown` (the last list) and `earlier`; `focus` is the product
    last discussed on its own. No reference gives an empty resolution."""
    t = _normalise(text)
    last = list(shown)
    by_id = {p.id: p for p in [*earlier, *last]}
    constraint = _constraint(text, t, vocab)

    def done(idx: list[int], kind: RefKind, reason: str) -> Resolution:
        bad = [i + 1 for i in idx if not 0 <= i < len(last)]
        if bad:
            return Resolution(kind=kind, reason=f"{reason}: only {len(last)} product(s) were shown")
        ids = [last[i].id for i in idx]
        return Resolution(product_ids=ids, kind=kind, reason=reason, constraint=constraint if ids else None)

    if (hit := _ordinals(t, len(last))) is not None:
        return done(hit[0], "ordinal", f"ordinal {hit[1]}")
    if (hit := _comparative(t, last)) is not None:
        return done(hit[0], "comparative", f"comparative {hit[1]}")
    if re.search(r"\b(?:the\s+)?other\s+one\b", t) and focus is not None:
        others = [p.id for p in last if p.id != focus]
        if len(last) == 2 and len(others) == 1:
            return Resolution(
                product_ids=others,
                kind="other",
                reason="'the other one': not the focus of the two shown",
                constraint=constraint,
            )
        return Resolution(kind="other", reason="'the other one' is ambiguous", candidates=others)
    focused = by_id.get(focus) if focus else None
    pools = [pool for pool in (last, list(earlier)) if pool]
    if (described := _descriptor(t, pools, focused)) is not None:
        hits, reason = described
        plural = re.search(r"\b(?:these|those|ones|both|all)\b", t) is not None
        if len(hits) == 1 or plural:
            return Resolution(
                product_ids=[p.id for p in hits],
                kind="descriptor",
                reason=f"descriptor {reason}",
                constraint=constraint,
            )
        return Resolution(
            kind="descriptor",
            reason=f"descriptor {reason}: ambiguous",
            candidates=[p.id for p in hits],
            constraint=constraint,
        )

    pronoun = _pronoun(t)
    if pronoun is None and constraint is not None and _VARIANT_CUE.search(t):
        pronoun = "singular"  # "what about in black?" asks about the product under discussion
    if pronoun in ("plural", "all") and last:
        return Resolution(
            product_ids=[p.id for p in last],
            kind="plural",
            reason=f"plural: all {len(last)} last shown",
            constraint=constraint,
        )
    if pronoun == "both":
        if len(last) == 2:
            return done([0, 1], "plural", "'both': the two last shown")
        return Resolution(kind="plural", reason=f"'both' but {len(last)} were shown", candidates=[p.id for p in last])
    if pronoun == "singular":
        if focus is not None:
            return Resolution(
                product_ids=[focus], kind="pronoun", reason="pronoun: the product in focus", constraint=constraint
            )
        if last:
            return done([0], "pronoun", "pronoun: the top of the last list (no product in focus)")
        return Resolution(kind="pronoun", reason="pronoun but nothing was shown")
    return Resolution()
