"""The assistant's tools: catalog search and facts, orders, store policies, handoff to a human."""

from assistant.tools.base import Tool, Toolbox, ToolContext, ToolError, ToolOutput, ToolResult
from assistant.tools.builder import (
    TOOL_NAMES,
    build_toolbox,
    catalog_products,
    handoffs_path,
    orders_path,
    policy_cache_dir,
)
from assistant.tools.demo_orders import seed_demo_orders
from assistant.tools.handoff import HandoffStore, Ticket
from assistant.tools.orders import RETURN_WINDOW_DAYS, Order, OrderStore
from assistant.tools.policies import Passage, PolicyIndex, load_passages

__all__ = [
    "RETURN_WINDOW_DAYS",
    "TOOL_NAMES",
    "HandoffStore",
    "Order",
    "OrderStore",
    "Passage",
    "PolicyIndex",
    "Ticket",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "ToolResult",
    "Toolbox",
    "build_toolbox",
    "catalog_products",
    "handoffs_path",
    "load_passages",
    "orders_path",
    "policy_cache_dir",
    "seed_demo_orders",
]
