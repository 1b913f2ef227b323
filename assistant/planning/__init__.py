"""Planning a turn: understanding the message, the intent rewrite rules, and the handlers that call the tools."""

from assistant.planning.plan import Deps, Plan, Reply, TurnContext, TurnInput, Understanding
from assistant.planning.planner import Planner

__all__ = ["Deps", "Plan", "Planner", "Reply", "TurnContext", "TurnInput", "Understanding"]
