"""handoff_to_human: a ticket for a customer-service agent, recorded once per turn."""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, ConfigDict, Field

from assistant.stores.handoffs import HandoffStore
from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolOutput


class HandoffArgs(BaseModel):
    """Arguments of handoff_to_human."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="why a human should take over, in one sentence")


def handoff_to_human(store: HandoffStore, args: HandoffArgs, ctx: ToolContext) -> ToolOutput:
    """The turn's ticket, opened now or found from an earlier try of the same turn."""
    ticket, created = store.open(ctx.session_id, ctx.turn_id, ctx.shopper_id, args.reason.strip())
    data = ticket.model_dump(mode="json")
    data["outcome"] = "created" if created else "already_open"
    return ToolOutput(data=data, citations=[f"ticket:{ticket.ticket_id}"])


def tools(deps: ToolDeps) -> list[Tool]:
    """handoff_to_human over deps.handoffs (none without it). No confirmation step: asking for a person is
    itself the shopper's request."""
    if deps.handoffs is None:
        return []
    return [
        Tool(
            "handoff_to_human",
            "Hand the conversation to a human customer-service agent (the shopper asks for one, or the request "
            "is outside what the tools can do). Returns the ticket.",
            HandoffArgs,
            partial(handoff_to_human, deps.handoffs),
            changes_state=True,
        )
    ]
