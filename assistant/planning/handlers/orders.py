"""Order handlers: status, cancel, return, and the shopper's answer to a confirmation request.

State changes go through the tools' confirmation step: the first call only describes the change, and nothing
changes until the shopper says yes (`confirm`).
"""

from __future__ import annotations

from typing import Any

from assistant import answers
from assistant.planning.plan import Handler, Plan, TurnContext, saying
from assistant.schemas import ActionEvent


async def order_status(t: TurnContext) -> Plan:
    args = {"order_id": t.slots.order_id} if t.slots.order_id else {}
    result = await t.call("order_status", args)
    if not result.ok:
        return saying(answers.tool_failure(result))
    orders = result.data.get("orders")
    if orders is not None and len(orders) != 1:
        if orders:
            ask_which(t, orders)
        return saying(answers.orders_list_answer(orders), citations=result.citations)
    return saying(answers.order_answer(orders[0] if orders else result.data), citations=result.citations)


async def cancel(t: TurnContext) -> Plan:
    if not t.slots.order_id:
        return await ask_order(t, "cancel")
    return await change_state(t, "cancel_order", {"order_id": t.slots.order_id})


async def start_return(t: TurnContext) -> Plan:
    if not t.slots.order_id:
        return await ask_order(t, "return")
    return await change_state(t, "start_return", {"order_id": t.slots.order_id, "reason": t.message[:200]})


async def confirm(t: TurnContext) -> Plan:
    """ "yes" or "no" to the change the previous turn asked about."""
    pending = t.understood.pending or {}
    tool, args = pending.get("name", ""), dict(pending.get("arguments", {}))
    if answers.is_negative(t.message):
        declined = ActionEvent(tool=tool, status="refused", description="the shopper declined")
        return saying("Okay, I haven't changed anything.", declined)
    return await change_state(t, tool, args, confirmed=True)


async def ask_order(t: TurnContext, verb: str) -> Plan:
    """Which order? With the shopper's recent orders listed."""
    result = await t.call("order_status", {})
    if not result.ok:
        return saying(answers.tool_failure(result))
    orders = result.data.get("orders", [])
    listed = answers.orders_list_answer(orders)
    if not orders:
        return saying(listed)
    question = f"Which order would you like to {verb}?"
    ask_which(t, orders, question)
    return saying(f"{question} {listed}")


def ask_which(t: TurnContext, orders: list[dict[str, Any]], question: str = "Which order do you mean?") -> None:
    """Record the question "which order?" with the orders it lists (newest first): the next message ("the first
    one", a number) answers it (assistant/dialogue/replies.py)."""
    options = [str(o.get("order_id")) for o in orders if o.get("order_id")]
    intent, group = t.understood.event.intent, t.understood.event.group
    record = {"asks": "order", "intent": intent, "group": group, "options": options, "text": question}
    t.trace.note("pending_question", data=record)


async def change_state(t: TurnContext, tool: str, args: dict[str, Any], confirmed: bool = False) -> Plan:
    """Run a state-changing tool: it asks for confirmation first unless the shopper already confirmed."""
    result = await t.call(tool, args, confirmed=confirmed)
    if not result.ok:
        refused = answers.tool_failure(result)
        action = ActionEvent(tool=tool, status="refused", description=refused, result=result.data)
        return saying(refused, action, citations=result.citations)
    if result.needs_confirmation:
        what = ((result.confirmation or {}).get("summary") or f"run {tool}").rstrip(".")
        ask = f"Please confirm: {what}. Reply 'yes' to go ahead or 'no' to keep things as they are."
        action = ActionEvent(tool=tool, status="needs_confirmation", description=what, result=result.confirmation or {})
        return saying(ask, action, citations=result.citations)
    done = answers.action_message(tool, result.data)
    action = ActionEvent(tool=tool, status="done", description=done, result=result.data)
    return saying(done, action, citations=result.citations)


INTENTS: dict[str, Handler] = {
    "track_order": order_status,
    "track_refund": order_status,
    "change_order": order_status,
    "cancel_order": cancel,
    "get_refund": start_return,
    "confirm_action": confirm,
}
