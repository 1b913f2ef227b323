"""The Toolbox: specs for the model, validation, isolation of failures, traces; handoff tickets; the builder."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from assistant.llm import ToolSpec
from assistant.tools import TOOL_NAMES, build_toolbox, catalog_products
from assistant.tools.base import Tool, Toolbox, ToolContext, ToolOutput, ToolResult
from assistant.tools.handoff import HandoffStore, HandoffTools
from assistant.tools.orders import OrderStore
from assistant.tools.policies import Passage, PolicyIndex, load_passages
from retrieval.search import SearchEngine
from tests.conftest import SHARED_DATA
from tests.unit.conftest import SMALL_CATALOG

CTX = ToolContext(shopper_id="s1", session_id="sess-1", turn_id="t1")


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    times: int = 1


def _echo(args: EchoArgs, ctx: ToolContext) -> ToolOutput:
    return ToolOutput(data={"echo": args.text * args.times, "shopper": ctx.shopper_id}, citations=["product:p1"])


def _boom(args: EchoArgs, ctx: ToolContext) -> ToolOutput:
    raise RuntimeError("disk on fire")


def call(toolbox: Toolbox, name: str, args: Any, ctx: ToolContext = CTX) -> ToolResult:
    return asyncio.run(toolbox.call(name, args, ctx))


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox([Tool("echo", "Echo text.", EchoArgs, _echo), Tool("boom", "Always fails.", EchoArgs, _boom)])


def test_call_validates_runs_and_traces(toolbox: Toolbox) -> None:
    res = call(toolbox, "echo", {"text": "ab", "times": 2})
    assert res.ok and res.data == {"echo": "abab", "shopper": "s1"} and res.citations == ["product:p1"]
    trace = res.as_trace()
    assert json.loads(json.dumps(trace)) == trace
    assert trace["name"] == "echo" and trace["arguments"] == {"text": "ab", "times": 2}
    assert trace["duration_ms"] >= 0 and trace["needs_confirmation"] is False


def test_failures_come_back_as_results(toolbox: Toolbox) -> None:
    boom = call(toolbox, "boom", {"text": "x"})
    assert not boom.ok and "RuntimeError" in (boom.error or "") and "disk on fire" in (boom.error or "")
    unknown = call(toolbox, "nope", {})
    assert not unknown.ok and "unknown tool 'nope'" in (unknown.error or "") and "echo" in (unknown.error or "")
    not_object = call(toolbox, "echo", ["text"])
    assert not not_object.ok and "JSON object" in (not_object.error or "")
    bad = call(toolbox, "echo", {"times": "many", "extra": 1})
    assert not bad.ok
    assert "text: Field required" in (bad.error or "") and "times:" in (bad.error or "")
    assert "extra: unknown argument" in (bad.error or "")


def test_cancellation_while_a_tool_runs_is_not_swallowed() -> None:
    release = threading.Event()

    async def main() -> None:
        loop, started = asyncio.get_running_loop(), asyncio.Event()

        def slow(args: EchoArgs, ctx: ToolContext) -> ToolOutput:
            loop.call_soon_threadsafe(started.set)
            release.wait(10)
            return ToolOutput(data={})

        box = Toolbox([Tool("slow", "Slow.", EchoArgs, slow)])
        task = asyncio.create_task(box.call("slow", {"text": "x"}, CTX))
        await started.wait()
        task.cancel()
        try:
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            release.set()

    asyncio.run(main())


def test_handoff_is_one_ticket_per_turn(tmp_path: Path) -> None:
    store = HandoffStore(tmp_path / "handoffs.sqlite")
    box = Toolbox(HandoffTools(store).tools())
    first = call(box, "handoff_to_human", {"reason": "wants a person"})
    assert first.ok and first.data["outcome"] == "created" and first.data["ticket_id"].startswith("HO-")
    again = call(box, "handoff_to_human", {"reason": "asked twice"})
    assert again.data["outcome"] == "already_open" and again.data["ticket_id"] == first.data["ticket_id"]
    assert again.data["reason"] == "wants a person"
    later = call(box, "handoff_to_human", {"reason": "still stuck"}, CTX.model_copy(update={"turn_id": "t2"}))
    assert later.data["ticket_id"] != first.data["ticket_id"]
    assert [t.reason for t in store.for_session("sess-1")] == ["wants a person", "still stuck"]
    assert later.citations == [f"ticket:{later.data['ticket_id']}"]
    assert not call(box, "handoff_to_human", {"reason": ""}).ok


def test_builder_wires_all_tools_with_valid_specs(engine: SearchEngine, tmp_path: Path) -> None:
    policies = PolicyIndex.build(load_passages_or_skip())
    box = build_toolbox(
        None, OrderStore(tmp_path / "o.sqlite"), policies, HandoffStore(tmp_path / "h.sqlite"), engine=engine
    )
    assert box.names == list(TOOL_NAMES)
    specs = box.specs()
    for spec in specs:
        assert isinstance(spec, ToolSpec) and spec.parameters["type"] == "object"
        assert spec.parameters["properties"] and "title" not in spec.parameters
    search = next(s for s in specs if s.name == "search_products")
    assert search.parameters["required"] == ["query"]
    assert {"category", "brand", "color", "size", "min_price", "max_price", "in_stock", "min_rating", "limit"} <= set(
        search.parameters["properties"]
    )
    assert {p.id for p in catalog_products(engine)} == {p.id for p in SMALL_CATALOG}


def load_passages_or_skip() -> list[Passage]:
    source = SHARED_DATA / "policies" / "abcd"
    if not (source / "guidelines.json").is_file():
        pytest.skip(f"shared data not found at {source}")
    return load_passages(source)
