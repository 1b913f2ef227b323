"""`GroundingFilter`: the model's text streamed through, each sentence held from its first checkable word.

Words are let through until the current sentence holds something checkable (a digit, a currency sign, a
stock word, a capitalised name); from there the sentence is held until it ends, then checked against the
facts (`check_sentence`) and repaired or cut.
"""

from __future__ import annotations

import re

from assistant.grounding.facts import Facts
from assistant.grounding.patterns import COMMON, MONEY, SENTENCE_END, STOCK, WORD, amount_of
from assistant.grounding.sentence_check import check_sentence, stock_claim_ok
from retrieval.product import Product

HOLD_WORD = re.compile(r"^(?:stock|in-stock|available|unavailable|sold|left|remaining)\W*$", re.I)
WORD_WITH_SPACE = re.compile(r"\S+\s+")
LOOKBEHIND = 2  # "out of stock", "not in stock": the longest claim openers before the stock word
CLAIM_OPENER = re.compile(r"^(?:in|out|of|not|no|only|just|currently|still|units?|pieces?|items?|\d[\d,.]*)\W*$", re.I)
PARTIAL_OK = re.compile(r"[A-Za-z]+(?:'[A-Za-z]*)?")  # "I'd" may go out while arriving: no claim word has "'"
RISKY_WORDS = (
    "stock in-stock available unavailable sold left remaining in out of not no only just currently still units"
    " pieces items usd us eur euros dollars bucks"
).split()


class GroundingFilter:
    """Streams text through, holding and checking each sentence from its first checkable word."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.withheld: list[str] = []
        self._sentence = ""  # the current sentence, not yet ended
        self._emitted = 0  # how much of it was already let through
        self._holding = False  # the rest of the sentence waits for its end
        self.text = ""  # what was emitted, in full
        self.kept = 0  # sentences that went out with something in them
        self.cut = 0  # sentences cut for naming a product the facts do not hold

    def feed(self, delta: str) -> str:
        """Text that may be emitted now."""
        self._sentence += delta
        out = []
        while True:
            m = SENTENCE_END.search(self._sentence)
            if m is None:
                break
            sentence, self._sentence = self._sentence[: m.end()], self._sentence[m.end() :]
            out.append(self._close(sentence))
            self._emitted, self._holding = 0, False
        out.append(self._safe_prefix())
        piece = "".join(out)
        self.text += piece
        return piece

    def finish(self) -> str:
        """The held rest, checked."""
        piece = self._close(self._sentence) if self._sentence else ""
        self._sentence, self._emitted, self._holding = "", 0, False
        self.text += piece
        return piece

    def _safe_prefix(self) -> str:
        """Let complete words through until one needs the whole sentence to be judged."""
        if self._holding:
            return ""
        s = self._sentence
        complete = max(s.rfind(" "), s.rfind("\n")) + 1  # a word still arriving may become risky
        start = self._emitted
        words = list(WORD_WITH_SPACE.finditer(s, start, complete))
        safe: list[int] = []
        for k, m in enumerate(words):
            verdict = self._safe_word(m.group(0).strip(), s[: m.start()], [w.group(0).strip() for w in words[k + 1 :]])
            if verdict is None:
                break  # the next words decide
            if not verdict:
                self._holding = True
                break
            safe.append(m.end())
        # A claim opener among the last LOOKBEHIND safe words waits, with what follows it: "out of" may
        # become "out of stock" (and when holding, it belongs to the claim checked with the sentence).
        keep = len(safe)
        for k in range(max(0, len(safe) - LOOKBEHIND), len(safe)):
            if CLAIM_OPENER.match(words[k].group(0).strip()):
                keep = k
                break
        if keep:
            self._emitted = safe[keep - 1]
        gap = s[self._emitted : complete]
        if keep == len(words) and not gap.strip() and self._partial_safe(s[complete:], s[:complete]):
            self._emitted = len(s)  # the word still arriving cannot become a claim: no need to wait for its end
        return s[start : self._emitted]

    @staticmethod
    def _partial_safe(tail: str, before: str) -> bool:
        """Can a word still arriving go out now, whatever it becomes? Only letters, not the start of a stock, claim
        or currency word, and not capitalised after a sentence's first word (a name is checked once complete)."""
        if not PARTIAL_OK.fullmatch(tail) or (tail[0].isupper() and before.strip()):
            return False
        low = tail.lower()
        return not any(w.startswith(low) for w in RISKY_WORDS)

    def _about(self, before: str) -> Product | None:
        named = self.facts.mentions(before)
        if named:
            return named[-1][1]
        return next(iter(self.facts.products.values())) if len(self.facts.products) == 1 else None

    def _safe_word(self, word: str, before: str, following: list[str]) -> bool | None:
        """Safe: the word cannot start an unbacked claim. A stock claim or price is safe when it matches the
        facts for the product named last; a bare number waits for the two words after it (None)."""
        if HOLD_WORD.search(word):
            text = (before + word).rstrip(",;:).!?")
            claims = [m for m in STOCK.finditer(text) if m.end() == len(text)]
            return bool(claims) and stock_claim_ok(claims[-1], self._about(before[: claims[-1].start()]), self.facts)
        if re.search(r"[$€£]", word):
            m = MONEY.fullmatch(word.rstrip(",;:).!?"))
            return m is not None and self._price_ok(round(amount_of(m), 2), before)
        if re.search(r"\d", word):
            if len(following) < 2:
                return None
            tail = " ".join([word, *following[:2]])
            money = MONEY.match(tail)
            if money is not None and money.group("b") is not None:
                return self._price_ok(round(amount_of(money), 2), before)
            stock = STOCK.match(tail)
            if stock is not None and stock.group("n") is not None:
                return stock_claim_ok(stock, self._about(before), self.facts)
            return True  # a number that is neither a price nor a stock level ("4.5 stars")
        if word[:1].isupper() and before.strip():
            return all(w in self.facts.vocab or w in COMMON for w in WORD.findall(word.lower()))
        return True

    def _price_ok(self, amount: float, before: str) -> bool:
        named = self.facts.mentions(before)
        about = named[-1][1] if named else None
        if about is not None:
            return about.price is not None and round(about.price, 2) == amount
        return amount in self.facts.amounts

    def _close(self, sentence: str) -> str:
        check = check_sentence(sentence, self.facts)
        self.withheld.extend(check.withheld)
        head = sentence[: self._emitted]
        if not check.text:
            self.cut += 1
            if not head.strip():
                return ""
            return "… " if head[-1].isspace() else " … "
        if WORD.search(check.text.lower()):
            self.kept += 1
        if not check.text.startswith(head):
            # A repair touched the already emitted part (cannot happen: it held nothing checkable).
            return check.text[len(head) :] if len(check.text) > len(head) else ""
        return check.text[len(head) :]


def ground(text: str, facts: Facts) -> tuple[str, list[str]]:
    """Check a whole text at once: (grounded text, withheld claims)."""
    f = GroundingFilter(facts)
    out = f.feed(text) + f.finish()
    return out, f.withheld
