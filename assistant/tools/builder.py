"""The one place tools are registered: every tool group's `tools(deps)`, in the order the model sees them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from assistant.settings import AssistantSettings
from assistant.stores import Stores, seed_demo_orders
from assistant.tools import cart, handoff, orders, policies, products
from assistant.tools.base import Tool, Toolbox, ToolDeps
from retrieval.factory import Components
from retrieval.policies import PolicyIndex
from retrieval.product import Product
from retrieval.search import SearchEngine

# A new tool group is a module in assistant/tools/ with a `tools(deps) -> list[Tool]`, added here.
TOOL_GROUPS: tuple[Callable[[ToolDeps], list[Tool]], ...] = (
    products.tools,
    orders.tools,
    policies.tools,
    handoff.tools,
    cart.tools,
)


def make_toolbox(deps: ToolDeps) -> Toolbox:
    """Every tool whose dependencies `deps` holds (a group whose dependency is None is left out)."""
    toolbox = Toolbox()
    for group in TOOL_GROUPS:
        for tool in group(deps):
            toolbox.register(tool)
    return toolbox


def policy_cache_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "policies"


def catalog_products(engine: SearchEngine) -> list[Product]:
    """Every product in the engine's index (e.g. to seed demo orders from)."""
    ids = list(engine.lexical.ids)
    found = engine.get_products(ids)
    return [found[pid] for pid in ids if pid in found]


def load_tool_deps(
    settings: AssistantSettings,
    components: Components,
    engine: SearchEngine,
    catalog: Sequence[Product],
    stores: Stores,
    progress: Callable[[str], None] | None = None,
) -> ToolDeps:
    """The service's tool dependencies: demo orders seeded once (idempotent), the policy index loaded or built."""
    added = seed_demo_orders(stores.orders, catalog, settings.users_path)
    if progress is not None:
        progress(f"orders: {stores.orders.count()} demo orders ({added} generated now)")
    cache = policy_cache_dir(settings.data_dir)
    index = PolicyIndex.load_or_build(settings.policies_dir, cache, components.text_encoder)
    return ToolDeps(
        engine=engine,
        profiles=components.profiles,
        orders=stores.orders,
        carts=stores.carts,
        handoffs=stores.handoffs,
        policies=index,
    )
