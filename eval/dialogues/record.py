"""What one turn of a scenario produced: its events as they arrived, their timings, and its trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    name: str
    id: str | None
    data: dict[str, Any]
    at_ms: float  # since the message was sent


@dataclass
class TurnRecord:
    message: str
    events: list[Event] = field(default_factory=list)
    session_id: str | None = None
    turn_id: str | None = None
    turn_ms: float | None = None
    error: str | None = None  # the request itself failed (HTTP status, transport)
    trace: list[dict[str, Any]] = field(default_factory=list)  # the turn's tool trace, read after it ended

    def first(self, name: str) -> Event | None:
        return next((e for e in self.events if e.name == name), None)

    def all(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    @property
    def products_ms(self) -> float | None:
        ev = self.first("products")
        return ev.at_ms if ev else None

    @property
    def first_token_ms(self) -> float | None:
        ev = self.first("token")
        return ev.at_ms if ev else None

    @property
    def answer(self) -> str:
        return "".join(str(e.data.get("text", "")) for e in self.all("token")).strip()

    @property
    def intent(self) -> dict[str, Any]:
        ev = self.first("intent")
        return ev.data if ev else {}

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The cards of the turn's last products event."""
        shown = self.all("products")
        return list(shown[-1].data.get("products") or []) if shown else []

    @property
    def citations(self) -> list[str]:
        ev = self.first("citation")
        return list(ev.data.get("ids") or []) if ev else []

    @property
    def actions(self) -> list[dict[str, Any]]:
        return [e.data for e in self.all("action")]

    @property
    def status(self) -> str | None:
        ev = self.first("done")
        return str(ev.data.get("status")) if ev else None

    @property
    def withheld(self) -> list[str]:
        ev = self.first("done")
        return list(ev.data.get("withheld") or []) if ev else []

    def tool_calls(self) -> list[dict[str, Any]]:
        """The trace's tool calls (records with arguments), in order."""
        return [c for c in self.trace if "arguments" in c]

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "session_id": self.session_id,
            "turn_id": self.turn_id,
            "error": self.error,
            "intent": self.intent,
            "cards": [
                {k: c.get(k) for k in ("id", "title", "price", "currency", "stock", "in_stock", "rating")}
                for c in self.cards
            ],
            "answer": self.answer,
            "citations": self.citations,
            "actions": self.actions,
            "handoff": bool(self.all("handoff")),
            "status": self.status,
            "withheld": self.withheld,
            "tools": [
                {"name": c.get("name"), "arguments": c.get("arguments"), "ok": c.get("ok"), "error": c.get("error")}
                for c in self.tool_calls()
            ],
            "products_ms": self.products_ms,
            "first_token_ms": self.first_token_ms,
            "turn_ms": self.turn_ms,
            "events": [e.name for e in self.events],
        }


@dataclass
class State:
    """What the conversation left behind, as the stores (or, over HTTP, the tools' results) say."""

    cart: dict[str, int] = field(default_factory=dict)  # product id -> quantity
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # order id -> {status, returns}
    handoffs: list[str] = field(default_factory=list)  # open ticket ids of the session
    source: str = "stores"
