"""A stored conversation as a scenario of the offline dialogue evaluation ("Save as test case" in the agent console).

The format is `eval/dialogues/scenario.py`'s; this module builds it as plain data (the service never imports `eval/`,
see ARCHITECTURE), and `eval.dialogues.export.scenario_from_session` validates it into a `Scenario`. The checks are
what was observed, kept conservative so they hold whenever the assistant behaves the same again: the turn's intent,
the tools it called (by name, in any order), how many cards it showed (or none), cards it showed again from earlier
turns, the kinds of citations, a handoff. Messages the shopper wrote to a person are left out (the evaluation has no
person to answer them); the description says how many.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import yaml

MAX_SAY = 2000  # the scenario format's longest message
UNSAFE_NAME = re.compile(r"[^a-z0-9_.-]+")


def scenario_name(session_id: str) -> str:
    tail = UNSAFE_NAME.sub("-", session_id.lower()).strip("-._")[:40] or "session"
    return f"console-{tail}"


def _tool_names(trace: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for entry in trace:
        name = entry.get("name")
        if "arguments" in entry and isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _say(text: str) -> str:
    # `{order}` names a fixture order in the format; a shopper's literal braces must not read as one.
    return text.replace("{", "(").replace("}", ")")[:MAX_SAY]


def session_scenario(session: dict[str, Any]) -> dict[str, Any]:
    """The scenario (as data, None-free) of a stored session (`Session.model_dump(mode="json")`, as GET
    /v1/sessions/{id} returns it). Raises ValueError when the bot answered nothing to replay."""
    turns: list[dict[str, Any]] = []
    shown: list[list[str]] = []  # each scenario turn's cards, in order
    to_person = 0
    observed: list[str] = []
    for turn in session.get("turns") or []:
        if turn.get("kind", "bot") == "person":
            to_person += sum(1 for m in turn.get("messages") or [] if m.get("sender") == "shopper")
            continue
        message = str(turn.get("user_message") or "").strip()
        if not message:
            continue
        n = len(turns) + 1
        expect: dict[str, Any] = {}
        products = [str(p) for p in turn.get("product_ids") or []]
        if turn.get("status") == "completed":
            if turn.get("intent"):
                expect["intent"] = [turn["intent"]]
            tools = _tool_names(turn.get("tool_trace") or [])
            if tools:
                expect["tools"] = {"any_order": [{"name": name} for name in tools]}
            if products:
                check: dict[str, Any] = {"min": len(products)}
                again = []
                for pid in products:
                    earlier = next(
                        ({"turn": t, "rank": cards.index(pid) + 1} for t, cards in enumerate(shown, 1) if pid in cards),
                        None,
                    )
                    if earlier is not None:
                        again.append(earlier)
                if again:
                    check["include"] = again
                expect["products"] = check
                observed.append(f"turn {n}: {', '.join(products)}")
            else:
                expect["no_products"] = True
            kinds = sorted({str(c).split(":", 1)[0] for c in turn.get("citations") or []})
            if kinds:
                expect["citations"] = kinds
            if "handoff_to_human" in tools:
                expect["handoff"] = True
        turns.append({"say": _say(message), "expect": expect})
        shown.append(products)
    if not turns:
        raise ValueError("the bot answered no message of this session: nothing to replay")
    session_id = str(session.get("session_id", ""))
    lines = [f"Saved from the agent console: session {session_id} of shopper {session.get('shopper_id', '?')}."]
    if observed:
        lines.append("Cards shown: " + "; ".join(observed) + ".")
    if to_person:
        lines.append(f"Left out: {to_person} message(s) the shopper wrote to a person.")
    return {
        "name": scenario_name(session_id),
        "description": " ".join(lines),
        "tags": ["from-console"],
        "turns": turns,
    }


def scenario_yaml(session: dict[str, Any], now: datetime | None = None) -> str:
    """The scenario as a suite file `python -m eval.dialogues FILE` runs."""
    scenario = session_scenario(session)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"# A test case saved from the agent console on {when}.\n"
        f"# Run it: python -m eval.dialogues {scenario['name']}.yaml --in-process --llm fake\n"
        "# Format: eval/dialogues/scenario.py (JSON schema: eval/dialogues/scenario.schema.json).\n"
    )
    return head + yaml.safe_dump({"scenarios": [scenario]}, sort_keys=False, allow_unicode=True, width=120)
