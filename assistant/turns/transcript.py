"""Folding a turn's event stream into one response: the non-streaming form of a turn (`?stream=false`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from assistant.schemas import ChatResponse
from assistant.sessions.models import StoredEvent


async def fold(session_id: str, events: AsyncIterator[StoredEvent]) -> ChatResponse:
    """The same content as the event stream, gathered: intent, cards, answer text, citations, actions, outcome."""
    out: dict[str, Any] = {"session_id": session_id, "turn_id": "", "status": "failed", "actions": []}
    parts: list[str] = []
    async for ev in events:
        d = ev.data
        match ev.event:
            case "session":
                out["turn_id"] = d["turn_id"]
            case "intent":
                out["intent"] = {"event": "intent", **d}
            case "products":
                out["products"] = d["products"]
            case "token":
                parts.append(d["text"])
            case "citation":
                out["citations"] = d["ids"]
            case "action":
                out["actions"].append({"event": "action", **d})
            case "handoff":
                out["handoff"] = {"event": "handoff", **d}
            case "error":
                out["error"] = d["error"]
            case "done":
                out["status"], out["withheld"] = d["status"], d["withheld"]
    out["answer"] = "".join(parts).strip()
    return ChatResponse.model_validate(out)
