"""Deterministic slot rules: order ids, sizes, prices and quantities as regexes over the shopper's text.

Each extractor masks what it consumed, so a price is never read again as a quantity or a size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ORDER_ID = re.compile(r"\bORD[-_ ]?([A-Z0-9]{6})\b", re.IGNORECASE)
MAX_QUANTITY = 999

_UNITS = (
    r"%|percent|years?|yrs?|y/?o|months?|weeks?|days?|hours?|hrs?|minutes?|mins?|seconds?|kg|kilos?|g|grams?"
    r"|lbs?|pounds?|oz|ounces?|inch(?:es)?|\"|cm|mm|m|meters?|metres?|feet|foot|ft|gb|tb|mb|mah|w|watts?|v"
    r"|volts?|l|liters?|litres?|ml|people|persons?|players?|guests?|kids?|seats?|cups?|servings?|pages?|ports?"
    r"|stars?|reviews?|ratings?|pcs|pieces?|packs?|units?|items?|pairs?|of\s+(?:them|those|these)|x\b"
)
_UNIT_AFTER = re.compile(rf"\s*(?:{_UNITS})(?![a-z])", re.IGNORECASE)
_CUR_WORDS = r"dollars?|bucks|usd|euros?|eur|gbp|quid"


def _amt(i: int) -> str:
    return (
        rf"(?P<pre{i}>[$€£]\s?|(?:usd|eur|gbp)\s?)?"
        rf"(?P<num{i}>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<k{i}>\s?k\b)?"
        rf"(?P<post{i}>\s?(?:{_CUR_WORDS})\b|\s?[$€£])?"
    )


_MAX_WORDS = (
    r"under|below|beneath|less\s+than|cheaper\s+than|lower\s+than|no\s+more\s+than|not\s+more\s+than|not\s+over"
    r"|nothing\s+(?:over|above|more\s+than|pricier\s+than)"
    r"|at\s+most|max(?:imum)?(?:\s+of)?|up\s+to|upto|within|budget(?:\s+(?:is|of))?"
)
_MIN_WORDS = (
    r"over|above|more\s+than|greater\s+than|higher\s+than|at\s+least|min(?:imum)?(?:\s+of)?"
    r"|starting\s+(?:at|from)|upwards\s+of|north\s+of"
)
_PRICE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("range", re.compile(rf"\bbetween\s+{_amt(1)}\s*(?:and|&|-|to)\s*{_amt(2)}", re.I)),
    ("range", re.compile(rf"\bfrom\s+{_amt(1)}\s*(?:to|-|until|till)\s*{_amt(2)}", re.I)),
    ("range_cur", re.compile(rf"(?<![\w.]){_amt(1)}\s*(?:-|–|—|to)\s*{_amt(2)}", re.I)),
    ("around", re.compile(rf"(?:\b(?:around|about|roughly|approximately|approx\.?|circa)\s*|~\s*){_amt(1)}", re.I)),
    ("max", re.compile(rf"(?:\b(?:{_MAX_WORDS})\s*|[<≤]=?\s*){_amt(1)}", re.I)),
    ("min", re.compile(rf"(?:\b(?:{_MIN_WORDS})\s*|[>≥]=?\s*){_amt(1)}", re.I)),
    (
        "post_max",
        re.compile(rf"{_amt(1)}\s*(?:or\s+(?:less|under|below|cheaper)|and\s+(?:under|below)|max\b|tops\b)", re.I),
    ),
    ("post_min", re.compile(rf"{_amt(1)}\s*(?:or\s+(?:more|above|over)|and\s+(?:up|above|over)|\+|plus\b)", re.I)),
]

_LETTER_SIZES = {
    "xxs": "XXS",
    "xs": "XS",
    "s": "S",
    "m": "M",
    "l": "L",
    "xl": "XL",
    "xxl": "XXL",
    "xxxl": "XXXL",
    "2xl": "XXL",
    "3xl": "XXXL",
    "extra small": "XS",
    "x-small": "XS",
    "small": "S",
    "medium": "M",
    "large": "L",
    "extra large": "XL",
    "x-large": "XL",
    "xx-large": "XXL",
    "double extra large": "XXL",
}
_SIZE_WORD = "|".join(sorted((re.escape(k) for k in _LETTER_SIZES), key=len, reverse=True))
_SIZE_RULES = [
    # "size M", "size 42", "size 10.5", "size 32x34"
    # (a separator after "size": "sizes" is not size S)
    re.compile(
        rf"\bsize(?:\s+|\s*[:=]\s*)(?P<v>\d{{1,2}}(?:\.5)?(?:\s?[x/]\s?\d{{2}})?|(?:{_SIZE_WORD}))(?![\w-])", re.I
    ),
    # "in XL", "in medium": words and multi-letter sizes only; a lone letter needs "size" or capitals
    re.compile(
        r"\bin\s+(?:a\s+)?(?P<v>x{1,3}l|xs|xxs|[23]xl|extra[- ]large|extra[- ]small|x+-large|small|medium|large)\b",
        re.I,
    ),
    re.compile(r"\b(?P<v>XXS|XS|XL|XXL|XXXL|2XL|3XL)\b", re.I),
    re.compile(r"\bin\s+(?P<v>S|M|L)\b"),
]

_NUM_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
        " seventeen eighteen nineteen".split()
    )
}
_NUM_WORDS.update(
    {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
)
_NW = rf"(?:{'|'.join(_NUM_WORDS)}|hundred|thousand)"
# "and" joins only after a scale ("one hundred and fifty"); "between forty and twenty" stays two numbers.
_NUM_RUN = re.compile(rf"\b{_NW}(?:(?:(?<=hundred)|(?<=thousand))\s+and\s+{_NW}|(?:\s+|-){_NW})*\b", re.I)
_QNUM = r"\d+|one|a\s+couple|a\s+dozen|half\s+a\s+dozen|couple"
_QWORDS = {"one": 1, "a couple": 2, "couple": 2, "a dozen": 12, "half a dozen": 6}
_PACK = r"pcs|pieces?|packs?|packets?|units?|items?|pairs?|bottles?|boxes?|bags?|sets?|copies|cans?|rolls?|bars?|jars?"
_QTY_RULES = [
    re.compile(rf"\b(?P<v>{_QNUM})\s+of\s+(?:them|those|these|it|that|this|each)\b", re.I),
    re.compile(r"\b(?P<v>\d+|a\s+couple)\s+of\s+the\b", re.I),
    re.compile(rf"\b(?P<v>{_QNUM})\s+(?:x\s+)?(?:{_PACK})\b", re.I),
    re.compile(r"\b(?:qty|quantity)\s*[:=]?\s*(?:of\s+)?(?P<v>\d+)\b", re.I),
    re.compile(r"(?<![\w.])(?P<v>\d+)\s?x\b(?!\s*\d)", re.I),
    re.compile(r"\bx\s?(?P<v>\d+)\b", re.I),
    re.compile(r"\b(?P<v>a\s+couple|a\s+dozen|half\s+a\s+dozen)\s+of\b", re.I),
    re.compile(
        rf"\b(?:add|buy|order|get|take|want|need|grab|purchase|put)\s+(?P<v>{_QNUM})\b(?!\s*(?:{_CUR_WORDS}|[$€£%]))",
        re.I,
    ),
]
_ANY_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(\s?k\b)?|\b(couple|dozen|pair)\b", re.I
)


def _words_to_number(run: str) -> str:
    words = [w for w in re.split(r"[\s-]+", run.lower()) if w != "and"]
    if words == ["one"]:  # "the cheaper one" is a pronoun, not a number
        return run
    total, current = 0, 0
    for w in words:
        if w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total, current = total + (current or 1) * 1000, 0
        else:
            current += _NUM_WORDS[w]
    return str(total + current)


def mask(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _amount(m: re.Match[str], i: int) -> float:
    value = float(m.group(f"num{i}").replace(",", ""))
    return value * 1000 if m.group(f"k{i}") else value


def _has_currency(m: re.Match[str], *idx: int) -> bool:
    return any(m.group(f"pre{i}") or m.group(f"post{i}") for i in idx)


def _unit_follows(text: str, m: re.Match[str], i: int) -> bool:
    return not m.group(f"post{i}") and bool(
        _UNIT_AFTER.match(text, m.end(f"num{i}") if not m.group(f"k{i}") else m.end())
    )


BudgetKind = Literal["around", "max", "min", "range"]


@dataclass(frozen=True)
class PricePhrase:
    """How a message states its budget: the kind of phrase ("about $40" is `around`), the bounds the slots take,
    the amount an around/under/over phrase names, and whether a currency was written with it."""

    kind: BudgetKind
    low: float | None
    high: float | None
    amount: float | None = None
    currency: bool = False


def _prices(text: str) -> tuple[str, float | None, float | None, list[tuple[str, float, bool]]]:
    """(text with the price phrases masked, low, high, each phrase's (kind, first amount, currency written))."""
    lo: float | None = None
    hi: float | None = None
    said: list[tuple[str, float, bool]] = []
    for kind, rule in _PRICE_RULES:
        for m in list(rule.finditer(text)):
            two = kind.startswith("range")
            idx = (1, 2) if two else (1,)
            needs_cur = kind in ("range_cur", "around", "post_max", "post_min")
            if needs_cur and not _has_currency(m, *idx):
                continue
            if not _has_currency(m, *idx) and _unit_follows(text, m, idx[-1]):
                continue
            a = _amount(m, 1)
            if two:
                b = _amount(m, 2)
                lo, hi = (lo if lo is not None else min(a, b)), (hi if hi is not None else max(a, b))
            elif kind == "around":
                lo, hi = (lo if lo is not None else round(a * 0.8, 2)), (hi if hi is not None else round(a * 1.2, 2))
            elif kind.endswith("max"):
                hi = hi if hi is not None else a
            else:
                lo = lo if lo is not None else a
            said.append((kind, a, _has_currency(m, *idx)))
            text = mask(text, m.start(), m.end())
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return text, lo, hi, said


def extract_prices(text: str) -> tuple[str, float | None, float | None]:
    text, lo, hi, _ = _prices(text)
    return text, lo, hi


def price_phrase(text: str) -> PricePhrase | None:
    """The budget `text` states and how ("about $40", "under 50", "$30-60"); None when it states none."""
    _, lo, hi, said = _prices(text)
    if not said:
        return None
    currency = any(c for _, _, c in said)
    if len(said) == 1 and said[0][0] == "around":
        return PricePhrase("around", lo, hi, said[0][1], currency)
    if lo is not None and hi is not None:
        return PricePhrase("range", lo, hi, None, currency)
    if hi is not None:
        return PricePhrase("max", None, hi, hi, currency)
    return PricePhrase("min", lo, None, lo, currency)


def extract_sizes(text: str) -> tuple[str, list[str]]:
    found: list[str] = []
    for rule in _SIZE_RULES:
        for m in list(rule.finditer(text)):
            raw = re.sub(r"\s+", " ", m.group("v").lower())
            value = _LETTER_SIZES.get(raw.replace("extra-", "extra "), raw.replace(" ", "").upper())
            if value not in found:
                found.append(value)
            text = mask(text, m.start(), m.end())
    return text, found


def normalise_size(value: str) -> str | None:
    """A size as the rules spell it (M, XL, 42, 32X34), or None when it is not one."""
    raw = re.sub(r"\s+", " ", value.strip().lower())
    if raw in _LETTER_SIZES:
        return _LETTER_SIZES[raw]
    if re.fullmatch(r"\d{1,2}(?:\.5)?(?:\s?[x/]\s?\d{2})?", raw):
        return raw.replace(" ", "").upper()
    return None


def find_sizes(text: str) -> list[str]:
    """Every size the text states, in order ("size M", "in XL", "size 42")."""
    return extract_sizes(text)[1]


def extract_quantity(text: str) -> int | None:
    for rule in _QTY_RULES:
        for m in rule.finditer(text):
            raw = re.sub(r"\s+", " ", m.group("v").lower())
            value = int(raw) if raw.isdigit() else _QWORDS[raw]
            if 1 <= value <= MAX_QUANTITY:
                return value
    return None


def text_numbers(text: str) -> tuple[set[float], set[int]]:
    """(numbers a price may use, integers a quantity may use) as written in the text."""
    prices: set[float] = set()
    quantities: set[int] = set()
    for m in _ANY_NUMBER.finditer(text):
        if m.group(3):
            quantities.add(2 if m.group(3).lower() != "dozen" else 12)
            continue
        value = float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
        after = text[m.end() :]
        unit = _UNIT_AFTER.match(after)
        is_pack = bool(re.match(rf"\s*(?:{_PACK}|of\s+(?:them|those|these))\b", after, re.I))
        if (not unit or is_pack) and value.is_integer():
            quantities.add(int(value))
        if not unit:
            prices.add(value)
    return prices, quantities


def normalise_order_id(value: str) -> str | None:
    m = ORDER_ID.fullmatch(value.strip())
    return f"ORD-{m.group(1).upper()}" if m else None


def words_to_numbers(text: str) -> str:
    """ "under fifty dollars" -> "under 50 dollars"; a lone "one" stays a word."""
    return _NUM_RUN.sub(lambda m: _words_to_number(m.group(0)), text)
