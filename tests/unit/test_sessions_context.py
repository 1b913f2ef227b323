"""The context budget: recent turns verbatim, older ones summarised, never over budget."""

from __future__ import annotations

import random

import pytest

from assistant.dialogue.context import (
    SUMMARY_HEADER,
    approx_tokens,
    build_history,
    messages_tokens,
    summarize_turns,
    turn_messages,
)
from assistant.sessions.models import Session, Turn


def make_session(n: int, *, answer_words: int = 12, summary: str | None = None, through: int | None = None) -> Session:
    turns = [
        Turn(
            turn_id=f"{i:032x}",
            index=i,
            user_message=f"request number {i} about shoes",
            status="completed",
            answer=" ".join(["word"] * answer_words) + f" answer{i}",
            intent="product_search",
            product_ids=[f"p{i}a", f"p{i}b"],
        )
        for i in range(n)
    ]
    return Session(session_id="s", shopper_id="u", turns=turns, summary=summary, summary_through=through)


def test_everything_verbatim_when_it_fits() -> None:
    session = make_session(3)
    history = build_history(session, 10_000)
    assert [role for role, _ in history] == ["user", "assistant"] * 3
    assert history[0] == ("user", "request number 0 about shoes")
    assert history[-1][1].endswith("answer2\n[products shown: p2a, p2b]")


def test_older_turns_collapse_into_a_deterministic_summary() -> None:
    session = make_session(6, answer_words=40)
    budget = 300
    history = build_history(session, budget)
    assert messages_tokens(history) <= budget
    role, summary = history[0]
    assert role == "system" and summary.startswith(SUMMARY_HEADER)
    verbatim_users = [content for role, content in history if role == "user"]
    assert verbatim_users and verbatim_users[-1] == "request number 5 about shoes"  # the latest turn verbatim
    first_verbatim = int(verbatim_users[0].split()[2])
    # Every older turn is in the summary with its request and the products it showed.
    for i in range(first_verbatim):
        assert f'"request number {i} about shoes" (product_search); shown: p{i}a, p{i}b' in summary
    assert f"request number {first_verbatim} " not in summary
    assert 0 < first_verbatim < 5 and "…" not in summary


def test_tight_budget_drops_the_oldest_summary_lines_first() -> None:
    history = build_history(make_session(10), 200)
    assert messages_tokens(history) <= 200
    _, summary = history[0]
    first_verbatim = int([c for r, c in history if r == "user"][0].split()[2])
    lines = summary.splitlines()
    assert lines[:2] == [SUMMARY_HEADER, "- …"]
    assert lines[-1].startswith(f'- the shopper asked: "request number {first_verbatim - 1} ')
    assert "request number 0 " not in summary


def test_llm_summary_replaces_the_turns_it_covers() -> None:
    session = make_session(10, summary="The shopper wants red running shoes under $80.", through=3)
    history = build_history(session, 10_000, max_verbatim_turns=4)
    role, summary = history[0]
    assert [c for r, c in history if r == "user"] == [f"request number {i} about shoes" for i in range(6, 10)]
    # Turns 0-3 are the LLM summary's; 4-5 (newer than it, older than the window) get their own lines.
    assert summary.splitlines() == [
        SUMMARY_HEADER,
        "The shopper wants red running shoes under $80.",
        '- the shopper asked: "request number 4 about shoes" (product_search); shown: p4a, p4b',
        '- the shopper asked: "request number 5 about shoes" (product_search); shown: p5a, p5b',
    ]
    squeezed = build_history(session, 200)
    assert messages_tokens(squeezed) <= 200 and "red running shoes under $80" in squeezed[0][1]


def test_summary_through_none_covers_all_older_turns() -> None:
    session = make_session(8, summary="Looking for boots.")
    _, summary = build_history(session, 120)[0]
    assert summary == f"{SUMMARY_HEADER}\nLooking for boots."


def test_only_completed_turns_count() -> None:
    session = make_session(2)
    session.turns.append(Turn(turn_id="f" * 32, index=2, user_message="cancelled one", status="cancelled"))
    session.turns.append(Turn(turn_id="e" * 32, index=3, user_message="running now"))
    contents = " ".join(c for _, c in build_history(session, 10_000))
    assert "cancelled one" not in contents and "running now" not in contents


def test_tiny_budgets() -> None:
    session = make_session(5)
    assert build_history(session, 0) == []
    assert build_history(make_session(0), 500) == []
    tiny = build_history(session, 30)
    assert messages_tokens(tiny) <= 30
    assert all(role == "system" for role, _ in tiny)
    huge_turn = make_session(1, answer_words=5_000)
    squeezed = build_history(huge_turn, 100)
    assert messages_tokens(squeezed) <= 100 and squeezed and squeezed[0][0] == "system"
    assert "request number 0" in squeezed[0][1]


def test_long_llm_summary_is_cut_to_fit() -> None:
    session = make_session(6, summary="likes " * 500, through=None)
    history = build_history(session, 120)
    assert messages_tokens(history) <= 120
    assert history[0][0] == "system" and history[0][1].endswith("…")


@pytest.mark.parametrize("seed", range(40))
def test_never_over_budget(seed: int) -> None:
    rng = random.Random(seed)
    session = make_session(rng.randint(0, 25), answer_words=rng.randint(0, 150))
    if rng.random() < 0.5:
        session.summary = "summary " * rng.randint(1, 200)
        session.summary_through = rng.choice([None, rng.randint(0, 25)])
    budget = rng.randint(1, 1500)

    def counter(text: str) -> int:
        return len(text.split()) * 2

    for count in (approx_tokens, counter):
        history = build_history(session, budget, count, max_verbatim_turns=rng.choice([None, 3]))
        assert messages_tokens(history, count) <= budget
        users = [c for r, c in history if r == "user"]
        # Verbatim turns are the most recent ones, in order.
        expected = [t.user_message for t in session.completed_turns()][len(session.turns) - len(users) :]
        assert users == expected


def test_deterministic_summary_and_turn_messages() -> None:
    session = make_session(2)
    session.turns[0].user_message = "x" * 200
    text = summarize_turns(session.turns)
    assert text == summarize_turns(session.turns)
    lines = text.splitlines()
    assert len(lines) == 2 and len(lines[0]) < 140 and lines[0].count("x") == 79
    assert lines[1] == '- the shopper asked: "request number 1 about shoes" (product_search); shown: p1a, p1b'
    assert turn_messages(Turn(turn_id="a" * 32, index=0, user_message="hi", status="completed")) == [
        ("user", "hi"),
        ("assistant", "(no answer)"),
    ]


def test_approx_tokens() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("a b c d e") == 5
    assert approx_tokens("x" * 400) == 100
