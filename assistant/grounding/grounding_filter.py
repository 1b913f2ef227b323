"""`GroundingFilter`: the model's text let out one whole sentence at a time, each judged before any of it goes out.

A sentence is dropped whole when it names a product the turn did not show, says a number, date, percentage, size,
colour, material or feature the facts do not hold, or fails the form check (an echo of the shopper's message, a
fragment, filler, a repeat); its wrong prices and stock levels are repaired. Nothing of a sentence goes out before
it is judged, so a dropped sentence leaves no trace and the answer goes on with the next one. Plain words are not
let out early: a claim later in the same sentence would leave them dangling ("The guitar is a great choice,
but …").

The first token does not wait for the first sentence when it begins with an opener that can always be finished:
"The" (the answer prompt's `reply_start`), finished from the facts when its sentence is dropped ("The <top
result> costs <price>."), and greetings and interjections ("Hello", "Sure", "You're welcome"), finished with "!".
The opener goes out as soon as it is a whole word; the rest of its sentence waits like any other.
"""

from __future__ import annotations

import re

from assistant.grounding.facts import Facts, format_price
from assistant.grounding.form_check import FormCheck
from assistant.grounding.patterns import CLOSED, SENTENCE_END, WORD
from assistant.grounding.sentence_check import check_sentence
from retrieval.product import Product

# Openers, each a whole word followed by something that is not part of a word.
THE = re.compile(r"\s*The(?=[^\w'’-])")
INTERJECTION = re.compile(
    r"\s*(?:hello|hi|hey|sure|thanks|thank you|great|certainly|absolutely|of course|welcome|you(?:'|’)re welcome"
    r"|good (?:morning|afternoon|evening)|happy to help)(?=[^\w'’-])",
    re.IGNORECASE,
)


class GroundingFilter:
    """Lets text through whole sentences, each repaired or dropped against the facts; see the module doc."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.form = FormCheck(facts.message, [p.title for p in facts.products.values()], facts.instructions)
        self.withheld: list[str] = []
        self.repaired: list[str] = []  # those of `withheld` that were repaired in a sentence that went out
        self._sentence = ""  # the current sentence, not yet ended
        self._opener = ""  # what of it went out: only ever an opener of the first sentence
        self._first = True  # no sentence judged yet
        self.text = ""  # what was emitted, in full
        self.kept = 0  # sentences that went out with something in them
        self.cut = 0  # sentences dropped

    @property
    def looping(self) -> bool:
        """The model said a sentence again, word for word: what follows is a loop, not worth waiting for."""
        return self.form.repeated_exactly

    def feed(self, delta: str) -> str:
        """Text that may be emitted now: an opener, and the sentences `delta` ended, judged."""
        self._sentence += delta
        out = [self._release_opener()]
        while (m := SENTENCE_END.search(self._sentence)) is not None:
            sentence, self._sentence = self._sentence[: m.end()], self._sentence[m.end() :]
            out.append(self._close(sentence))
        piece = "".join(out)
        self.text += piece
        return piece

    def finish(self, cut: bool = False) -> str:
        """The held rest, judged; `cut`: the token limit ended the model mid-sentence."""
        rest, self._sentence = self._sentence, ""
        if cut and self._opener and not CLOSED.search(rest):
            # The opener went out and its sentence never ended: finish the opener instead.
            self.withheld.append(f"unfinished at the token limit (sentence dropped): {rest[len(self._opener) :]!r}")
            self.cut += 1
            piece = self._finish_opener(rest)
        else:
            piece = self._close(rest)
        self.text += piece
        return piece

    def _release_opener(self) -> str:
        if not self._first or self._opener:
            return ""
        m = INTERJECTION.match(self._sentence)
        if m is None and self.facts.products:
            m = THE.match(self._sentence)
            if m is not None and self._sentence[m.end() :].strip():
                # With its space once a word follows: "The " goes out with the model's first word, as it did.
                m = re.compile(r"\s*The\s+").match(self._sentence) or m
        if m is None:
            return ""
        self._opener = m.group(0)
        return self._opener

    def _close(self, sentence: str) -> str:
        """Judge one whole sentence: what of it goes out now."""
        head, self._opener = self._opener, ""
        if not sentence.strip():
            return ""
        first, self._first = self._first, False
        check = check_sentence(sentence, self.facts)
        problem = self.form.problem(check.text or sentence, checked=bool(check.text))
        if check.text and problem is None and check.text.startswith(head):
            self.withheld.extend(check.withheld)
            self.repaired.extend(check.withheld)
            if WORD.search(check.text.lower()):
                self.kept += 1
            return check.text[len(head) :]
        self.cut += 1
        self.withheld.extend([f"{problem} (sentence dropped)"] if problem else check.withheld)
        if first and head:
            self._opener = head
            return self._finish_opener(sentence)
        return ""

    def _finish_opener(self, sentence: str) -> str:
        """The rest of a sentence whose opener already went out, from the facts: a whole sentence all the same."""
        head, self._opener, self._first = self._opener, "", False
        gap = sentence[len(sentence.rstrip()) :] or " "
        self.kept += 1
        if head.strip() != "The":
            self.form.note(head + "!")
            return "!" + gap
        product = next(iter(self.facts.products.values()))  # the top result: the dropped sentence may name another
        more = len(self.facts.products) - 1
        options = "one more option" if more == 1 else f"{more} more options"
        rest = f"{product.title} {_fact(product)}" + (f"; see the cards for {options}." if more else ".")
        self.form.note(f"{head.strip()} {rest}")
        return ("" if head[-1:].isspace() else " ") + rest + gap


def _fact(p: Product) -> str:
    if p.price is not None:
        return f"costs {format_price(p.price, p.currency)}"
    if p.stock is None:
        return "is shown on its card"
    return f"has {p.stock} in stock" if p.in_stock else "is out of stock"


def ground(text: str, facts: Facts) -> tuple[str, list[str]]:
    """Check a whole text at once: (grounded text, withheld claims)."""
    f = GroundingFilter(facts)
    out = f.feed(text) + f.finish()
    return out, f.withheld
