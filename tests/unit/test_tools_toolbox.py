"""The Toolbox: specs for the model, validation, isolation of failures, traces; handoff tickets; the builder."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from assistant.llm import ToolSpec
from assistant.settings import SHIPPED_POLICIES, AssistantSettings
from assistant.stores import HandoffStore, Stores, open_stores
from assistant.stores.sqlite_records import SqliteRecordStore
from assistant.tools import catalog_products, load_tool_deps, make_toolbox
from assistant.tools.base import Tool, Toolbox, ToolContext, ToolDeps, ToolOutput, ToolResult
from retrieval.personalization import ProfileStore
from retrieval.policies import PolicyIndex
from retrieval.policy_docs import load_passages
from retrieval.search import SearchEngine
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
    assert [r.error_kind for r in (boom, unknown, not_object, bad)] == ["failed", "invalid", "invalid", "invalid"]


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
    store = HandoffStore(SqliteRecordStore(tmp_path / "sessions.sqlite"))
    box = make_toolbox(ToolDeps(handoffs=store))
    assert box.names == ["handoff_to_human"]
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


ALL_TOOLS = [
    "search_products",
    "get_product",
    "compare_products",
    "order_status",
    "cancel_order",
    "start_return",
    "policy_answer",
    "handoff_to_human",
    "add_to_cart",
    "remove_from_cart",
    "view_cart",
]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    s = open_stores(f"sqlite:///{tmp_path / 'sessions.sqlite'}")
    yield s
    s.close()


def test_builder_wires_all_tools_with_valid_specs(engine: SearchEngine, stores: Stores, tmp_path: Path) -> None:
    deps = ToolDeps(
        engine=engine,
        profiles=ProfileStore(tmp_path / "profiles.sqlite"),
        orders=stores.orders,
        carts=stores.carts,
        handoffs=stores.handoffs,
        policies=PolicyIndex.build(load_passages(SHIPPED_POLICIES)),
    )
    box = make_toolbox(deps)
    assert box.names == ALL_TOOLS
    # A group whose dependency is missing is left out; the others stay.
    assert make_toolbox(ToolDeps(engine=engine, orders=stores.orders)).names == ALL_TOOLS[:6]
    specs = box.specs()
    for spec in specs:
        assert isinstance(spec, ToolSpec) and spec.parameters["type"] == "object"
        assert (spec.parameters["properties"] or spec.name == "view_cart") and "title" not in spec.parameters
    search = next(s for s in specs if s.name == "search_products")
    assert search.parameters["required"] == ["query"]
    assert {"category", "brand", "color", "size", "min_price", "max_price", "in_stock", "min_rating", "limit"} <= set(
        search.parameters["properties"]
    )
    assert {p.id for p in catalog_products(engine)} == {p.id for p in SMALL_CATALOG}


def test_the_service_wiring_seeds_orders_once_and_registers_every_tool(engine: SearchEngine, tmp_path: Path) -> None:
    settings = AssistantSettings(data_dir=tmp_path, llm_mode="external", llm_base_url="http://127.0.0.1:9/v1")
    if not settings.users_path.is_file():
        pytest.skip(f"shared data not found at {settings.users_path}")
    components = SimpleNamespace(text_encoder=None, cache=None, profiles=ProfileStore(tmp_path / "profiles.sqlite"))
    with closing(open_stores(settings.resolved_session_store_url, legacy_dir=settings.data_dir)) as stores:
        deps = load_tool_deps(settings, components, engine, SMALL_CATALOG, stores)  # type: ignore[arg-type]
        assert make_toolbox(deps).names == ALL_TOOLS
        seeded = stores.orders.count()
        assert seeded > 0
        load_tool_deps(settings, components, engine, SMALL_CATALOG, stores)  # type: ignore[arg-type]
        assert stores.orders.count() == seeded
