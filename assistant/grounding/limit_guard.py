"""`LimitGuard`: an answer the model's token limit cuts short ends at its last whole sentence."""

from __future__ import annotations

from assistant.grounding.patterns import CLOSED, SENTENCE_END


class LimitGuard:
    """Ends an answer that the model's token limit cuts short at its last whole sentence, not mid-word ("This
    sleek brown p"). From `window` tokens before the limit on, text goes out only up to a sentence end; the
    rest is held until the stream ends: said when the model finished by itself; when the limit cut it, an
    unfinished sentence none of which went out is left out, and one partly out ends before its last word
    (which may be cut mid-word) with "…"."""

    def __init__(self, max_tokens: int, window: int = 16) -> None:
        self.watch_from = max(max_tokens - window, 0)
        self.held = ""
        self.dropped = ""  # what a cut answer lost
        self._tail = ""  # the end of what went out

    def feed(self, text: str, tokens: int) -> str:
        """Text that may go out now, `tokens` model tokens into the stream."""
        if tokens >= self.watch_from or self.held:
            self.held += text
            ends = list(SENTENCE_END.finditer(self.held))
            if not ends:
                return ""
            text, self.held = self.held[: ends[-1].end()], self.held[ends[-1].end() :]
        self._tail = (self._tail + text)[-80:]
        return text

    def finish(self, cut: bool) -> str:
        held, self.held = self.held, ""
        if not cut or not held.strip() or CLOSED.search(held):
            return held
        if not self._tail.strip() or CLOSED.search(self._tail):
            self.dropped = held  # a sentence none of which went out: left out whole
            return ""
        # The sentence is partly out: finish it with its words but the last (perhaps cut mid-word), and "…".
        keep = held[: len(held) - len(held.split()[-1])] if held[-1:].strip() else held
        self.dropped = held[len(keep) :]
        return keep + "…"
