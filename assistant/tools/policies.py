"""policy_answer: the store-policy passages that answer a question (the reply is written from them)."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolOutput
from retrieval.policies import PolicyIndex


class PolicyAnswerArgs(BaseModel):
    """Arguments of policy_answer."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=1000, description="the shopper's policy question")
    limit: int = Field(default=3, ge=1, le=8, description="how many passages to return")


def policy_ref(passage_id: str) -> str:
    return f"policy:{passage_id}"


def policy_answer(index: PolicyIndex, args: PolicyAnswerArgs, ctx: ToolContext) -> ToolOutput:
    """The best passages for the question, each cited."""
    hits = index.search(args.question, k=args.limit)
    passages: list[dict[str, Any]] = [
        {
            "id": h.passage.id,
            "title": h.passage.title,
            "text": h.passage.text,
            "applies_to": h.passage.applies_to,
            "score": h.score,
        }
        for h in hits
    ]
    return ToolOutput(
        data={"question": args.question, "passages": passages, "count": len(passages)},
        citations=[policy_ref(p["id"]) for p in passages],
    )


def tools(deps: ToolDeps) -> list[Tool]:
    """policy_answer over deps.policies (none without a policy index)."""
    if deps.policies is None:
        return []
    return [
        Tool(
            "policy_answer",
            "Find the store policy passages (returns, refunds, shipping, membership, account, promo codes) "
            "that answer the shopper's question. Answer only from the returned passages.",
            PolicyAnswerArgs,
            partial(policy_answer, deps.policies),
        )
    ]
