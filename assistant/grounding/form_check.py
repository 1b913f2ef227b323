"""Tone and form of one whole sentence: echoes of the shopper's message, fragments, repeats, too many sentences.

Only checks that are cheap and reliable on a whole sentence: a long run of the shopper's own words (product names
the facts hold do not count) or of the instructions the model was given (its system prompt: never the shopper's to
read), a sentence of function words only or one that ends on one ("The.", "… for the."),
filler ("I'm ready"), and a sentence whose content words were all said already.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.grounding.claims import normalised

ECHO_WORDS = 5  # a run of this many of the shopper's words, in order, is an echo
MAX_SENTENCES = 3
FUNCTION_WORDS = frozenset(
    """
    the a an and or but of with to for in on at by from as is are was be it its this that these those there here
    your our their my his her we you they i so then also very just
    """.split()
)
DANGLING = frozenset("the a an and or but of with your our their its my".split())  # no sentence ends on these
FILLER = re.compile(r"^(?:i ?m|i am|we re|we are) (?:ready|here)(?: to (?:help|assist)(?: you)?| for you)?$")
LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*$")
TITLE_SLOT = "\x00"  # one word standing for a product title, in echo checks


def _words(text: str) -> list[str]:
    return normalised(text).split()


def _content(words: Sequence[str]) -> set[str]:
    """Content words, a final "s" dropped ("costs" and "cost" say the same)."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in FUNCTION_WORDS}


def _longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


class FormCheck:
    """Judges the sentences of one answer in order; `problem(sentence)` says why one must be dropped, or None
    (and then counts it as said)."""

    def __init__(self, message: str = "", titles: Sequence[str] = (), instructions: str = "") -> None:
        # Longest titles first, so a title inside another one is not matched apart from it.
        self.titles = sorted({" " + " ".join(_words(t)) + " " for t in titles if _words(t)}, key=len, reverse=True)
        self.message = self._with_titles(message)
        self.instructions = _words(instructions)  # what the model was told: an answer never repeats it
        self.said: list[list[str]] = []  # the sentences that went out, as words
        self.seen: set[str] = set()  # every sentence judged, kept or not
        self.repeated_exactly = False

    def _with_titles(self, text: str) -> list[str]:
        """The words of `text`, each product title one word: naming the product the shopper named is no echo."""
        norm = normalised(text)
        for title in self.titles:
            norm = norm.replace(title, f" {TITLE_SLOT} ")
        return norm.split()

    def problem(self, sentence: str, checked: bool = True) -> str | None:
        """Why `sentence` must be dropped, or None. Every sentence is remembered, to spot a model saying one again
        word for word (`repeated_exactly`); with `checked` False (dropped already) nothing else is judged."""
        words = _words(sentence)
        key = " ".join(words)
        if key and key in self.seen:
            self.repeated_exactly = True
            return "repeats an earlier sentence"
        self.seen.add(key)
        if not checked:
            return None
        if not words or LIST_MARK.match(sentence):
            return f"fragment {sentence.strip()!r}"
        if all(w in FUNCTION_WORDS for w in words):
            return f"fragment {sentence.strip()!r}"
        if FILLER.match(key):
            return f"filler {sentence.strip()!r}"
        if sentence.rstrip().endswith(".") and words[-1] in DANGLING:
            return f"unfinished sentence {sentence.strip()!r}"
        if self.message and self._echoes(sentence):
            return "echo of the shopper's message"
        if self.instructions and _longest_common_run(self.instructions, words) >= ECHO_WORDS:
            return "echo of the assistant's instructions"
        content = _content(words)
        for earlier in self.said:
            before = _content(earlier)
            if len(content) >= 2 and (content <= before or len(content & before) >= 0.8 * len(content | before)):
                return "repeats an earlier sentence"
        if len(self.said) >= MAX_SENTENCES:
            return f"more than {MAX_SENTENCES} sentences"
        self.said.append(words)
        return None

    def note(self, sentence: str) -> None:
        """Count a sentence that went out without being judged (one built from the facts)."""
        self.said.append(_words(sentence))
        self.seen.add(" ".join(_words(sentence)))

    def _echoes(self, sentence: str) -> bool:
        words = self._with_titles(sentence)
        run = _longest_common_run(self.message, words)
        question = sentence.rstrip().endswith("?") and run >= 3 and run >= 0.6 * len(self.message)
        return run >= ECHO_WORDS or question
