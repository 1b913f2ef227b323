"""Cart handlers: "add it to my cart", "remove the second one"."""

from __future__ import annotations

from typing import Any

from assistant import answers
from assistant.planning.plan import Handler, Plan, PlanEvent, Reply, TurnContext, cards, saying
from assistant.schemas import ActionEvent


async def change_cart(t: TurnContext) -> Plan:
    """Add or remove the referenced product, or the one in focus."""
    refs = t.resolution.product_ids or ([f] if (f := t.focus()) else [])
    adding = t.intent == "cart_add"
    tool = "add_to_cart" if adding else "remove_from_cart"
    if tool not in t.deps.toolbox:
        return saying("The cart isn't available right now.")
    if not refs:
        return saying(f"Which product should I {'add to' if adding else 'remove from'} your cart?")
    args: dict[str, Any] = {"product_id": refs[0]}
    if adding and t.slots.quantity:
        args["quantity"] = t.slots.quantity
    result = await t.call(tool, args)
    if not result.ok:
        refused = result.error or "That didn't work."
        action = ActionEvent(tool=tool, status="refused", description=refused, result=result.data)
        return saying(refused, action, citations=result.citations)
    products = t.products(refs[:1])
    done = answers.cart_message(result.data)
    events: list[PlanEvent] = [cards(products)] if products else []
    events.append(ActionEvent(tool=tool, status="done", description=done, result=result.data))
    return Plan(events, Reply(fixed=done, products=products, citations=result.citations))


INTENTS: dict[str, Handler] = {"cart_add": change_cart, "cart_remove": change_cart}
