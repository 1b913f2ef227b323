"""Simulated shoppers: a scenario with a goal instead of fixed turns gets its messages from here.

The default simulator is deterministic and template-driven: the opening message is drawn (seeded) from real
customer-support utterances of the matching intent in the shipped Bitext data, or from a few templates; after
that it answers what the assistant asks — the order number when asked which order, "yes" / "no" to a
confirmation as its goal says — and stops when its goal is reached, a person takes over, or the turn limit
comes. Success is judged on the end state (the scenario's `final`), not on the wording.

With a chat model (`python -m eval.dialogues … --simulator-url URL`), the model writes the shopper's messages from
the goal and the conversation so far; when the conversation ends is decided the same way.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, field
from functools import cache

from assistant.llm.base import LLM, ChatMessage
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
ASKS_ORDER = re.compile(r"\bwhich (?:order|one)\b|\border (?:number|id)\b", re.I)


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

    async def next_message(self, turns: list[TurnRecord]) -> str | None:
        """The shopper's next message, or None when the conversation is over."""
        if not turns:
            return self._say(self._opening())
        if self.over(turns):
            return None
        return self._reply(turns)

    def over(self, turns: list[TurnRecord]) -> bool:
        """Goal reached, a person took over, the turn limit, or a request that failed."""
        last = turns[-1]
        if len(turns) >= self.goal.max_turns or last.error is not None or last.all("handoff"):
            return True
        return self.reached(turns)

    def _reply(self, turns: list[TurnRecord]) -> str | None:
        last = turns[-1]
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
        if task == "track_order":  # an answer about that order alone (not a list that still asks which one)
            return any(t.citations == [f"order:{self._order()}"] and not ASKS_ORDER.search(t.answer) for t in turns)
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


TASKS = {
    "find": "find a product that fits what you want",
    "track_order": "find out where your order is",
    "cancel_order": "cancel your order",
    "return_order": "return your order",
    "policy": "get an answer to your question about the store's rules",
    "human": "talk to a human agent",
}
CONFIRM = {
    "yes": "When the assistant asks you to confirm a change, say yes.",
    "no": "When the assistant asks you to confirm a change, say no: you decided to keep things as they are.",
    "change_mind": "When first asked to confirm, say no; then change your mind and ask for it again, and confirm.",
}


@dataclass
class ModelConversation(Conversation):
    """A shopper whose messages a chat model writes from the goal and the conversation so far; when to stop is
    decided as for the template shopper."""

    llm: LLM | None = None

    def _prompt(self, turns: list[TurnRecord]) -> list[ChatMessage]:
        known = dict(self.goal.known)
        if self.order_ids:
            known["order numbers"] = ", ".join(self.order_ids)
        system = (
            "You are a shopper chatting with an online store's assistant. "
            f"Why you are writing: {self.goal.reason}. What you want: {TASKS[self.goal.task]}. "
            f"What you know: {known or 'nothing more'}. {CONFIRM[self.goal.confirm]} "
            "Write only your next message to the assistant, one or two short sentences, in your own words."
        )
        messages = [ChatMessage(role="system", content=system)]
        for t in turns:  # the shopper is the model here: its messages are "assistant", the store's "user"
            messages.append(ChatMessage(role="assistant", content=t.message))
            messages.append(ChatMessage(role="user", content=t.answer or "(no answer)"))
        if not turns:
            messages.append(ChatMessage(role="user", content="Hello! How can I help you today?"))
        return messages

    async def _write(self, turns: list[TurnRecord]) -> str | None:
        assert self.llm is not None
        text = ""
        async for delta in self.llm.stream_chat(self._prompt(turns), max_tokens=80, temperature=0.7):
            text += delta
        text = " ".join(text.split()).strip('"')
        return self._say(text) if text else None

    async def next_message(self, turns: list[TurnRecord]) -> str | None:
        if turns and self.over(turns):
            return None
        if turns and any(a.get("status") == "needs_confirmation" for a in turns[-1].actions):
            self.confirmations += 1
        return await self._write(turns)


class Simulator:
    """Simulated shoppers: template-driven and seeded (default), or written by a chat model (`llm`)."""

    def __init__(self, llm: LLM | None = None) -> None:
        self.llm = llm

    def start(self, goal: Goal, order_ids: list[str], seed: str) -> Conversation:
        if self.llm is not None:
            return ModelConversation(goal=goal, order_ids=order_ids, rng=random.Random(seed), llm=self.llm)
        return Conversation(goal=goal, order_ids=order_ids, rng=random.Random(seed))
