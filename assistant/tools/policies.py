"""policy_answer: the store-policy passages that answer a question, and the sentences of the best one that do."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolOutput
from retrieval.encoders import EmbeddingCache, TextEncoder
from retrieval.policies import PolicyIndex
from retrieval.policy_docs import PolicyFileError, load_policies

# Intents the rewrite rules give that the ontology has no entry for: a question about a policy without a
# customer-service intent of its own (warranty, price match, privacy).
POLICY_INTENTS = frozenset({"policy_question"})


class PolicyAnswerArgs(BaseModel):
    """Arguments of policy_answer."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=1000, description="the shopper's policy question")
    intent: str | None = Field(
        default=None, max_length=64, description="the question's intent, if known: policies that answer it rank higher"
    )
    limit: int = Field(default=3, ge=1, le=8, description="how many passages to return")


def policy_ref(passage_id: str) -> str:
    return f"policy:{passage_id}"


def policy_answer(index: PolicyIndex, args: PolicyAnswerArgs, ctx: ToolContext) -> ToolOutput:
    """The best passages for the question, each cited; `answer` holds the sentences of the best relevant one that
    answer the question (and the rest of that passage), when one is relevant enough."""
    hits = index.search(args.question, k=args.limit, intent=args.intent)
    passages: list[dict[str, Any]] = [
        {
            "id": h.passage.id,
            "policy": h.passage.policy_title,
            "title": h.passage.title,
            "text": h.passage.text,
            "updated": h.passage.updated.isoformat(),
            "score": round(h.score, 4),
            "relevant": h.relevant,
        }
        for h in hits
    ]
    best = next((h for h in hits if h.relevant), None)  # a closer passage may be off the question's topic
    answer = None
    if best is not None:
        quoted = best.quote()
        rest = [s for s in best.passage.sentences() if s not in quoted]
        answer = {"passage": best.passage.id, "sentences": quoted, "rest": rest}
    return ToolOutput(
        data={"question": args.question, "answer": answer, "passages": passages, "count": len(passages)},
        citations=[policy_ref(p["id"]) for p in passages],
    )


def load_policy_index(
    directory: str | Path,
    encoder: TextEncoder | None = None,
    cache: EmbeddingCache | None = None,
    known_intents: Iterable[str] | None = None,
) -> PolicyIndex:
    """The store's policies from `directory`, validated (a bad file raises PolicyFileError naming it, and so does
    an intent the router cannot give when `known_intents` is set), indexed."""
    docs = load_policies(directory)
    if known_intents is not None:
        for doc in docs:
            unknown = sorted(set(doc.meta.intents) - set(known_intents) - POLICY_INTENTS)
            if unknown:
                raise PolicyFileError(doc.path, f"front matter: intents: unknown intent(s) {unknown}")
    return PolicyIndex.build([p for doc in docs for p in doc.passages], encoder, cache)


def tools(deps: ToolDeps) -> list[Tool]:
    """policy_answer over deps.policies (none without a policy index)."""
    if deps.policies is None:
        return []
    return [
        Tool(
            "policy_answer",
            "Find the store policy passages (returns and refunds, shipping and delivery, payment, order changes and "
            "cancellation, warranty, price match, privacy, account, contact) that answer the shopper's question. "
            "Answer only from the returned passages; `answer` holds the sentences that answer it, when any do.",
            PolicyAnswerArgs,
            partial(policy_answer, deps.policies),
        )
    ]
