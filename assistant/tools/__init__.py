"""The assistant's tools: one module per group (catalog, orders, policies, handoff, cart), each with `tools(deps)`."""

from assistant.tools.base import Tool, Toolbox, ToolContext, ToolDeps, ToolError, ToolOutput, ToolResult
from assistant.tools.builder import TOOL_GROUPS, catalog_products, load_tool_deps, make_toolbox

__all__ = [
    "TOOL_GROUPS",
    "Tool",
    "ToolContext",
    "ToolDeps",
    "ToolError",
    "ToolOutput",
    "ToolResult",
    "Toolbox",
    "catalog_products",
    "load_tool_deps",
    "make_toolbox",
]
