"""`QualityGate`: refusals and confusion rejected in the first words of an answer, loops stopped."""

from __future__ import annotations

import re

from assistant.grounding.patterns import SENTENCE_END, WORD

# Refusals and confusion, as word sequences (lower case, apostrophes dropped); judged in the first words.
JUNK_PHRASES = tuple(
    tuple(phrase.split())
    for phrase in (
        "im sorry", "i am sorry", "sorry for", "not sure", "i dont know what", "as an ai", "language model",
        "i cannot", "i cant", "im not able", "i am not able", "glad you", "youre right", "your loss",
    )
)  # fmt: skip
ENUMERATOR = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
HELD_WORD = re.compile(r"\S+\s+")
LIST_MARK = re.compile(r"\d+[.)]?|[-*•]")


def _norm(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def _junk_at(words: list[str], start: int, complete: int) -> tuple[str, str] | None:
    """("match", phrase) when a junk phrase is all there in `words` from `start`; ("maybe", phrase) when the words
    so far (the last possibly still arriving) may begin one; else None. The first `complete` words are whole."""
    verdict = None
    for phrase in JUNK_PHRASES:
        seen = words[start : start + len(phrase)]
        whole = seen[: max(0, complete - start)]
        partial = seen[len(whole) :]
        if whole != list(phrase[: len(whole)]):
            continue
        if partial and not phrase[len(whole)].startswith(partial[0]):
            continue
        if len(whole) == len(phrase):
            return "match", " ".join(phrase)
        verdict = ("maybe", " ".join(phrase))
    return verdict


def _key(sentence: str) -> str:
    return " ".join(WORD.findall(sentence.lower()))


class QualityGate:
    """Rejects refusals and confusion in the first words of the model's (already grounded) text, holding only
    the words that may begin one ("I" may become "I'm sorry"; "The Arctic" cannot and goes out at once); after
    that, stops the text when a sentence repeats an earlier one (small models loop). A rejected answer is
    replaced by the plan's fixed text."""

    def __init__(self, judge_words: int = 4) -> None:
        self.judge_words = judge_words  # refusals and confusion show in the first words
        self.rejected: str | None = None
        self.looping = False
        self._open = False
        self._seen: list[str] = []
        self._cur = ""  # the sentence being received (while judging: all text so far)
        self._sent = 0  # how much of it went out

    @property
    def released(self) -> bool:
        """Has any text gone out (so a rejection comes after some words)?"""
        return self._open or self._sent > 0 or bool(self._seen)

    def feed(self, text: str, *, last: bool = False) -> str:
        """Text that may go out now; `last`: the model is done, judge whatever is held."""
        if self.rejected or self.looping:
            return ""
        self._cur += text
        if not self._open:
            if not self._sent:
                self._cur = self._cur.lstrip()
                if not last and LIST_MARK.fullmatch(self._cur):
                    return ""  # "1" may become "1. ", which is dropped
                self._cur = ENUMERATOR.sub("", self._cur)
            release = self._judge(last)
            if self.rejected or not self._open:
                out = self._cur[self._sent : release]
                self._sent = max(self._sent, release)
                return out
        return self._pass()

    def _judge(self, last: bool) -> int:
        """Reject, or open, or say how much of the held text may go out: the words before the first that may
        begin a junk phrase."""
        spans = list(HELD_WORD.finditer(self._cur))
        tail = self._cur[spans[-1].end() if spans else 0 :]
        words = [_norm(m.group(0)) for m in spans] + ([_norm(tail)] if tail.strip() else [])
        complete = len(words) if last else len(spans)
        if not any(words):
            if last:
                self.rejected = "no words"
            return self._sent
        safe = 0
        for start in range(min(len(words), self.judge_words)):
            if not words[start]:  # punctuation; still arriving, it may become a word
                verdict = ("maybe", "") if start >= complete else None
            else:
                verdict = _junk_at(words, start, complete)
            if verdict is not None and verdict[0] == "match":
                self.rejected = verdict[1]
                return self._sent
            if verdict is not None:
                break
            safe = start + 1
        if safe >= self.judge_words or (last and safe == len(words)):
            self._open = True
        if safe == 0:
            return self._sent
        return spans[safe - 1].end() if safe <= len(spans) else len(self._cur)

    def finish(self, text: str = "") -> str:
        out = self.feed(text, last=True)
        if self._cur and not self.looping and not self.rejected:
            if _key(self._cur) in self._seen:
                self.looping = True
            else:
                out += self._cur[self._sent :]
            self._cur, self._sent = "", 0
        return out

    def _pass(self) -> str:
        out = ""
        while (m := SENTENCE_END.search(self._cur)) is not None:
            sentence, self._cur = self._cur[: m.end()], self._cur[m.end() :]
            key = _key(sentence)
            if key and key in self._seen:
                self.looping = True
                return out
            self._seen.append(key)
            out += sentence[self._sent :]
            self._sent = max(0, self._sent - len(sentence))
        partial = _key(self._cur)
        # A sentence that so far repeats the start of an earlier one is held until it ends or diverges.
        if not (partial and any(seen.startswith(partial) for seen in self._seen)):
            out += self._cur[self._sent :]
            self._sent = len(self._cur)
        return out
