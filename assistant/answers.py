"""Facts for the answer prompt and the deterministic texts used when the model must not (or cannot) phrase."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assistant.grounding import format_price, stock_text
from retrieval.product import Product

if TYPE_CHECKING:
    from assistant.dialogue.references import Resolution
    from assistant.tools.base import ToolResult

AFFIRMATIVE = {
    "yes",
    "y",
    "yeah",
    "yep",
    "sure",
    "confirm",
    "confirmed",
    "ok",
    "okay",
    "do it",
    "go ahead",
    "please do",
}
NEGATIVE = {"no", "n", "nope", "cancel that", "don't", "do not", "stop", "never mind", "nevermind"}


def normalise_reply(text: str) -> str:
    return " ".join(text.lower().strip(" .!?,").split())


def is_affirmative(text: str) -> bool:
    t = normalise_reply(text)
    return t in AFFIRMATIVE or t.startswith(("yes ", "yes,", "confirm ", "go ahead"))


def is_negative(text: str) -> bool:
    t = normalise_reply(text)
    return t in NEGATIVE or t.startswith(("no ", "no,", "don't", "do not"))


def product_fact(p: Product) -> str:
    """One line of facts about a product, as the answer prompt shows it: a bullet, not a number (numbered
    facts made SmolLM2 copy "1. <fact line>" instead of answering, and the number held the first word)."""
    parts = [p.title]
    if p.price is not None:
        parts.append(format_price(p.price, p.currency))
    parts.append(stock_text(p))
    if p.brand:
        parts.append(f"brand {p.brand}")
    if p.color:
        parts.append(f"colour {p.color}")
    if p.rating is not None:
        parts.append(f"rated {p.rating:g}/5")
    return "- " + ", ".join(parts)


def product_details(p: Product, max_chars: int = 300) -> str:
    """Everything the catalog says about one product, for a question about it."""
    lines = [product_fact(p)[2:]]
    if p.category_path:
        lines.append("Category: " + " > ".join(p.category_path))
    lines += [f"- {b}" for b in p.bullet_points[:5]]
    if p.description:
        lines.append(p.description[:max_chars])
    lines += [f"{k}: {v}" for k, v in list(p.attributes.items())[:8]]
    return "\n".join(lines)


def products_facts(products: Sequence[Product]) -> str:
    return "\n".join(product_fact(p) for p in products)


def list_answer(products: Sequence[Product], what: str) -> str:
    """A deterministic answer naming the results with their catalog prices."""
    if not products:
        return not_carried(what)
    top = products[0]
    price = f" at {format_price(top.price, top.currency)}" if top.price is not None else ""
    more = f" and {len(products) - 1} more option{'s' if len(products) > 2 else ''}" if len(products) > 1 else ""
    return f"I found the {top.title}{price}{more} — see the cards for details."


def product_answer(p: Product) -> str:
    if p.stock is None:
        if p.price is None:
            return f"The {p.title}'s availability is not listed."
        return f"The {p.title} costs {format_price(p.price, p.currency)}; its availability is not listed."
    price = f" costs {format_price(p.price, p.currency)} and" if p.price is not None else ""
    return f"The {p.title}{price} is {stock_text(p)}."


def compare_answer(products: Sequence[Product]) -> str:
    priced = [p for p in products if p.price is not None]
    if len(priced) >= 2:
        cheap = min(priced, key=lambda p: p.price or 0.0)
        return f"Of these, the {cheap.title} is the cheapest at {format_price(cheap.price or 0.0, cheap.currency)}."
    return "Here they are side by side."


def not_carried(what: str, closest: Sequence[str] = ()) -> str:
    """The store doesn't sell `what` (the need, not the message); the closest categories it does sell, if any."""
    what = what.strip().rstrip("?.!") or "that"
    text = f"Sorry, we don't carry {what}."
    if closest:
        text += f" The closest we have are in {' and '.join(closest)} — want me to show you some?"
    return text


OUT_OF_SCOPE = (
    "I can help you find products in our store, answer questions about them, and help with orders, "
    "returns and store policies."
)
CLARIFY = (
    "Sorry, I'm not sure what you'd like me to do. Are you looking for a product, asking about an order, or about "
    "one of our store policies?"
)
NO_REFERENCE = "Which product do you mean? Search for something first and I can tell you more about it."
LLM_DOWN = "the language model is unavailable right now; the product results above come straight from the catalog"


# What each tool was doing, for the apology when it fails in a way the shopper can't act on.
TOOL_TASKS = {
    "search_products": "search our catalog",
    "get_product": "look that product up",
    "compare_products": "compare those products",
    "order_status": "look up that order",
    "cancel_order": "cancel that order",
    "start_return": "start that return",
    "add_to_cart": "add that to your cart",
    "remove_from_cart": "take that out of your cart",
    "view_cart": "read your cart",
    "handoff_to_human": "reach a person from our team",
    "policy_answer": "look that up in our store policies",
}


