"""What the conversation so far says about this turn: the products shown, the product in focus, the order just
discussed, and a change waiting for the shopper's confirmation. All read from the session's finished turns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from assistant.sessions.models import Session
from retrieval.product import Product

GetProducts = Callable[[Sequence[str]], dict[str, Product]]


def shown_products(session: Session, get_products: GetProducts) -> tuple[list[Product], list[Product]]:
    """(the most recent result list — a turn that showed several cards —, every other product shown)."""
    finished = [t for t in reversed(session.turns) if t.finished and t.product_ids]
    last_ids = next((t.product_ids for t in finished if len(t.product_ids) > 1), None)
    if last_ids is None:
        last_ids = finished[0].product_ids if finished else []
    all_ids = session.products_shown()
    found = get_products(all_ids)
    last = [found[i] for i in last_ids if i in found]
    earlier = [found[i] for i in all_ids if i in found and i not in set(last_ids)]
    return last, earlier


def focus(session: Session) -> str | None:
    """The product last discussed on its own (the latest turn that showed cards showed exactly that one)."""
    latest = next((t for t in reversed(session.turns) if t.finished and t.product_ids), None)
    return latest.product_ids[0] if latest is not None and len(latest.product_ids) == 1 else None


def last_search(session: Session) -> dict[str, Any] | None:
    """The arguments of the search behind the latest result list (the latest finished turn that showed cards), if
    a search made it: a message that only changes a constraint ("actually under $60") refines it."""
    latest = next((t for t in reversed(session.turns) if t.finished and t.product_ids), None)
    if latest is None:
        return None
    calls = [c for c in latest.tool_trace if c.get("name") == "search_products" and c.get("ok")]
    args = calls[-1].get("arguments") if calls else None
    return dict(args) if isinstance(args, dict) else None


def order_context(session: Session) -> str | None:
    """The one order the previous turn was about, if it was about exactly one."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return None
    orders = {c.split(":", 1)[1] for c in last.citations if c.startswith("order:")}
    return orders.pop() if len(orders) == 1 else None


def pending_action(session: Session) -> dict[str, Any] | None:
    """The state change the previous turn asked the shopper to confirm (its tool-call record), if any."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return None
    for call in reversed(last.tool_trace):
        if call.get("needs_confirmation"):
            return call
    return None


def pending_question(session: Session) -> dict[str, Any] | None:
    """The question the previous turn asked the shopper (its trace's `pending_question` record: what it asks for,
    the intent it serves, the options it listed), if any: the next message may be its answer."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return None
    for record in reversed(last.tool_trace):
        if record.get("name") == "pending_question":
            data = record.get("data")
            return data if isinstance(data, dict) else None
    return None


CART_TOOLS = ("add_to_cart", "remove_from_cart")


def last_cart_change(session: Session) -> list[str]:
    """The products the previous turn added to or removed from the cart ("remove them" means those)."""
    last = next((t for t in reversed(session.turns) if t.finished), None)
    if last is None:
        return []
    ids = [
        str((call.get("arguments") or {}).get("product_id"))
        for call in last.tool_trace
        if call.get("name") in CART_TOOLS and call.get("ok") and (call.get("arguments") or {}).get("product_id")
    ]
    return list(dict.fromkeys(ids))
