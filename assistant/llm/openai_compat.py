"""The LLM protocol over any OpenAI-compatible server (vLLM by default), with the `openai` async client."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
from pydantic import ValidationError

from assistant.llm.base import ChatMessage, LLMError, LLMUnavailable, StreamInfo, T, ToolSpec

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=3.0)
HEALTH_TIMEOUT = 2.0
# vLLM's HTTP server closes a keep-alive connection after 5 idle seconds; a request sent on a pooled connection
# as the server closes it fails before any response (seen under load). Idle connections are dropped sooner here,
# and a request that failed to connect is sent once more.
KEEPALIVE_S = 2.0
# vLLM's Prometheus gauges of requests in the engine (running: being decoded; waiting: queued).
RUNNING_METRIC = "vllm:num_requests_running"
WAITING_METRIC = "vllm:num_requests_waiting"
# vLLM's request fields that make the model continue a final assistant message instead of starting a new one.
CONTINUE_FINAL_MESSAGE = {"continue_final_message": True, "add_generation_prompt": False}


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx errors, plus httpx2's: openai 3.x runs on httpx2 and may raise its errors while a stream is read."""
    try:
        import httpx2
    except ImportError:
        return (httpx.HTTPError,)
    return (httpx.HTTPError, httpx2.HTTPError)


_ERRORS: tuple[type[Exception], ...] = (openai.APIError, *_transport_errors())


def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    return [m.model_dump(exclude_none=True) for m in messages]


def _schema_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "reply"


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _message(body: Any) -> str:
    """The message of an OpenAI-style error body ({"error": {"message": …}}, vLLM's {"message": …}), else the text."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if body.get("message"):
            return str(body["message"])
    return (body if isinstance(body, str) else json.dumps(body))[:300]


def parse_gauge(metrics_text: str, name: str) -> float:
    """Sum every sample of the gauge `name` in Prometheus text exposition (all label sets)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            try:
                total += float(line.rsplit(maxsplit=1)[-1])
            except ValueError:
                continue
    return total


