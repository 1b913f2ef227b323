"""The one place tools are registered: every tool group's `tools(deps)`, in the order the model sees them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant.intents.ontology import load_ontology
from assistant.settings import AssistantSettings
from assistant.stores import Stores, seed_demo_orders
from assistant.tools import cart, handoff, orders, policies, products
from assistant.tools.base import Tool, Toolbox, ToolDeps
from assistant.tools.policies import load_policy_index
from retrieval.factory import Components
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
    """The service's tool dependencies: demo orders seeded once (idempotent), the store's policies loaded, validated
    and indexed (their sentence vectors from the embedding cache)."""
    added = seed_demo_orders(stores.orders, catalog, settings.users_path)
    if progress is not None:
        progress(f"orders: {stores.orders.count()} demo orders ({added} generated now)")
    try:
        index = load_policy_index(
            settings.policies_dir, components.text_encoder, components.cache, known_intents=load_ontology().names
        )
    except FileNotFoundError as e:
        raise FileNotFoundError(f"SHOP_POLICIES_DIR: {e}") from None
    if progress is not None:
        progress(f"policies: {len(index.passages)} passages from {settings.policies_dir}")
    return ToolDeps(
        engine=engine,
        profiles=components.profiles,
        orders=stores.orders,
        carts=stores.carts,
        handoffs=stores.handoffs,
        policies=index,
    )
