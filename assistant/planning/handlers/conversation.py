"""Conversation handlers: greetings and small talk (the model phrases, nothing to ground but names), and
messages outside what the store's assistant does."""

from __future__ import annotations

from assistant import answers
from assistant.grounding import Facts
from assistant.planning.plan import Handler, Plan, Reply, TurnContext, saying


async def smalltalk(t: TurnContext) -> Plan:
    reply = Reply(
        prompt="smalltalk",
        facts=Facts(catalog_titles=t.deps.catalog_titles),
        variables={"message": t.message},
        fixed="Hello! I can help you find products or with an order.",
    )
    return Plan([], reply)


async def out_of_scope(t: TurnContext) -> Plan:
    return saying(answers.OUT_OF_SCOPE)


async def clarify(t: TurnContext) -> Plan:
    """Neither the classifier nor the model reads the message surely, and acting on it would change something."""
    return saying(answers.CLARIFY)


GROUPS: dict[str, Handler] = {"CONVERSATION": smalltalk, "OUT_OF_SCOPE": out_of_scope}
