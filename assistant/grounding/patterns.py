"""The patterns every grounding step shares: money amounts, stock claims, words, sentence ends."""

from __future__ import annotations

import re

MONEY = re.compile(
    r"(?:(?:US)?\$|€|£|\bUSD\s?|\bEUR\s?)\s?(?P<a>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
    r"|(?P<b>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)\s?(?:dollars?|bucks|usd|euros?)\b",
    re.IGNORECASE,
)
STOCK = re.compile(
    r"\b(?:(?P<n>\d+)\s+(?:units?\s+|pieces?\s+|items?\s+)?(?:left|in stock|available|remaining)"
    r"|(?P<neg>out of stock|sold out|unavailable|not available|not in stock)"
    r"|(?P<pos>in stock|available))\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
CLOSED = re.compile(r"(?:[.!?][\"')\]]*|\n)\s*$")  # text that ends a sentence
CAPITALISED_RUN = re.compile(r"\b(?:[A-Z][\w'&-]+\s+)+[A-Z][\w'&-]+")
WORD = re.compile(r"[a-z0-9]+")
# Capitalised words that are not product names.
COMMON = {"i", "i'm", "i'll", "you", "we", "our", "the", "a", "an", "yes", "no", "sure", "sorry", "hello", "hi", "this"}


def amount_of(match: re.Match[str]) -> float:
    """The amount a MONEY match states."""
    return float((match.group("a") or match.group("b")).replace(",", ""))
