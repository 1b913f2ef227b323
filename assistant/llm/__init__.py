"""The one LLM interface (stream chat, JSON-schema completion, named tool call) and its implementations."""

from assistant.llm.base import LLM, ChatMessage, LLMError, LLMUnavailable, ToolSpec
from assistant.llm.fake import FakeLLM

__all__ = ["LLM", "ChatMessage", "FakeLLM", "LLMError", "LLMUnavailable", "ToolSpec"]
