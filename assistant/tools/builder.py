"""Wires the assistant's tools from the long-lived stores the service builds at start-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from assistant.tools.base import Toolbox
from assistant.tools.handoff import HandoffStore, HandoffTools
from assistant.tools.order_tools import OrderTools
from assistant.tools.orders import OrderStore
from assistant.tools.policies import PolicyIndex, PolicyTools
from assistant.tools.products import ProductTools
from retrieval.factory import Components
from retrieval.product import Product
from retrieval.search import SearchEngine

TOOL_NAMES = (
    "search_products",
    "get_product",
    "compare_products",
    "order_status",
    "cancel_order",
    "start_return",
    "policy_answer",
    "handoff_to_human",
)


def orders_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "orders.sqlite"


def handoffs_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "handoffs.sqlite"


def policy_cache_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "policies"


def catalog_products(engine: SearchEngine) -> list[Product]:
    """Every product in the engine's index (e.g. to seed demo orders from)."""
    ids = list(engine.lexical.ids)
    found = engine.get_products(ids)
    return [found[pid] for pid in ids if pid in found]


def build_toolbox(
    components: Components | None,
    order_store: OrderStore,
    policy_index: PolicyIndex | None,
    handoff_store: HandoffStore,
    *,
    engine: SearchEngine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Toolbox:
    """All eight tools; pass `engine` to reuse one already loaded (else `components.engine()` loads one).

    Without a policy index, policy_answer is left out.
    """
    if engine is None:
        if components is None:
            raise ValueError("build_toolbox needs components or an engine")
        engine = components.engine()
    profiles = components.profiles if components is not None else None
    toolbox = Toolbox()
    for tool in ProductTools(engine, profiles).tools() + OrderTools(order_store, clock).tools():
        toolbox.register(tool)
    if policy_index is not None:
        for tool in PolicyTools(policy_index).tools():
            toolbox.register(tool)
    for tool in HandoffTools(handoff_store).tools():
        toolbox.register(tool)
    return toolbox
