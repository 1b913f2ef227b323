"""A scripted LLM for unit tests: replays queued replies and records every call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import ValidationError

from assistant.llm.base import ChatMessage, LLMError, LLMUnavailable, StreamInfo, T, ToolSpec


class FakeLLM:
    """Replies come from queues: `streams` (lists of chunks), `json_replies` (raw JSON strings), `tool_args`.

    An empty stream queue yields `default_stream`; an empty JSON queue raises LLMError, like a model
    that produced nothing valid. `available=False` makes every call raise LLMUnavailable.
    """

    def __init__(
        self,
        streams: Sequence[Sequence[str]] = (),
        json_replies: Sequence[str | dict[str, Any]] = (),
        tool_args: Sequence[dict[str, Any]] = (),
        default_stream: Sequence[str] = ("OK.",),
        chunk_delay: float = 0.0,
    ) -> None:
        self.streams = [list(s) for s in streams]
        self.json_replies = [r if isinstance(r, str) else json.dumps(r) for r in json_replies]
        self.tool_args = list(tool_args)
        self.default_stream = list(default_stream)
        self.chunk_delay = chunk_delay
        self.available = True
        self.calls: list[tuple[str, list[ChatMessage]]] = []
        self.cancelled_streams = 0
        self.closed = False

    @property
    def model(self) -> str:
        return "fake"

    def _check(self) -> None:
        if not self.available:
            raise LLMUnavailable("fake LLM is down")

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        info: StreamInfo | None = None,
    ) -> AsyncIterator[str]:
        """The next scripted stream, one chunk per model token: at most `max_tokens` of them, and a script that
        reaches the limit finishes as vLLM's would, with reason "length"."""
        self._check()
        self.calls.append(("stream_chat", list(messages)))
        chunks = self.next_stream(messages)
        try:
            for chunk in chunks[:max_tokens]:
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled_streams += 1
            raise
        if info is not None:
            info.finish_reason = "length" if len(chunks) >= max_tokens else "stop"

    def next_stream(self, messages: Sequence[ChatMessage]) -> list[str]:
        """The chunks of the next answer: the next scripted stream, else `default_stream` (subclasses may write
        them from the messages)."""
        return self.streams.pop(0) if self.streams else list(self.default_stream)

    async def complete_json(self, messages: Sequence[ChatMessage], schema: type[T], *, max_tokens: int = 256) -> T:
        self._check()
        self.calls.append(("complete_json", list(messages)))
        if not self.json_replies:
            raise LLMError("fake LLM has no scripted JSON reply")
        raw = self.json_replies.pop(0)
        try:
            return schema.model_validate_json(raw)
        except ValidationError as e:
            raise LLMError(f"reply does not match {schema.__name__}: {e.errors()[:1]}") from e

    async def call_tool(
        self, messages: Sequence[ChatMessage], tool: ToolSpec, *, max_tokens: int = 256
    ) -> dict[str, Any]:
        self._check()
        self.calls.append((f"call_tool:{tool.name}", list(messages)))
        if not self.tool_args:
            raise LLMError(f"fake LLM has no scripted arguments for {tool.name}")
        return self.tool_args.pop(0)

    async def ready(self) -> bool:
        return self.available

    async def aclose(self) -> None:
        self.closed = True
