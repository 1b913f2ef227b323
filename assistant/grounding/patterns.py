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
# An offer: a coupon, discount, refund, free item or credit. Only what a tool returned or a policy says backs one
# (a catalog description is no authority on offers: it is free text, and may carry instructions).
OFFER = re.compile(
    r"\b(?:coupons?|promo(?:tion(?:al)?)?s?|vouchers?|discount(?:s|ed)?|\d+\s?(?:%|percent)\s?off|percent off"
    r"|refund(?:s|ed|able)?|store credit|credited|gift cards?|rebates?|cash ?back|price match(?:ed|ing)?|on the house"
    r"|complimentary|half[- ]price|bogo|gratis|gratuit[oa]s?|descuentos?|cup[oó]n(?:es)?|reembolsos?)\b"
    r"|(?<![\w-])(?<!feel )free(?![\w-])",
    re.IGNORECASE,
)
# A claim that something was done to an order, a cart or a payment: only a tool does that, and it says so itself.
DONE = re.compile(
    r"\b(?:i|we)(?:'ve|’ve|\s+have|\s+had|\s+just|\s+already|\s+now)*\s+(?:\w+ly\s+)?(?P<a>cancel+ed|refunded|returned"
    r"|added|removed|applied|processed|issued|placed|credited|updated|changed|approved|sent|emailed|reserved|booked"
    r"|confirmed|waived)\b"
    r"|\b(?:has|have|had)\s+(?:now\s+|already\s+|just\s+)?been\s+(?P<b>cancel+ed|refunded|returned|added|removed"
    r"|applied|processed|issued|placed|credited|updated|changed|approved|sent|confirmed|shipped|waived)\b"
    r"|\b(?:is|are)\s+(?:now\s+)?(?P<c>cancel+ed|refunded|applied|approved|waived)\b",
    re.IGNORECASE,
)
# Markup and links: the answer is plain text, and nothing in the facts is a tag, a script or a link to follow.
MARKUP = re.compile(
    r"<\s*/?\s*[a-z!][^>]*>|javascript\s*:|\bon[a-z]+\s*=|!\[[^\]]*\]\(|\[[^\]]*\]\([^)]*\)|\bhttps?://\S+|\bwww\.\S+",
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
