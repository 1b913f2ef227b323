"""Tool plumbing: the call context, what tools work over, the traced result, and the Toolbox that runs calls."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.errors import StoreUnavailable
from assistant.llm.base import ToolSpec
from retrieval.store import VectorStoreUnavailable
from retrieval.validation import errors_text

if TYPE_CHECKING:
    from assistant.stores import CartStore, HandoffStore, OrderStore
    from retrieval.personalization import ProfileStore
    from retrieval.policies import PolicyIndex
    from retrieval.search import SearchEngine

log = logging.getLogger(__name__)


class ToolContext(BaseModel):
    """Who is asking and in which turn; `confirmed` is set when the user approved the pending change."""

    model_config = ConfigDict(frozen=True)

    shopper_id: str = Field(min_length=1, max_length=256)
    session_id: str = Field(min_length=1, max_length=256)
    turn_id: str = Field(min_length=1, max_length=256)
    confirmed: bool = False
    role: Literal["shopper", "agent"] = "shopper"


class ToolResult(BaseModel):
    """What one tool call did; `as_trace()` is what the turn's trace keeps."""

    name: str
    arguments: dict[str, Any]
    ok: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    # Why it failed: "refused" (a ToolError, whose message is written for the shopper), "invalid" (arguments the tool
    # refused) or "failed" (the tool broke). Only a refusal's words may reach the shopper (answers.tool_failure).
    error_kind: Literal["refused", "invalid", "failed"] | None = None
    citations: list[str] = Field(default_factory=list)
    needs_confirmation: bool = False
    confirmation: dict[str, Any] | None = None
    duration_ms: float = 0.0

    def as_trace(self) -> dict[str, Any]:
        """A JSON-ready record of the call: arguments, outcome, citations and timing."""
        return self.model_dump(mode="json")


class ToolError(Exception):
    """A tool's expected refusal (not found, not allowed); the message is written for the shopper: whole sentences
    that say what went wrong and what to do about it (answers.tool_failure shows it)."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data or {}


@dataclass
class ToolOutput:
    """What a tool function returns; the Toolbox wraps it into a ToolResult."""

    data: dict[str, Any]
    citations: list[str] = field(default_factory=list)
    needs_confirmation: bool = False
    confirmation: dict[str, Any] | None = None


ToolFn = Callable[[Any, ToolContext], ToolOutput]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ToolDeps:
    """What the tool groups work over; a group whose dependency is None contributes no tools."""

    engine: SearchEngine | None = None
    profiles: ProfileStore | None = None
    orders: OrderStore | None = None
    carts: CartStore | None = None
    handoffs: HandoffStore | None = None
    policies: PolicyIndex | None = None
    clock: Callable[[], datetime] = utc_now  # injectable so tests can move time


@dataclass(frozen=True)
class Tool:
    """A named function with a pydantic args model; `fn(args, ctx)` runs in a worker thread."""

    name: str
    description: str
    args_model: type[BaseModel]
    fn: ToolFn
    changes_state: bool = False

    def spec(self) -> ToolSpec:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)


class Toolbox:
    """The registered tools; `call` never raises for a tool's failure (only cancellation passes through)."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        return self._tools[name]

    def specs(self, names: list[str] | None = None) -> list[ToolSpec]:
        """Tool specs for the model (all tools, or the named ones in that order)."""
        return [self._tools[n].spec() for n in (names if names is not None else self._tools)]

    async def call(self, name: str, arguments: dict[str, Any] | None, ctx: ToolContext) -> ToolResult:
        """Validate `arguments`, run the tool off the event loop, and report the outcome as a ToolResult."""
        start = time.perf_counter()
        args_record: dict[str, Any] = dict(arguments) if isinstance(arguments, dict) else {"_raw": repr(arguments)}

        def result(**kw: Any) -> ToolResult:
            return ToolResult(name=name, arguments=args_record, duration_ms=(time.perf_counter() - start) * 1000, **kw)

        tool = self._tools.get(name)
        if tool is None:
            available = ", ".join(self._tools)
            return result(ok=False, error=f"unknown tool {name!r}; available: {available}", error_kind="invalid")
        if not isinstance(arguments, dict):
            return result(ok=False, error=f"invalid arguments for {name}: expected a JSON object", error_kind="invalid")
        try:
            args = tool.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = errors_text(exc, unknown="unknown argument", whole="arguments")
            return result(ok=False, error=f"invalid arguments for {name}: {problems}", error_kind="invalid")
        try:
            out = await asyncio.to_thread(tool.fn, args, ctx)
        except ToolError as exc:
            return result(ok=False, error=exc.message, data=exc.data, error_kind="refused")
        except (StoreUnavailable, VectorStoreUnavailable):
            raise  # a store is down: the turn ends with an `unavailable` error, not an answer built on a failed call
        except Exception as exc:  # one failing tool must not end the turn
            log.exception("tool %s failed", name)
            return result(ok=False, error=f"{name} failed: {type(exc).__name__}: {exc}", error_kind="failed")
        return result(
            ok=True,
            data=out.data,
            citations=out.citations,
            needs_confirmation=out.needs_confirmation,
            confirmation=out.confirmation,
        )
