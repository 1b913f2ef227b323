"""The context budget: a session's history as chat messages that fit a token budget.

The most recent completed turns go verbatim; older ones collapse into one system message holding
the session's LLM summary (when it covers them) and a deterministic line per turn it does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from assistant.sessions.models import Session, Turn

Role = Literal["system", "user", "assistant"]
HistoryMessage = tuple[Role, str]
TokenCounter = Callable[[str], int]

MESSAGE_OVERHEAD_TOKENS = 4
"""Role markers and separators a chat template adds around every message."""
SUMMARY_HEADER = "Earlier in this conversation:"
SUMMARY_SHARE = 0.25
"""Share of the budget kept for the summary of older turns before more turns go verbatim."""
ELLIPSIS = "…"


def approx_tokens(text: str) -> int:
    """A cheap token estimate: about four characters a token, at least one per word."""
    if not text:
        return 0
    return max((len(text) + 3) // 4, len(text.split()))


def _clip(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + ELLIPSIS


def summary_line(turn: Turn, *, max_message_chars: int = 80) -> str:
    """One deterministic line for a turn: what the shopper asked and which products were shown (a person's turn:
    what the shopper and the agent said)."""
    if turn.kind == "person":
        said = "; ".join(
            f'{"the shopper" if m.sender == "shopper" else m.name or "the agent"}: "{_clip(m.text, max_message_chars)}"'
            for m in turn.messages
            if not m.internal
        )
        return f"- a customer-service agent talked with the shopper{': ' + said if said else ''}"
    line = f'- the shopper asked: "{_clip(turn.user_message, max_message_chars)}"'
    if turn.intent:
        line += f" ({turn.intent})"
    if turn.product_ids:
        line += "; shown: " + ", ".join(turn.product_ids)
    return line


def summarize_turns(turns: Sequence[Turn], *, max_message_chars: int = 80) -> str:
    """The deterministic summary used where no LLM summary covers the turns: one line per turn."""
    return "\n".join(summary_line(t, max_message_chars=max_message_chars) for t in turns)


def turn_messages(turn: Turn, *, include_product_ids: bool = True) -> list[HistoryMessage]:
    """A completed turn as a user message and an assistant message (with the product ids shown); a person's turn
    as what the shopper and the agent said, in order (agents' internal notes left out)."""
    if turn.kind == "person":
        said: list[HistoryMessage] = []
        for m in turn.messages:
            if not m.internal:
                said.append(("user", m.text) if m.sender == "shopper" else ("assistant", _agent_said(m.name, m.text)))
        return said
    answer = turn.answer.strip()
    if include_product_ids and turn.product_ids:
        answer = f"{answer}\n[products shown: {', '.join(turn.product_ids)}]".strip()
    return [("user", turn.user_message), ("assistant", answer or "(no answer)")]


def _agent_said(name: str | None, text: str) -> str:
    return f"[{name or 'Agent'}, customer service] {text}"


def messages_tokens(messages: Sequence[HistoryMessage], count_tokens: TokenCounter = approx_tokens) -> int:
    """What the messages cost against the budget, per-message overhead included."""
    return sum(count_tokens(content) + MESSAGE_OVERHEAD_TOKENS for _, content in messages)


def build_history(
    session: Session,
    budget_tokens: int,
    count_tokens: TokenCounter = approx_tokens,
    *,
    max_verbatim_turns: int | None = None,
    include_product_ids: bool = True,
) -> list[HistoryMessage]:
    """History messages, oldest first, costing at most `budget_tokens` (see `messages_tokens`).

    Only completed turns count; the turn being answered is the caller's to add.
    """
    if budget_tokens <= 0:
        return []
    turns = session.completed_turns()
    blocks = [turn_messages(t, include_product_ids=include_product_ids) for t in turns]
    costs = [messages_tokens(b, count_tokens) for b in blocks]
    reserve = int(budget_tokens * SUMMARY_SHARE)
    limit = len(turns) if max_verbatim_turns is None else min(len(turns), max(0, max_verbatim_turns))

    # Take recent turns verbatim while they, plus the summary of the rest (up to its reserve), fit.
    keep, spent = 0, 0
    while keep < limit:
        cost = spent + costs[len(turns) - keep - 1]
        older = turns[: len(turns) - keep - 1]
        summary_cost = _summary_cost(session, older, count_tokens) if older else 0
        if cost + min(summary_cost, reserve) > budget_tokens:
            break
        keep, spent = keep + 1, cost

    older = turns[: len(turns) - keep]
    messages: list[HistoryMessage] = []
    if older:
        summary = _fit_summary(session, older, budget_tokens - spent, count_tokens)
        if summary is not None:
            messages.append(("system", summary))
    for block in blocks[len(turns) - keep :]:
        messages.extend(block)
    return messages


def _summary_parts(session: Session, older: Sequence[Turn]) -> tuple[str | None, list[str]]:
    """The LLM summary (if it covers any of `older`) and deterministic lines for the turns it misses."""
    llm = session.summary.strip() if session.summary else None
    if not llm:
        return None, [summary_line(t) for t in older]
    through = session.summary_through
    if through is None:
        return llm, []
    missed = [t for t in older if t.index > through]
    if len(missed) == len(older):
        return None, [summary_line(t) for t in older]
    return llm, [summary_line(t) for t in missed]


def _render(llm: str | None, lines: Sequence[str], dropped: bool) -> str:
    parts = [SUMMARY_HEADER]
    if llm:
        parts.append(llm)
    if dropped:
        parts.append(f"- {ELLIPSIS}")
    parts.extend(lines)
    return "\n".join(parts)


def _summary_cost(session: Session, older: Sequence[Turn], count_tokens: TokenCounter) -> int:
    llm, lines = _summary_parts(session, older)
    return count_tokens(_render(llm, lines, False)) + MESSAGE_OVERHEAD_TOKENS


def _fit_summary(session: Session, older: Sequence[Turn], budget: int, count_tokens: TokenCounter) -> str | None:
    """The summary message within `budget`: oldest lines dropped first, then the LLM summary cut."""

    def fits(text: str) -> bool:
        return count_tokens(text) + MESSAGE_OVERHEAD_TOKENS <= budget

    llm, lines = _summary_parts(session, older)
    for start in range(len(lines) + 1):
        text = _render(llm, lines[start:], start > 0)
        if fits(text) and (start < len(lines) or llm or start == 0):
            return text
    if llm:
        # Longest prefix of the LLM summary that fits, by bisection over its length.
        lo, hi = 0, len(llm)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(_render(llm[:mid].rstrip() + ELLIPSIS, [], bool(lines))):
                lo = mid
            else:
                hi = mid - 1
        if lo > 0:
            return _render(llm[:lo].rstrip() + ELLIPSIS, [], bool(lines))
    return None
