"""The LLM protocol every part of the assistant talks to; implementations: OpenAI-compatible (vLLM) and fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

T = TypeVar("T", bound=BaseModel)


class ChatMessage(BaseModel):
    """One chat message in OpenAI shape."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: str | None = None
    tool_call_id: str | None = None


class ToolSpec(BaseModel):
    """A callable tool as the model sees it: name, description, JSON-schema parameters."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any]


class LLMError(Exception):
    """The model answered, but not usefully (invalid JSON, schema mismatch, no tool call)."""


class LLMUnavailable(LLMError):
    """The model server cannot be reached or failed; callers turn this into an `error` event / 503."""


@dataclass
class StreamInfo:
    """Filled in by `stream_chat` as the stream ends: why the model stopped, as the server said ("stop": it
    finished; "length": `max_tokens` cut it short), or None when the server did not say."""

    finish_reason: str | None = None


@runtime_checkable
class LLM(Protocol):
    """Stream chat deltas, complete against a JSON schema, call a named tool."""

    @property
    def model(self) -> str: ...

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        info: StreamInfo | None = None,
    ) -> AsyncIterator[str]:
        """Yield text deltas; closing the iterator (or cancelling its task) aborts the upstream request. A final
        assistant message is the reply's start: the model continues it, and its text is not yielded again.
        `info`, when given, gets the finish reason."""
        ...

    async def complete_json(self, messages: Sequence[ChatMessage], schema: type[T], *, max_tokens: int = 256) -> T:
        """A reply constrained by `schema`'s JSON schema, validated into `schema`; LLMError when invalid."""
        ...

    async def call_tool(
        self, messages: Sequence[ChatMessage], tool: ToolSpec, *, max_tokens: int = 256
    ) -> dict[str, Any]:
        """Force a call of `tool`; return its parsed arguments."""
        ...

    async def ready(self) -> bool:
        """True when the server answers its health check."""
        ...

    async def aclose(self) -> None: ...
