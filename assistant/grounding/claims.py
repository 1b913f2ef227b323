"""The claims a text makes that can be checked against the facts (`claims_in`): numbers and years, measures
("12-in", "30 days"), percentages, sizes, colours, materials and features, dates; and the same values gathered
from the facts' own texts (`Values`), which back them.

Prices are not claims here: a money amount is checked (and repaired) by the sentence check's price rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from assistant.grounding.patterns import MONEY
from assistant.grounding.vocab import (
    COLOURS,
    DAYS_RELATIVE,
    FEATURES,
    FORMS,
    MATERIALS,
    MONTHS,
    NUMBER_WORDS,
    UNITS,
    WEEKDAYS,
)

NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNIT_WORDS = "|".join(sorted((re.escape(u) for u in UNITS if u.isalpha()), key=len, reverse=True))
# A number and what follows it: an ordinal ("2nd"), a unit ("12-inch", "30 days", "12in", '12"'), or nothing.
# "in" is a unit only when attached ("12in", "12-in"): "3 in stock" is not three inches.
MEASURE = re.compile(
    rf"(?<![\w.])(?P<n>{NUM})(?:(?P<ord>st|nd|rd|th)\b"
    rf"|(?:\s?-\s?|\s)?(?P<unit>{_UNIT_WORDS})(?!\w)|-?(?P<inch>in)\b|(?P<quote>[\"″])|(?!\w))",
    re.IGNORECASE,
)
# "12 x 8 x 3 inches" in a record: every number of the chain has the unit.
CHAIN = re.compile(
    rf"(?<![\w.]){NUM}(?:\s*(?:x|×|by)\s*{NUM})+\s*-?\s*(?P<unit>{_UNIT_WORDS}|in\b|[\"″])", re.IGNORECASE
)
PERCENT = re.compile(rf"(?<![\w.])(?P<n>{NUM})\s?(?:%|percent\b|per\s?cent\b)", re.IGNORECASE)
RATING_SCALE = re.compile(r"\s*(?:/|out of)\s*(?:5|five)\b", re.IGNORECASE)  # "4.5 out of 5": the scale
SIZE_TOKEN = r"(?:[2-5]?X{1,4}[SL]|[SML]|\d+(?:\.\d+)?|small|medium|large|extra[- ]large)"
SIZE = re.compile(
    rf"\bsizes?\b\s*:?\s*(?P<list>{SIZE_TOKEN}\b(?:\s*(?:-|–|to|and|or|,|/)\s*{SIZE_TOKEN}\b)*)", re.IGNORECASE
)
SIZE_ITEM = re.compile(SIZE_TOKEN, re.IGNORECASE)
LETTER_SIZE = re.compile(r"\b[2-5]?X{1,4}[SL]\b")  # XS, XL, XXL, 2XL (capitals only: "xl" may be anything)
NUMBER_WORD = re.compile(r"\b(?:" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
DATE = re.compile(
    r"\b(?:" + "|".join(sorted(MONTHS | WEEKDAYS | DAYS_RELATIVE)) + r")\b"
    r"|\bmay\s+\d{1,2}(?:st|nd|rd|th)?\b|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?may\b"
    r"|\b(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?\s+\d{1,2}\b",
    re.IGNORECASE,
)
TOKEN = re.compile(r"[a-z0-9]+")


def number(text: str) -> float:
    return round(float(text.replace(",", "")), 2)


def normalised(text: str) -> str:
    """Lower-case words joined by single spaces, padded: "Water-resistant, 2-pack" -> " water resistant 2 pack "."""
    return " " + " ".join(TOKEN.findall(text.lower())) + " "


@dataclass(frozen=True)
class Claim:
    """One checkable thing a sentence says: its kind, the words that say it, and what backs it."""

    kind: str  # number, year, ordinal, measure, percentage, size, colour, material, feature, date
    said: str
    value: float | None = None
    unit: str | None = None
    term: str | None = None  # a vocabulary word or phrase (size, colour, material, feature, date)

    def describe(self) -> str:
        return f"{self.kind} {self.said.strip()!r}"


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _unit(m: re.Match[str]) -> str | None:
    if m.group("inch") or m.group("quote"):
        return "in"
    unit = m.group("unit")
    return UNITS[unit.lower()] if unit else None


def claims_in(text: str) -> list[Claim]:
    """The checkable claims of `text`, prices left out."""
    out: list[Claim] = []
    t = text
    for rx in (MONEY, RATING_SCALE):
        for m in rx.finditer(t):
            t = _blank(t, m.start(), m.end())
    for m in PERCENT.finditer(t):
        out.append(Claim("percentage", m.group(0), value=number(m.group("n"))))
        t = _blank(t, m.start(), m.end())
    for m in SIZE.finditer(t):
        out += [Claim("size", f"size {s[0]}", term=normalised(s[0]).strip()) for s in SIZE_ITEM.finditer(m["list"])]
        t = _blank(t, m.start(), m.end())
    for m in LETTER_SIZE.finditer(t):
        out.append(Claim("size", m.group(0), term=m.group(0).lower()))
        t = _blank(t, m.start(), m.end())
    for m in MEASURE.finditer(t):
        value, unit = number(m.group("n")), _unit(m)
        if m.group("ord"):
            out.append(Claim("ordinal", m.group(0), value=value))
        elif unit:
            out.append(Claim("measure", m.group(0), value=value, unit=unit))
        else:
            year = value.is_integer() and 1900 <= value <= 2100 and "," not in m.group("n")
            out.append(Claim("year" if year else "number", m.group(0), value=value))
    for m in NUMBER_WORD.finditer(t):
        out.append(Claim("number", m.group(0), value=float(NUMBER_WORDS[m.group(0).lower()])))
    for m in DATE.finditer(t):
        word = TOKEN.findall(m.group(0).lower())
        out.append(Claim("date", m.group(0), term=next(w for w in word if not w.isdigit())))
    words = TOKEN.findall(t.lower())
    for i, w in enumerate(words):
        if w in COLOURS:
            out.append(Claim("colour", w, term=w))
        elif w in MATERIALS:
            out.append(Claim("material", w, term=w))
        for phrase in (w, f"{w} {words[i + 1]}" if i + 1 < len(words) else ""):
            if phrase in FEATURES:
                out.append(Claim("feature", phrase, term=phrase))
    return out


@dataclass
class Values:
    """The values a set of fact texts holds: numbers, measures (number, unit), units, percentages, and its words."""

    numbers: set[float] = field(default_factory=set)
    measures: set[tuple[float, str]] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    percents: set[float] = field(default_factory=set)
    words: set[str] = field(default_factory=set)
    text: str = " "

    @classmethod
    def of(cls, texts: Iterable[str]) -> Values:
        v = cls()
        parts = [t for t in texts if t]
        joined = "\n".join(parts)
        v.text = normalised(joined)
        v.words = set(v.text.split())
        for m in PERCENT.finditer(joined):
            v.percents.add(number(m.group("n")))
        for m in MEASURE.finditer(joined):
            value, unit = number(m.group("n")), _unit(m)
            v.numbers.add(value)
            if unit:
                v.measures.add((value, unit))
                v.units.add(unit)
        for m in CHAIN.finditer(joined):
            unit = "in" if m.group("unit").lower() in ("in", '"', "″") else UNITS[m.group("unit").lower()]
            v.units.add(unit)
            for n in re.finditer(NUM, m.group(0)):
                v.measures.add((number(n.group(0)), unit))
        for m in NUMBER_WORD.finditer(joined):
            v.numbers.add(float(NUMBER_WORDS[m.group(0).lower()]))
        return v

    def has_term(self, term: str) -> bool:
        """Does the text use this word or phrase (or a spelling that means the same)?"""
        return any(f" {form} " in self.text for form in FORMS.get(term, frozenset([term])))
