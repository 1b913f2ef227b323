"""A turn's trace: every tool call, model call and decision, in order, stored with the turn (`Turn.tool_trace`)."""

from __future__ import annotations

from typing import Any, Protocol


class Traceable(Protocol):
    def as_trace(self) -> dict[str, Any]: ...


class Trace:
    """The turn's records, each a JSON-ready dict with `name` and `ok`; `entries` is the list the turn stores, so
    records added after it is attached (the model's slots, the answer's finish) are stored too."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, call: Traceable) -> None:
        """A tool call's record (`ToolResult.as_trace()`)."""
        self.entries.append(call.as_trace())

    def note(self, name: str, *, ok: bool = True, data: Any = None, error: str | None = None) -> dict[str, Any]:
        """A record of something the turn did or decided; returned so a step still running can complete it."""
        entry: dict[str, Any] = {"name": name, "ok": ok}
        if data is not None:
            entry["data"] = data
        if error is not None:
            entry["error"] = error
        self.entries.append(entry)
        return entry
