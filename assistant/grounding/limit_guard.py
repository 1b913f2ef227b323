"""`LimitGuard`: an answer the model's token limit cuts short ends at its last whole sentence."""

from __future__ import annotations

from assistant.grounding.patterns import CLOSED, SENTENCE_END


class LimitGuard:
    """Ends an answer that the model's token limit cuts short at its last whole sentence, not mid-word ("This
    sleek brown p"). From `window` tokens before the limit on, text goes out only up to a sentence end; the
    rest is held until the stream ends: said when the model finished by itself, left out when the limit cut it.
    Behind `GroundingFilter`, which lets only whole sentences out, no unfinished sentence has any of its words
    out already; should one have (another source), its held rest is still left out, never marked with "…"."""

    def __init__(self, max_tokens: int, window: int = 16) -> None:
        self.watch_from = max(max_tokens - window, 0)
        self.held = ""
        self.dropped = ""  # what a cut answer lost

    def feed(self, text: str, tokens: int) -> str:
        """Text that may go out now, `tokens` model tokens into the stream."""
        if tokens >= self.watch_from or self.held:
            self.held += text
            ends = list(SENTENCE_END.finditer(self.held))
            if not ends:
                return ""
            text, self.held = self.held[: ends[-1].end()], self.held[ends[-1].end() :]
        return text

    def finish(self, cut: bool) -> str:
        held, self.held = self.held, ""
        if not cut or not held.strip() or CLOSED.search(held):
            return held
        self.dropped = held  # an unfinished sentence is left out whole
        return ""
