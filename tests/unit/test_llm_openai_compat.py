"""OpenAICompatLLM against an in-process fake OpenAI-compatible server (an httpx transport, no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from assistant.llm import LLM, ChatMessage, LLMError, LLMUnavailable, ToolSpec
from assistant.llm.base import StreamInfo
from assistant.llm.openai_compat import OpenAICompatLLM, parse_gauge

pytestmark = pytest.mark.anyio

BASE = "http://fake-vllm/v1"
USER = [ChatMessage(role="user", content="hi")]
TOOL = ToolSpec(
    name="search_products",
    description="Search the catalog",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}, "max_price": {"type": "number"}},
        "required": ["query"],
        "additionalProperties": False,
    },
)


class Intent(BaseModel):
    intent: Literal["search", "greeting"]
    query: str


class SSEBody(httpx.AsyncByteStream):
    """An SSE body that yields chunks and then waits forever, recording when the client closes it."""

    def __init__(self, deltas: list[str], *, endless: bool = False, finish: str | None = None) -> None:
        self.deltas = deltas
        self.endless = endless
        self.finish = finish  # the last chunk's finish_reason (vLLM sends it with an empty delta)
        self.sent = 0
        self.closed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delta in self.deltas:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}],
            }
            self.sent += 1
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        if self.endless:
            await asyncio.Event().wait()
        if self.finish:
            last = {"id": "c1", "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": self.finish}]}
            yield f"data: {json.dumps(last)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        self.closed.set()


def completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
    }


class FakeServer:
    """Routes requests to canned answers and keeps the parsed request bodies."""

    def __init__(self, handler: Callable[[dict[str, Any]], httpx.Response] | None = None) -> None:
        self.handler = handler
        self.bodies: list[dict[str, Any]] = []
        self.metrics = 'vllm:num_requests_running{engine="0",model_name="m"} 0.0\n'
        self.models = ["served-a", "served-b"]
        self.model_lists = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/metrics":
            return httpx.Response(200, text=self.metrics)
        if request.url.path == "/v1/models":
            self.model_lists += 1
            listed = [{"id": m, "object": "model"} for m in self.models]
            return httpx.Response(200, json={"object": "list", "data": listed})
        body = json.loads(request.content)
        self.bodies.append(body)
        assert self.handler is not None
        return self.handler(body)


def make_llm(server: FakeServer | Callable[[httpx.Request], httpx.Response]) -> OpenAICompatLLM:
    return OpenAICompatLLM(BASE, "m", transport=httpx.MockTransport(server))


async def test_satisfies_protocol() -> None:
    async with make_llm(FakeServer()) as llm:
        assert isinstance(llm, LLM)
        assert llm.model == "m"


async def test_stream_chat_yields_deltas() -> None:
    server = FakeServer(lambda body: httpx.Response(200, stream=SSEBody(["Hel", "", "lo", "!"])))
    async with make_llm(server) as llm:
        out = [d async for d in llm.stream_chat(USER, max_tokens=7)]
    assert out == ["Hel", "lo", "!"]
    assert server.bodies[0]["stream"] is True
    assert server.bodies[0]["max_tokens"] == 7
    assert server.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_the_finish_reason_reaches_stream_info() -> None:
    server = FakeServer(lambda body: httpx.Response(200, stream=SSEBody(["a", " b"], finish="length")))
    async with make_llm(server) as llm:
        info = StreamInfo()
        assert [d async for d in llm.stream_chat(USER, max_tokens=2, info=info)] == ["a", " b"]
        assert info.finish_reason == "length"
        untold = StreamInfo()
        server.handler = lambda body: httpx.Response(200, stream=SSEBody(["ok"]))
        assert [d async for d in llm.stream_chat(USER, info=untold)] == ["ok"]
        assert untold.finish_reason is None


async def test_a_final_assistant_message_is_continued_not_answered() -> None:
    server = FakeServer(lambda body: httpx.Response(200, stream=SSEBody([" Arctic", " Parka"])))
    start = [*USER, ChatMessage(role="assistant", content="The")]
    async with make_llm(server) as llm:
        out = [d async for d in llm.stream_chat(start)]
        assert [d async for d in llm.stream_chat(USER)] == [" Arctic", " Parka"]
    assert out == [" Arctic", " Parka"]
    continued, plain = server.bodies
    assert continued["messages"][-1] == {"role": "assistant", "content": "The"}
    assert continued["continue_final_message"] is True and continued["add_generation_prompt"] is False
    assert "continue_final_message" not in plain and "add_generation_prompt" not in plain


async def test_with_no_model_named_the_first_served_model_is_used_and_asked_once() -> None:
    server = FakeServer(lambda body: httpx.Response(200, stream=SSEBody(["ok"])))
    async with OpenAICompatLLM(BASE, None, transport=httpx.MockTransport(server)) as llm:
        assert llm.model == ""
        for _ in range(2):
            assert [d async for d in llm.stream_chat(USER)] == ["ok"]
        assert llm.model == "served-a"
    assert [b["model"] for b in server.bodies] == ["served-a", "served-a"]
    assert server.model_lists == 1


async def test_a_server_listing_no_model_is_a_clear_error() -> None:
    server = FakeServer(lambda body: httpx.Response(200, stream=SSEBody(["ok"])))
    server.models = []
    async with OpenAICompatLLM(BASE, None, transport=httpx.MockTransport(server)) as llm:
        with pytest.raises(LLMError, match="serves no model"):
            [d async for d in llm.stream_chat(USER)]
    assert server.bodies == []


async def test_closing_the_iterator_closes_the_http_stream() -> None:
    body = SSEBody(["a", "b", "c"], endless=True)
    async with make_llm(FakeServer(lambda _: httpx.Response(200, stream=body))) as llm:
        stream = llm.stream_chat(USER)
        assert await anext(stream) == "a"
        await stream.aclose()  # type: ignore[attr-defined]
        assert body.closed.is_set()


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    body = SSEBody(["a", "b"], endless=True)
    got: list[str] = []
    both = asyncio.Event()
    async with make_llm(FakeServer(lambda _: httpx.Response(200, stream=body))) as llm:

        async def consume() -> None:
            async for delta in llm.stream_chat(USER):
                got.append(delta)
                if len(got) == 2:
                    both.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(both.wait(), 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(body.closed.wait(), 1)


async def test_complete_json_sends_strict_schema_and_validates() -> None:
    server = FakeServer(
        lambda _: httpx.Response(200, json=completion({"content": '{"intent": "search", "query": "x"}'}))
    )
    async with make_llm(server) as llm:
        result = await llm.complete_json(USER, Intent)
    assert result == Intent(intent="search", query="x")
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "Intent"
    assert fmt["json_schema"]["schema"] == Intent.model_json_schema()


@pytest.mark.parametrize(
    ("content", "finish", "match"),
    [
        ('{"intent": "buy", "query": "x"}', "stop", "does not match Intent"),
        ('{"intent": "search", "query": "xxxx', "length", "cut off"),
        ("", "stop", "no content"),
    ],
)
async def test_complete_json_rejects_unusable_output(content: str, finish: str, match: str) -> None:
    server = FakeServer(lambda _: httpx.Response(200, json=completion({"content": content}, finish)))
    async with make_llm(server) as llm:
        with pytest.raises(LLMError, match=match) as info:
            await llm.complete_json(USER, Intent)
    assert not isinstance(info.value, LLMUnavailable)


def tool_call_reply(args: str) -> dict[str, Any]:
    call = {"id": "t1", "type": "function", "function": {"name": "search_products", "arguments": args}}
    return completion({"content": None, "tool_calls": [call]}, "tool_calls")


async def test_call_tool_forces_the_named_tool_and_returns_arguments() -> None:
    server = FakeServer(lambda _: httpx.Response(200, json=tool_call_reply('{"query": "red shoes", "max_price": 80}')))
    async with make_llm(server) as llm:
        args = await llm.call_tool(USER, TOOL)
    assert args == {"query": "red shoes", "max_price": 80}
    body = server.bodies[0]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "search_products"}}
    assert body["tools"][0]["function"]["strict"] is True
    assert body["tools"][0]["function"]["parameters"] == TOOL.parameters


async def test_call_tool_reads_a_hermes_call_left_in_the_content() -> None:
    content = '<tool_call>\n{"name": "search_products", "arguments": {"query": "mug"}}\n</tool_call>'
    server = FakeServer(lambda _: httpx.Response(200, json=completion({"content": content})))
    async with make_llm(server) as llm:
        assert await llm.call_tool(USER, TOOL) == {"query": "mug"}


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (tool_call_reply('{"max_price": 3}'), "do not match its schema"),
        (tool_call_reply("{not json"), "not JSON"),
        (completion({"content": "I cannot help"}), "no call of search_products"),
        (
            completion({"content": '<tool_call>\n{"name": "search_products", "arguments": {"query": "aaaa'}, "length"),
            "cut off",
        ),
    ],
)
async def test_call_tool_rejects_unusable_calls(reply: dict[str, Any], match: str) -> None:
    async with make_llm(FakeServer(lambda _: httpx.Response(200, json=reply))) as llm:
        with pytest.raises(LLMError, match=match):
            await llm.call_tool(USER, TOOL)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_unavailable(status: int) -> None:
    server = FakeServer(lambda _: httpx.Response(status, json={"error": {"message": "engine dead"}}))
    async with make_llm(server) as llm:
        with pytest.raises(LLMUnavailable, match=str(status)):
            await llm.complete_json(USER, Intent)
        with pytest.raises(LLMUnavailable):
            async for _ in llm.stream_chat(USER):
                pass
    assert len(server.bodies) == 2  # no silent retries


async def test_client_errors_are_llm_errors_not_unavailable() -> None:
    server = FakeServer(lambda _: httpx.Response(400, json={"error": {"message": "prompt too long"}}))
    async with make_llm(server) as llm:
        with pytest.raises(LLMError, match="prompt too long") as info:
            await llm.call_tool(USER, TOOL)
    assert not isinstance(info.value, LLMUnavailable)


async def test_unreachable_server_is_unavailable_and_not_ready() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with make_llm(refuse) as llm:
        assert await llm.ready() is False
        with pytest.raises(LLMUnavailable, match="fake-vllm"):
            async for _ in llm.stream_chat(USER):
                pass
        with pytest.raises(LLMUnavailable):
            await llm.running_requests()


async def test_a_connection_dropped_before_any_response_is_tried_once_more() -> None:
    attempts: list[int] = []

    def drop_first(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:  # a pooled keep-alive connection the server closed as the request went out
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, stream=SSEBody(["again"]))

    async with make_llm(drop_first) as llm:
        assert [d async for d in llm.stream_chat(USER)] == ["again"]
    assert len(attempts) == 2


async def test_a_refused_connection_fails_after_two_tries_naming_the_cause_and_a_timeout_is_not_repeated() -> None:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append("refused")
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with make_llm(refuse) as llm:
        cause = r"ConnectError: \[Errno 111\] Connection refused"
        with pytest.raises(LLMUnavailable, match=cause):
            async for _ in llm.stream_chat(USER):
                pass
        assert calls == ["refused", "refused"]
        with pytest.raises(LLMUnavailable, match=r"Connection error\. \(" + cause):  # the openai client's words
            await llm.complete_json(USER, Intent)
    assert calls == ["refused"] * 4

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append("timeout")
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_llm(slow) as llm:
        with pytest.raises(LLMUnavailable, match="timed out"):
            await llm.complete_json(USER, Intent)
    assert calls.count("timeout") == 1


async def test_a_stream_sends_the_key_and_reports_refusals_error_events_and_broken_chunks() -> None:
    headers: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization"))
        body = json.loads(request.content)
        if body["max_tokens"] == 1:
            return httpx.Response(400, json={"object": "error", "message": "prompt is too long", "code": 400})
        if body["max_tokens"] == 2:
            events = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
            events += b'data: {"error": {"message": "engine died", "code": 500}}\n\n'
            return httpx.Response(200, content=events)
        if body["max_tokens"] == 3:
            return httpx.Response(200, content=b"data: {not json\n\n")
        return httpx.Response(200, content=b": ping\n\nevent: x\ndata: [DONE]\n\n")

    llm = OpenAICompatLLM(BASE, "m", api_key="sk-test", transport=httpx.MockTransport(answer))
    async with llm:
        with pytest.raises(LLMError, match=r"refused the request \(HTTP 400\): prompt is too long") as refused:
            [d async for d in llm.stream_chat(USER, max_tokens=1)]
        assert not isinstance(refused.value, LLMUnavailable)
        got: list[str] = []
        with pytest.raises(LLMUnavailable, match="failed mid-stream: engine died"):
            async for d in llm.stream_chat(USER, max_tokens=2):
                got.append(d)
        assert got == ["Hi"]
        with pytest.raises(LLMUnavailable, match="malformed stream chunk"):
            [d async for d in llm.stream_chat(USER, max_tokens=3)]
        assert [d async for d in llm.stream_chat(USER, max_tokens=4)] == []
    assert headers == ["Bearer sk-test"] * 4


async def test_a_stream_cut_off_by_the_server_dying_is_unavailable_not_a_short_answer() -> None:
    # A body delimited by the connection's close (no chunked encoding) that stops mid-answer reads as ended: without
    # [DONE] or a finish reason it is the server dying (the reliability suite's kill -9), not the model finishing.
    def chunk(text: str, finish: str | None = None) -> bytes:
        body = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["max_tokens"] == 1:
            return httpx.Response(200, content=chunk("Here") + chunk(" is"))
        return httpx.Response(200, content=chunk("Hi", "stop"))  # finished, though the server sent no [DONE]

    async with make_llm(answer) as llm:
        got: list[str] = []
        with pytest.raises(LLMUnavailable, match="ended the stream mid-answer"):
            async for d in llm.stream_chat(USER, max_tokens=1):
                got.append(d)
        assert got == ["Here", " is"]
        assert [d async for d in llm.stream_chat(USER, max_tokens=2)] == ["Hi"]


async def test_a_stream_that_timed_out_is_not_sent_twice() -> None:
    calls: list[int] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_llm(slow) as llm:
        with pytest.raises(LLMUnavailable, match="ReadTimeout: timed out"):
            [d async for d in llm.stream_chat(USER)]
    assert calls == [1]


async def test_ready_and_running_requests_read_health_and_metrics() -> None:
    server = FakeServer()
    server.metrics = (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 2.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 1.0\n'
        'vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 5.0\n'
    )
    async with make_llm(server) as llm:
        assert await llm.ready() is True
        assert await llm.running_requests() == 2
        assert await llm.running_requests(include_waiting=True) == 3


def test_parse_gauge_ignores_prefixed_names_and_comments() -> None:
    text = '# TYPE x_total counter\nx 1\nx_total 7\nx{a="1"} 2.5\n'
    assert parse_gauge(text, "x") == 3.5
    assert parse_gauge(text, "missing") == 0.0
