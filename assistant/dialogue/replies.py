"""Reading a short reply as the answer to the question the assistant just asked ("which order?"): an order
number, a bare code, an ordinal ("the first one", "the 2nd"), "the most recent / oldest one", or — when there is
only one option — "yes" / "that one". The options are in the order the question listed them (newest first)."""

from __future__ import annotations

import re
from collections.abc import Sequence

ORDER_NUMBER = re.compile(r"\b(?:ORD[-_ ]?)?([A-Z0-9]{6})\b", re.IGNORECASE)
NEWEST = re.compile(r"\b(?:most recent|latest|newest|last (?:one|order)|recent one)\b", re.I)
OLDEST = re.compile(r"\b(?:oldest|earliest|first (?:order )?i (?:made|placed))\b", re.I)
ONLY = re.compile(r"^\s*(?:yes|yeah|yep|sure|ok(?:ay)?|that one|this one|that order|it)\b", re.I)
MAX_REPLY_WORDS = 12  # a longer message is a new request, not an answer
_ORDINALS = {w: i for i, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split(), 1)}
ORDINAL = re.compile(
    r"\b(?:the\s+)?(?P<w>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\d{1,2}(?:st|nd|rd|th))\b"
    r"|(?:#\s?|\b(?:number|no\.|option)\s+)(?P<n>\d{1,2})\b",
    re.I,
)


def ordinal_index(text: str) -> int | None:
    """The position (from 1) an ordinal in `text` names: "the second one", "2nd", "number 2", "#2"."""
    m = ORDINAL.search(text)
    if m is None:
        return None
    if m.group("n"):
        return int(m.group("n"))
    word = m.group("w").lower()
    return int(re.sub(r"\D", "", word)) if word[0].isdigit() else _ORDINALS[word]


def order_reply(message: str, options: Sequence[str]) -> str | None:
    """The option (an order id) `message` picks, or None when it picks none of them."""
    if not options or len(message.split()) > MAX_REPLY_WORDS:
        return None
    wanted = {o.upper().removeprefix("ORD-"): o for o in options}
    for m in ORDER_NUMBER.finditer(message):
        code = m.group(1).upper()
        if code in wanted and (m.group(0).upper().startswith("ORD") or any(c.isdigit() for c in code)):
            return wanted[code]
    if NEWEST.search(message):
        return options[0]
    if OLDEST.search(message):
        return options[-1]
    index = ordinal_index(message)
    if index is not None:
        return options[index - 1] if 1 <= index <= len(options) else None
    if len(options) == 1 and ONLY.search(message):
        return options[0]
    return None
