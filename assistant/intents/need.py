"""The shopping need in a message: what the shopper wants, without the framing around it ("do you sell snow
blowers?" → "snow blowers"), and whether a result list covers it. The need is what the search looks for and what
a "we don't carry …" answer names."""

from __future__ import annotations

import re
from collections.abc import Iterable

from retrieval.product import Product

# Framing a request starts with; removed repeatedly from the front ("hi, could you show me some …").
_FRAMING = re.compile(
    r"^(?:hi|hello|hey|please|pls|ok(?:ay)?|so|well|um+|also|and|then|now|actually|"
    r"(?:can|could|would|will) (?:you|u)|do (?:you|u)|does (?:the|your) (?:store|shop)|have you got|you got|got any|"
    r"is there|what|which|for (?:my|a|the|our)|for|"
    r"are there|i'?m|i am|i'd|i would|i want(?: to)?|i need(?: to)?|i wanna|i'm looking for|looking for|"
    r"like(?: to)?|to|have|sell|carry|stock|offer|buy|get|find(?: me)?|show(?: me)?|search(?: for)?|"
    r"recommend|suggest|me|us|some|any|anything|a|an|the|for me|of)\b[\s,!?.]*",
    re.I,
)
_BUDGET = re.compile(
    r"\b(?:under|below|less than|cheaper than|at most|max(?:imum)?|over|above|more than|at least|around|about|"
    r"roughly|between|budget(?: of| is)?|up to|within)?\s*(?:[$€£]\s?\d[\d,.]*|\d[\d,.]*\s?(?:dollars?|bucks|usd|"
    r"euros?))(?:\s*(?:-|to|and)\s*[$€£]?\s?\d[\d,.]*)?",
    re.I,
)
_TRAILING = re.compile(
    r"[\s,!?.]*(?:(?:do|does) (?:you|u|the store|your store) (?:sell|have|carry|stock|offer)|please|thanks|"
    r"thank you|today|for me|in stock|available)?[\s,!?.]*$",
    re.I,
)
_FE = {"knives": "knife", "wives": "wife", "lives": "life"}
WORD = re.compile(r"[a-z][a-z'-]+")
# Words that say nothing about which product: a need made only of them is not a product search.
GENERIC = frozenset(
    "something thing things stuff item items product products nice good great cool new best cheap cheaper "
    "affordable quality gift gifts idea ideas present presents recommendation recommendations option options "
    "one ones kind sort type you your my our their his her it them that this these those for with and the from "
    "into onto about some any all again too also now today tonight tomorrow instead please asap soon quickly still "
    "really very just more".split()
)
STRONG_MATCH = 0.6  # a result this similar covers the need even without a shared word
# Words for a product's condition that make it another thing to buy (a used car is not a toy car): a need that
# states one is covered only by a result that states it too. ("Fresh" is not one: fresh flowers are sold without
# the word in their titles.)
CONDITIONS = frozenset("used secondhand second-hand preowned pre-owned refurbished reconditioned".split())


_MARKUP = re.compile(r"<[^>]{0,200}>")


def plain_text(message: str) -> str:
    """The message without markup tags (a pasted "<img src=x …>" is not part of what is asked)."""
    return " ".join(_MARKUP.sub(" ", message).split()) or message


_CLAUSE_END = re.compile(r"(?<=[.!?:;])\s+")
REQUEST_CHARS = 300


def request_text(message: str, limit: int = REQUEST_CHARS) -> str:
    """The part of a message that asks. A long, rambling message ends with its request ("… Sorry for the long
    message: what hiking backpacks do you have?"): its last question, else its last clauses, up to `limit`
    characters."""
    text = " ".join(message.split())
    if len(text) <= limit:
        return text
    clauses = _CLAUSE_END.split(text)
    questions = [c for c in clauses if c.endswith("?") and content_words(c)]
    if questions:
        kept = [questions[-1]]
    else:
        kept = []
        for clause in reversed(clauses):
            if kept and sum(len(c) + 1 for c in kept) + len(clause) > limit:
                break
            kept.insert(0, clause)
    out = " ".join(kept)
    return out if len(out) <= limit else out[-limit:].split(" ", 1)[-1]


def shopping_need(message: str) -> str:
    """The product words of a request: markup, framing, budgets and trailing politeness removed."""
    text = _BUDGET.sub(" ", plain_text(request_text(message)))
    text = " ".join(text.split())
    while True:
        shorter = _FRAMING.sub("", text, count=1).strip()
        if shorter == text:
            break
        text = shorter
    return _TRAILING.sub("", text).strip(" ,.!?") or message.strip(" ,.!?")


def singular(word: str) -> str:
    """A word's singular, by English spelling rules (scarves → scarf, boxes → box, socks → sock)."""
    w = word.lower()
    if w in _FE:
        return _FE[w]
    if len(w) > 4 and w.endswith("ves"):
        return w[:-3] + "f"
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes", "zes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def content_words(text: str) -> set[str]:
    """The text's product words, singular: generic words ("something", "gift") left out."""
    return {singular(w) for w in WORD.findall(text.lower()) if len(w) > 2 and w not in GENERIC}


# Words of a correction or a constraint that name no product: "no, I meant the blue one", "actually under $60".
REFINING = frozenset(
    "sorry meant mean actually instead rather please pls not nope one ones about how what any anything else under "
    "over below above less more than cheaper pricier price budget max maximum size sized color colour colored "
    "coloured shade then okay let see show instead version versions".split()
)


def only_refines(message: str, stated: Iterable[str]) -> bool:
    """Whether a message names no product beyond the constraints it states (`stated`: the values of its colour,
    brand and size slots): a change to the last search, not a new one."""
    text = _BUDGET.sub(" ", plain_text(message))
    said = {singular(w) for value in stated for w in WORD.findall(value.lower())}
    return not (content_words(text) - REFINING - said)


_QUALIFIER = re.compile(
    r"\s*[,;:]\s*|\s+(?:for|to|with|without|that|which|who|from|in|on|at|like|by|under|over|below|above|around|about"
    r"|between|within|budget|nothing|no more than|less than|more than)\s+",
    re.I,
)


def thing_named(need: str) -> str:
    """The thing a need names, without what qualifies it: "refrigerator for my kitchen" → "refrigerator", "wall
    art in black and white" → "wall art" (the whole need when nothing before a qualifier names a product)."""
    head = _QUALIFIER.split(need, maxsplit=1)[0].strip(" ,.!?")
    return head if content_words(head) else need


def head_word(need: str) -> str | None:
    """The noun a need is about: the last product word of the thing it names ("fresh lobster" → "lobster")."""
    words = [singular(w) for w in WORD.findall(thing_named(need).lower()) if len(w) > 2 and w not in GENERIC]
    return words[-1] if words else None


def covers(need: str, products: Iterable[Product], best_similarity: float, min_similarity: float) -> bool:
    """Whether results cover a need: similar enough, and naming the thing it is about (a "surfboard" is not
    covered by the "Urban Surf Home Office Setup", nor "fresh lobster" by "Wicked Fresh" toothpaste), unless very
    similar."""
    if best_similarity < min_similarity:
        return False
    shown: set[str] = set()
    for p in products:
        shown |= content_words(" ".join([p.title, *p.category_path]))
    # "used cars" are not covered by toy cars: a condition the need states must be one a result states too.
    conditions = content_words(thing_named(need)) & CONDITIONS
    if not conditions <= shown:
        return False
    head = head_word(need)
    return head is None or best_similarity >= STRONG_MATCH or head in shown
