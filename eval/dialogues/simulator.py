"""Simulated shoppers: a scenario with a goal instead of fixed turns gets its messages from here.

The default simulator is deterministic and template-driven: the opening message is drawn (seeded) from real
customer-support utterances of the matching intent in the shipped Bitext data, or from a few templates; after
that it answers what the assistant asks — the order number when asked which order, "yes" / "no" to a
confirmation as its goal says — and stops when its goal is reached, a person takes over, or the turn limit
comes. Success is judged on the end state (the scenario's `final`), not on the wording.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, field
from functools import cache

from assistant.settings import SHARED_DATA
from eval.dialogues.record import TurnRecord
from eval.dialogues.scenario import Goal

BITEXT = SHARED_DATA / "intents" / "bitext" / "train.csv"
OFF_DOMAIN = re.compile(r"\b(?:ticket|tickets|game|concert|event|flight|show|fuck\w*|shit)\b", re.I)
TASK_INTENT = {
    "track_order": ("track_order", r"\b(?:order|purchase|package|delivery)\b"),
    "cancel_order": ("cancel_order", r"\border\b"),
    "return_order": ("get_refund", r"\b(?:return|refund)\b"),
    "human": ("contact_human_agent", r"\b(?:human|agent|person|someone)\b"),
}
TEMPLATES = {
    "find": ["I'm looking for {query}", "do you have {query}?", "show me {query}", "I need {query}"],
    "track_order": ["where is my order?", "can you check on my order?"],
    "cancel_order": ["I want to cancel my order", "please cancel my order"],
    "return_order": ["I'd like to return my order", "how do I return my order?"],
    "policy": ["{question}"],
    "human": ["can I talk to a person?", "I want to speak to a human agent"],
}
ASKS_ORDER = re.compile(r"\bwhich order\b|\border (?:number|id)\b", re.I)


@cache
def _utterances(intent: str, pattern: str) -> tuple[str, ...]:
    if not BITEXT.is_file():
        return ()
    with BITEXT.open(encoding="utf-8", newline="") as fh:
        rows = [r["utterance"] for r in csv.DictReader(fh) if r.get("intent") == intent]
    keep = re.compile(pattern, re.I)
    return tuple(u for u in rows if keep.search(u) and not OFF_DOMAIN.search(u) and len(u) < 120)


@dataclass
class Conversation:
    goal: Goal
    order_ids: list[str]
    rng: random.Random
    sent: list[str] = field(default_factory=list)
    confirmations: int = 0

    def _opening(self) -> str:
        task = self.goal.task
        if self.goal.opening is not None:
            return self.goal.opening.replace("{order}", self._order())
        if task in TASK_INTENT:
            intent, pattern = TASK_INTENT[task]
            pool = list(_utterances(intent, pattern))
            if pool and self.rng.random() < 0.7:
                return self.rng.choice(pool)
        known = {"query": "something nice", "question": self.goal.reason, **self.goal.known}
        text = self.rng.choice(TEMPLATES[task]).format(**known)
        if task == "find" and known.get("max_price") is not None:
            text += f" under ${known['max_price']:g}"
        return text

    def next_message(self, turns: list[TurnRecord]) -> str | None:
        """The shopper's next message, or None when the conversation is over."""
        if not turns:
            return self._say(self._opening())
        last = turns[-1]
        if len(turns) >= self.goal.max_turns or last.error is not None or last.all("handoff"):
            return None
        if self.reached(turns):
            return None
        if any(a.get("status") == "needs_confirmation" for a in last.actions):
            self.confirmations += 1
            if self.goal.confirm == "yes" or (self.goal.confirm == "change_mind" and self.confirmations > 1):
                return self._say("yes")
            if self.goal.confirm == "change_mind":
                return self._say("no")
            return self._say("no, leave it")
        if self.goal.confirm == "change_mind" and self.confirmations == 1 and self.sent[-1] == "no":
            return self._say(f"actually, yes, please {self.goal.task.split('_')[0]} order {self._order()}")
        if self.order_ids and ASKS_ORDER.search(last.answer):
            return self._say(self._order())
        if self.goal.task == "find":
            return self._say(self.rng.choice(TEMPLATES["find"]).format(query=self.goal.known.get("query", "it")))
        return None  # nothing more to say: the assistant neither asked nor finished

    def _order(self) -> str:
        return self.order_ids[int(self.goal.known.get("order", 1)) - 1] if self.order_ids else "my last order"

    def _say(self, text: str) -> str:
        self.sent.append(text)
        return text

    def reached(self, turns: list[TurnRecord]) -> bool:
        """Whether the goal is met, as the conversation shows it (the end state is checked separately)."""
        task = self.goal.task
        if task == "find":
            budget = self.goal.known.get("max_price")
            return any(
                c.get("price") is not None and (budget is None or float(c["price"]) <= float(budget))
                for t in turns
                for c in t.cards
            )
        if task == "track_order":
            return any(f"order:{self._order()}" in t.citations for t in turns)
        if task in ("cancel_order", "return_order"):
            settled = {"done", "refused"}
            return any(a.get("status") in settled for t in turns for a in t.actions) and (
                self.goal.confirm != "change_mind" or self.confirmations > 1
            )
        if task == "policy":
            return any(any(c.startswith("policy:") for c in t.citations) for t in turns)
        if task == "human":
            return any(t.all("handoff") for t in turns)
        return False

    def outcome(self, turns: list[TurnRecord]) -> str:
        said = " / ".join(f"{t.message!r} -> {t.intent.get('intent')}" for t in turns)
        return f"not reached after {len(turns)} turns: {said}"


class Simulator:
    """Deterministic simulated shoppers (seeded per scenario and trial)."""

    def start(self, goal: Goal, order_ids: list[str], seed: str) -> Conversation:
        return Conversation(goal=goal, order_ids=order_ids, rng=random.Random(seed))
