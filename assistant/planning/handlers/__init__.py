"""The handler table: which handler plans a turn, by intent, then by intent group, else the policy answer.

Each module handles one group of intents and lists them in its `INTENTS` (and `GROUPS`) table.
"""

from __future__ import annotations

from assistant.planning.handlers import cart, catalog, conversation, orders, recommend, support
from assistant.planning.plan import Handler

INTENTS: dict[str, Handler] = {
    **catalog.INTENTS,
    **recommend.INTENTS,
    **cart.INTENTS,
    **orders.INTENTS,
    **support.INTENTS,
}
GROUPS: dict[str, Handler] = {**conversation.GROUPS}
DEFAULT: Handler = support.policy  # customer-service intents are answered from the store's policies


def handler_for(intent: str, group: str) -> Handler:
    return INTENTS.get(intent) or GROUPS.get(group) or DEFAULT
