"""Customer-service handlers: a human agent on request, and answers from the store's policies (every
customer-service intent without a handler of its own)."""

from __future__ import annotations

from typing import Any

from assistant import answers
from assistant.grounding import Facts, amounts_in
from assistant.intents.need import plain_text
from assistant.planning.plan import Handler, Plan, Reply, TurnContext, saying
from assistant.schemas import HandoffEvent
from assistant.tools.policies import policy_ref

NOT_IN_POLICIES = (
    "I don't know that one: our store policies don't cover it. I can connect you with a person from our "
    "customer service team if you like."
)
# The next step when a policy question is about something the shopper can ask me to do; it ends the answer.
NEXT_STEP: dict[str, str] = {
    "check_refund_policy": "If you'd like to return something, tell me the order number and I'll start the return.",
    "check_cancellation_fee": "To cancel an order that hasn't shipped, tell me its order number.",
    "contact_customer_service": "If you'd like, I can connect you with a person right here.",
}


async def handoff(t: TurnContext) -> Plan:
    result = await t.call("handoff_to_human", {"reason": t.message[:500]})
    if not result.ok:
        return saying(answers.tool_failure(result))
    ticket = result.data.get("ticket_id", "")
    text = f"I've asked a human agent to take over (ticket {ticket}). They will reply here shortly."
    return saying(text, HandoffEvent(ticket_id=ticket, reason=t.message[:500]))


async def policy(t: TurnContext) -> Plan:
    """Answer fact-first with the policy's own sentences, citing their passage: the sentences that answer the
    question, then the next step the shopper can take, or else at most one sentence the model adds from the rest
    of the same passage. When no policy answers the question, say so and offer a person."""
    result = await t.call("policy_answer", {"question": plain_text(t.message), "intent": t.intent})
    if not result.ok:
        return saying(answers.tool_failure(result))
    answer: dict[str, Any] | None = result.data.get("answer")
    if not answer or not answer.get("sentences"):
        return saying(NOT_IN_POLICIES)
    quoted: list[str] = answer["sentences"]
    cite = [policy_ref(answer["passage"])]
    if t.intent in NEXT_STEP:
        return Plan([], Reply(lead=" ".join([*quoted, NEXT_STEP[t.intent]]), citations=cite))
    rest: list[str] = answer.get("rest", [])
    if not rest:
        return Plan([], Reply(lead=" ".join(quoted), citations=cite))
    text = " ".join([*quoted, *rest])
    facts = Facts(catalog_titles=t.deps.catalog_titles, amounts=set(amounts_in(text)), names={text})
    return Plan(
        [],
        Reply(
            lead=" ".join(quoted),
            prompt="policy",
            facts=facts,
            variables={"passage": " ".join(rest), "message": t.message},
            citations=cite,
        ),
    )


INTENTS: dict[str, Handler] = {"contact_human_agent": handoff, "complaint": handoff, "policy_question": policy}