def as_sentence(text: str) -> str:
    """`text` as a sentence: its first letter a capital, its end a full stop unless it has one."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else f"{text}."


def tool_failure(result: ToolResult) -> str:
    """What the shopper reads when a tool call failed: a refusal's own words (tools write them for the shopper, with
    what to do), as whole sentences; for anything else (arguments the tool refused, a tool that broke) what didn't
    work and what to do, never the internals (exception names, argument paths, ids)."""
    if result.error_kind == "refused" and result.error:
        return as_sentence(result.error)
    task = TOOL_TASKS.get(result.name, "do that")
    if result.error_kind == "invalid":
        return f"Sorry, I couldn't {task}: something in the request wasn't right. Could you say it another way?"
    return f"Sorry, I couldn't {task} just now. Please try again in a moment, or ask me for a person."


def order_answer(data: dict[str, Any]) -> str:
    """Order status from the order tool's data."""
    order = data.get("order", data)
    oid = order.get("order_id", "your order")
    status = order.get("status", "unknown")
    parts = [f"Order {oid} is {status}."]
    if order.get("tracking"):
        parts.append(f"Tracking number: {order['tracking']}.")
    return " ".join(parts)


def orders_list_answer(orders: Sequence[dict[str, Any]]) -> str:
    if not orders:
        return (
            "I couldn't find any orders on this account. If you ordered as a guest or with another account, tell "
            "me the order number (it starts with ORD- and is in your confirmation e-mail) and I'll look it up."
        )
    listed = "; ".join(f"{o.get('order_id')} ({o.get('status')})" for o in orders[:5])
    return f"Your recent orders: {listed}. Which one do you mean?"


def action_message(tool: str, data: dict[str, Any]) -> str:
    """What a state-changing tool did, from its result data (facts only)."""
    outcome = data.get("outcome", "")
    order = data.get("order", {})
    oid = order.get("order_id", "the order")
    ret = data.get("return") or {}
    if outcome == "cancelled":
        return f"Order {oid} is cancelled; the full amount will be refunded."
    if outcome == "already_cancelled":
        return f"Order {oid} was already cancelled."
    if outcome in {"return_started", "already_started"} and ret:
        amount = ret.get("refund_amount")
        refund = f" You will be refunded {format_price(float(amount), order.get('currency', 'USD'))}." if amount else ""
        verb = "is started" if outcome == "return_started" else "was already started"
        return f"Return {ret.get('return_id')} for order {oid} {verb}.{refund}"
    return f"{tool.replace('_', ' ').capitalize()}: {outcome or 'done'}."


def cart_message(data: dict[str, Any]) -> str:
    """What a cart tool did, with the cart's catalog total."""
    cart = data.get("cart", {})
    total = cart.get("total")
    summary = f" Your cart: {cart.get('count', 0)} item(s), {format_price(float(total))}." if total is not None else ""
    title = data.get("title") or "That product"
    match data.get("outcome"):
        case "added":
            return f"Added the {title} to your cart (quantity {data.get('quantity')}).{summary}"
        case "removed":
            return f"Removed it from your cart.{summary}"
        case "not_in_cart":
            return f"That product wasn't in your cart.{summary}"
    return summary.strip() or "Done."


def cart_changes(changes: Sequence[dict[str, Any]]) -> str:
    """Several cart changes of one message, and the cart after the last."""
    titles = [str(d.get("title") or "that product") for d in changes]
    verb = "Added" if changes[0].get("outcome") == "added" else "Removed"
    listed = ", the ".join(titles[:-1]) + f" and the {titles[-1]}" if len(titles) > 1 else titles[0]
    where = "to" if verb == "Added" else "from"
    cart = changes[-1].get("cart", {})
    total = cart.get("total")
    summary = f" Your cart: {cart.get('count', 0)} item(s), {format_price(float(total))}." if total is not None else ""
    return f"{verb} the {listed} {where} your cart.{summary}"


def cart_summary(cart: dict[str, Any]) -> str:
    """The cart's lines and total, from the cart tool."""
    items = cart.get("items") or []
    if not items:
        return "Your cart is empty."
    lines = [
        f"the {i['title']}" + (f" (x{i['quantity']})" if int(i.get("quantity", 1)) > 1 else "")
        + (f" at {format_price(float(i['unit_price']))}" if i.get("unit_price") is not None else "")
        for i in items
    ]
    listed = ", ".join(lines[:-1]) + f" and {lines[-1]}" if len(lines) > 1 else lines[0]
    total = format_price(float(cart.get("total") or 0.0))
    return f"Your cart has {cart.get('count', len(items))} item(s), {total} in all: {listed}."


def unresolved(resolution: Resolution, shown: int) -> str:
    """A clarifying question for a reference that points at nothing shown ("the second one" before any search)."""
    if shown == 0:
        return "I haven't shown you any products yet in this conversation. What are you looking for?"
    if resolution.candidates:
        n = len(resolution.candidates)
        return f'Which of the {n} products do you mean? You can say "the first one", for example.'
    return f"I showed you {shown} product{'s' if shown != 1 else ''}. Which one do you mean?"
