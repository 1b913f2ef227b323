"""Customer-service handlers: a human agent on request, and answers from the store's policies (every
customer-service intent without a handler of its own)."""

from __future__ import annotations

from assistant.grounding import Facts, amounts_in
from assistant.planning.plan import Handler, Plan, Reply, TurnContext, saying
from assistant.schemas import HandoffEvent


async def handoff(t: TurnContext) -> Plan:
    result = await t.call("handoff_to_human", {"reason": t.message[:500]})
    if not result.ok:
        return saying(result.error or "I couldn't reach a human agent right now.")
    ticket = result.data.get("ticket_id", "")
    text = f"I've asked a human agent to take over (ticket {ticket}). They will reply here shortly."
    return saying(text, HandoffEvent(ticket_id=ticket, reason=t.message[:500]))


async def policy(t: TurnContext) -> Plan:
    """Answer from the policy passages that match the question, cited; offer a person when none does."""
    result = await t.call("policy_answer", {"question": t.message})
    passages = result.data.get("passages", []) if result.ok else []
    if not passages:
        return saying("I'm not sure about that one — I can connect you with a human agent if you like.")
    text = "\n".join(f"- {p.get('text', '')[:400]}" for p in passages[:3])
    facts = Facts(catalog_titles=t.deps.catalog_titles, amounts=set(amounts_in(text)), names={text})
    reply = Reply(
        prompt="policy",
        facts=facts,
        variables={"passages": text, "message": t.message},
        fixed=passages[0].get("text", ""),
        citations=result.citations,
    )
    return Plan([], reply)


INTENTS: dict[str, Handler] = {"contact_human_agent": handoff, "complaint": handoff}