class OpenAICompatLLM:
    """Chat, JSON-schema completion and named tool calls against `base_url` (e.g. `http://127.0.0.1:8000/v1`).

    Connection failures, timeouts and 5xx/429 answers raise LLMUnavailable; other refusals and unusable
    output raise LLMError. Closing a `stream_chat` iterator (or cancelling its task) closes the HTTP
    response, which makes vLLM abort the request.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str = "EMPTY",
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        *,
        max_retries: int = 0,
        health_timeout: float = HEALTH_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self._model = model
        self._api_key = api_key
        self._http = httpx.AsyncClient(
            timeout=timeout, transport=transport, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S)
        )
        self._probe = httpx.AsyncClient(timeout=health_timeout, transport=transport)
        # openai>=3 accepts a plain httpx client (it runs on httpx2 otherwise): one transport for both clients.
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            max_retries=max_retries,
            http_client=self._http,  # type: ignore[arg-type]
        )

    @property
    def model(self) -> str:
        """The served model's name ("" until it is asked of the server, when none was named)."""
        return self._model or ""

    async def _model_name(self) -> str:
        """The model named at construction, else the first the server lists at GET /v1/models (asked once)."""
        if self._model:
            return self._model
        try:
            listed = [m.id async for m in self._client.models.list()]
        except _ERRORS as e:
            raise self._translate(e) from e
        if not listed:
            raise LLMError(f"LLM server {self.base_url} serves no model (GET /v1/models is empty)")
        self._model = listed[0]
        return self._model

    def _unavailable(self, e: Exception) -> LLMUnavailable:
        if isinstance(e, httpx.HTTPError):  # httpx's own: its class names the failure ("ConnectError: …")
            return LLMUnavailable(f"LLM server {self.base_url} unavailable: {type(e).__name__}: {e}")
        detail = getattr(e, "message", None) or str(e) or type(e).__name__
        cause = e.__cause__
        if cause is not None and str(cause) and str(cause) not in detail:  # openai's "Connection error." says little
            detail = f"{detail} ({type(cause).__name__}: {cause})"
        return LLMUnavailable(f"LLM server {self.base_url} unavailable: {detail}")

    def _refused(self, status: int, message: str) -> LLMError:
        if status >= 500 or status == 429:
            return LLMUnavailable(f"LLM server {self.base_url} failed with HTTP {status}: {message}")
        return LLMError(f"LLM server {self.base_url} refused the request (HTTP {status}): {message}")

    def _translate(self, e: Exception) -> LLMError:
        if isinstance(e, openai.APIStatusError):
            return self._refused(e.status_code, e.message)
        # Connection refused/reset, timeouts, broken streams, and error events inside a stream.
        return self._unavailable(e)

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        info: StreamInfo | None = None,
    ) -> AsyncIterator[str]:
        """Yield non-empty text deltas; on close/cancel the HTTP stream is closed so the server aborts. A final
        assistant message is continued (vLLM's `continue_final_message`).

        Streamed with httpx and read as server-sent events here, not through the openai client: the client's own
        work per request and per chunk runs on the service's one event loop, where every answer of every shopper
        pays it, and costs many times what this reading does."""
        payload: dict[str, Any] = {
            "model": await self._model_name(),
            "messages": _messages(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if messages and messages[-1].role == "assistant":
            payload.update(CONTINUE_FINAL_MESSAGE)
        if stop:
            payload["stop"] = list(stop)
        if seed is not None:
            payload["seed"] = seed
        # `async with` closes the response on GeneratorExit and CancelledError alike; vLLM sees the
        # disconnect and aborts generation. The exception itself propagates untouched.
        async with self._post_stream(payload) as response:
            finished = False
            try:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        raise LLMUnavailable(f"LLM server {self.base_url} failed mid-stream: {_message(chunk)}")
                    choices = chunk.get("choices") or []
                    delta = (choices[0].get("delta") or {}).get("content") if choices else None
                    if choices and choices[0].get("finish_reason"):
                        finished = True
                        if info is not None:
                            info.finish_reason = choices[0]["finish_reason"]
                    if delta:
                        yield delta
                # The body ended with neither [DONE] nor a finish reason: the server died mid-answer (a response
                # delimited by the connection's close reads as ended, not broken). Not an answer to keep.
                if not finished:
                    raise LLMUnavailable(f"LLM server {self.base_url} ended the stream mid-answer (no [DONE])")
            except httpx.HTTPError as e:
                raise self._unavailable(e) from e
            except (json.JSONDecodeError, AttributeError) as e:
                raise LLMUnavailable(f"LLM server {self.base_url} sent a malformed stream chunk: {e}") from e

    @asynccontextmanager
    async def _post_stream(self, payload: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """The streamed response to a chat request; a connection that failed before any response is tried once
        more (not a timeout: the server may be working on it); a refusal raises as `_create`'s do."""
        request = self._http.build_request("POST", f"{self.base_url}/chat/completions", json=payload)
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as e:
                if isinstance(e, httpx.TimeoutException):
                    raise
                response = await self._http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e
        try:
            if response.status_code != 200:
                body = await response.aread()
                raise self._refused(response.status_code, _message(_json_or_text(body)))
            yield response
        finally:
            await response.aclose()

    async def _create(self, **kwargs: Any) -> Any:
        """One completion request; a connection that failed before any response is tried once more."""
        model = await self._model_name()
        create = self._client.chat.completions.create
        try:
            try:
                return await create(model=model, **kwargs)
            except openai.APIConnectionError as e:
                if isinstance(e, openai.APITimeoutError):  # the server may be working on it: not sent twice
                    raise
                return await create(model=model, **kwargs)
        except _ERRORS as e:
            raise self._translate(e) from e

    async def complete_json(
        self,
        messages: Sequence[ChatMessage],
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> T:
        """The server constrains decoding to `schema`'s JSON schema; the reply is validated into `schema`."""
        response = await self._create(
            messages=_messages(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(schema.__name__),
                    "schema": schema.model_json_schema(),
                    "strict": True,
                },
            },
        )
        choice = response.choices[0] if response.choices else None
        content = choice.message.content if choice else None
        if not content:
            raise LLMError(f"LLM returned no content for {schema.__name__}")
        try:
            return schema.model_validate_json(content)
        except ValidationError as e:
            hint = " (cut off at max_tokens)" if choice and choice.finish_reason == "length" else ""
            first = e.errors(include_input=False, include_url=False)[:1]
            raise LLMError(
                f"LLM reply does not match {schema.__name__}{hint}: {first}; reply: {content[:200]!r}"
            ) from e

    async def call_tool(
        self,
        messages: Sequence[ChatMessage],
        tool: ToolSpec,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> dict[str, Any]:
        """Force a call of `tool` (named tool_choice, strict schema) and return its arguments, schema-checked."""
        response = await self._create(
            messages=_messages(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "strict": True,
                    },
                }
            ],
            tool_choice={"type": "function", "function": {"name": tool.name}},
        )
        choice = response.choices[0] if response.choices else None
        calls = [c for c in (choice.message.tool_calls or []) if c.type == "function"] if choice else []
        named = [c for c in calls if c.function.name == tool.name]
        if named:
            raw = named[0].function.arguments
        else:
            content = (choice.message.content if choice else None) or ""
            found = _hermes_arguments(content, tool.name)
            if found is None:
                if choice and choice.finish_reason == "length":
                    raise LLMError(
                        f"the call of {tool.name} was cut off at max_tokens={max_tokens}; "
                        "bound its strings (maxLength) or raise max_tokens"
                    )
                raise LLMError(f"LLM made no call of {tool.name}; reply: {content[:200]!r}")
            raw = found
        try:
            args = json.loads(raw)
        except json.JSONDecodeError as e:
            raise LLMError(f"arguments for {tool.name} are not JSON: {raw[:200]!r}") from e
        if not isinstance(args, dict):
            raise LLMError(f"arguments for {tool.name} are not an object: {raw[:200]!r}")
        _check_schema(args, tool)
        return args

    async def ready(self) -> bool:
        """True when GET /health answers 200 within the health timeout."""
        try:
            response = await self._probe.get(f"{self.root_url}/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def running_requests(self, *, include_waiting: bool = False) -> int:
        """Requests the server is generating for now (vLLM's /metrics gauge); LLMUnavailable when unreachable."""
        return await running_requests(self.root_url, include_waiting=include_waiting, client=self._probe)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
        await self._probe.aclose()

    async def __aenter__(self) -> OpenAICompatLLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def _hermes_arguments(content: str, name: str) -> str | None:
    """Arguments of a `<tool_call>` left in the content (when the server's parser gave up), as JSON text."""
    for match in _TOOL_CALL.finditer(content):
        try:
            call = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(call, dict) and call.get("name") == name and "arguments" in call:
            args = call["arguments"]
            return args if isinstance(args, str) else json.dumps(args)
    return None


def _check_schema(args: dict[str, Any], tool: ToolSpec) -> None:
    try:
        import jsonschema
    except ImportError:  # the server already constrained decoding to the schema
        return
    try:
        jsonschema.validate(args, tool.parameters)
    except jsonschema.ValidationError as e:
        raise LLMError(f"arguments for {tool.name} do not match its schema: {e.message}") from e


async def running_requests(
    root_url: str, *, include_waiting: bool = False, client: httpx.AsyncClient | None = None
) -> int:
    """Read `vllm:num_requests_running` (+ waiting) from a vLLM server's /metrics at `root_url` (no `/v1`)."""
    url = f"{root_url.rstrip('/').removesuffix('/v1')}/metrics"
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT) as own:
                response = await own.get(url)
        else:
            response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as e:
        raise LLMUnavailable(f"cannot read {url}: {e}") from e
    n = parse_gauge(response.text, RUNNING_METRIC)
    if include_waiting:
        n += parse_gauge(response.text, WAITING_METRIC)
    return int(n)
