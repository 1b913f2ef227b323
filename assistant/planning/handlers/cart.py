"""Cart handlers: "add it to my cart", "add the first two", "remove them", "what's in my cart?"."""

from __future__ import annotations

from typing import Any

from assistant import answers
from assistant.dialogue import state
from assistant.planning.plan import Handler, Plan, PlanEvent, Reply, TurnContext, cards, saying
from assistant.schemas import ActionEvent

MAX_ITEMS = 4  # products one message may add or remove
PRONOUNS = frozenset({"pronoun", "plural"})


async def change_cart(t: TurnContext) -> Plan:
    """Add or remove the referenced products, or the one in focus. "Remove it/them" right after a cart change
    means what that change added."""
    adding = t.intent == "cart_add"
    tool = "add_to_cart" if adding else "remove_from_cart"
    if tool not in t.deps.toolbox:
        return saying("The cart isn't available right now.")
    refs = t.resolution.product_ids
    changed = state.last_cart_change(t.inp.session)
    if not adding and changed and (not refs or t.resolution.kind in PRONOUNS):
        refs = changed
    refs = refs or ([f] if (f := t.focus()) else [])
    if not refs:
        return saying(f"Which product should I {'add to' if adding else 'remove from'} your cart?")
    results = []
    for pid in refs[:MAX_ITEMS]:
        args: dict[str, Any] = {"product_id": pid}
        if adding and t.slots.quantity:
            args["quantity"] = t.slots.quantity
        results.append(await t.call(tool, args))
    done = [r for r in results if r.ok]
    refused = [r for r in results if not r.ok]
    events: list[PlanEvent] = []
    products = t.products([str(r.arguments["product_id"]) for r in done])
    if products:
        events.append(cards(products))
    for r in refused:
        why = answers.tool_failure(r)
        events.append(ActionEvent(tool=tool, status="refused", description=why, result=r.data))
    if not done:
        return Plan(events, Reply(fixed=answers.tool_failure(refused[0]), citations=refused[0].citations))
    text = answers.cart_message(done[0].data) if len(done) == 1 else answers.cart_changes([r.data for r in done])
    if refused:
        text += " " + " ".join(dict.fromkeys(answers.tool_failure(r) for r in refused))
    events += [ActionEvent(tool=tool, status="done", description=text, result=r.data) for r in done]
    citations = list(dict.fromkeys(c for r in results for c in r.citations))
    return Plan(events, Reply(fixed=text, products=products, citations=citations))


async def view_cart(t: TurnContext) -> Plan:
    """What is in the cart, with catalog prices and the total."""
    if "view_cart" not in t.deps.toolbox:
        return saying("The cart isn't available right now.")
    result = await t.call("view_cart", {})
    if not result.ok:
        return saying(answers.tool_failure(result))
    cart = result.data.get("cart", {})
    products = t.products([str(i["product_id"]) for i in cart.get("items", [])])
    events: list[PlanEvent] = [cards(products)] if products else []
    return Plan(events, Reply(fixed=answers.cart_summary(cart), products=products, citations=result.citations))


INTENTS: dict[str, Handler] = {"cart_add": change_cart, "cart_remove": change_cart, "view_cart": view_cart}
