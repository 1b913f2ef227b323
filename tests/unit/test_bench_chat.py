"""Smoke test of the chat benchmark: its SSE parsing and statistics, and one run against a fake service and a
fake OpenAI-compatible server (sse-starlette's real wire format, uvicorn on a loopback port)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from assistant.answers import product_details, products_facts
from assistant.prompts import PromptRegistry
from eval import bench_chat
from eval.bench_chat.client import TurnResult
from eval.bench_chat.stats import side_stats
from eval.sse import SSEParser
from retrieval.cards import ProductCard
from retrieval.product import Product

CATALOG = [
    Product(id="j1", title="Arctic Parka", price=299.99, stock=10, brand="North", category_path=["apparel", "jacket"]),
    Product(id="j2", title="Quilted Jacket", price=129.99, stock=0, color="Brown", description="Warm and light."),
    Product(id="j3", title="Rain Shell", price=89.0, stock=3, rating=4.5),
]
PROMPTS = PromptRegistry.load()
SEARCH_ANSWER = "The Arctic Parka is a great choice."
PRODUCT_ANSWER = "The Quilted Jacket is warm and light."
SUMMARY = re.compile(
    r"^products_p95_ms@1=\d+\.\d first_token_p95_s@1=\d+\.\d\d first_token_p95_s@8=n/a overhead@1=\d+\.\d\dx "
    r"errors=\d+$"
)


def card(p: Product) -> dict[str, Any]:
    return ProductCard.of(p).model_dump(mode="json")  # as the service's products event carries it


class FakeBackends:
    """The service's /v1/chat and /readyz, and vLLM's /v1/models and /v1/chat/completions, in one app."""

    def __init__(self) -> None:
        self.sessions: dict[str, tuple[str, int]] = {}  # session id -> (shopper, turns so far)
        self.turns: dict[str, list[dict[str, Any]]] = {}  # session id -> its turns as GET /v1/sessions shows them
        self.completions: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/readyz", self.readyz),
                Route("/v1/chat", self.chat, methods=["POST"]),
                Route("/v1/sessions/{sid}", self.session),
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.completion, methods=["POST"]),
            ]
        )

    async def readyz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready", "checks": {"llm": True, "sessions": True}})

    async def models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def session(self, request: Request) -> JSONResponse:
        sid = request.path_params["sid"]
        return JSONResponse({"session_id": sid, "turns": self.turns.get(sid, [])})

    def record(self, sid: str, turn: str, message: str, follow_up: bool, failed: bool) -> None:
        """The turn as the service stores it, with the answer-model call in its trace (as the planner renders it)."""
        name, facts = ("product", product_details(CATALOG[1])) if follow_up else ("answer", products_facts(CATALOG))
        prompt = PROMPTS.get(name)
        messages = [{"role": r, "content": c} for r, c in prompt.messages(facts=facts, message=message)]
        if prompt.reply_start:  # the reply's start, continued by the model
            messages.append({"role": "assistant", "content": prompt.reply_start})
        call = {"prompt": name, "messages": messages, "max_tokens": prompt.max_tokens, "first_text_ms": 40.0}
        call["first_piece_ms"] = 55.0
        trace = [{"name": "search_products", "ok": True, "data": {}}]
        trace.append({"name": "answer_model", "ok": not failed, "data": call})
        with self.lock:
            self.turns.setdefault(sid, []).append({"turn_id": turn, "tool_trace": trace})

    async def chat(self, request: Request) -> EventSourceResponse | JSONResponse:
        if request.headers.get("authorization") != "Bearer demo-agent-key":
            return JSONResponse({"error": {"code": "unauthorized", "message": "bad key"}}, status_code=401)
        body = await request.json()
        with self.lock:
            sid = body.get("session_id") or f"s{len(self.sessions) + 1}"
            shopper, seen = self.sessions.get(sid, (body.get("shopper_id"), 0))
            self.sessions[sid] = (shopper, seen + 1)
        follow_up = "second one" in body["message"]

        async def events() -> AsyncIterator[ServerSentEvent]:
            turn = f"t-{sid}-{seen}"
            seq = iter(range(100))

            def ev(name: str, data: dict[str, Any]) -> ServerSentEvent:
                return ServerSentEvent(data=json.dumps(data), event=name, id=f"{turn}:{next(seq)}")

            yield ev("session", {"session_id": sid, "turn_id": turn, "shopper_id": shopper, "resumed": False})
            intent = "product_question" if follow_up else "search_products"
            refs = ["j2"] if follow_up else []
            yield ev(
                "intent", {"intent": intent, "group": "SHOPPING", "confidence": 0.9, "slots": {}, "references": refs}
            )
            await asyncio.sleep(0.01)
            yield ev("products", {"products": [card(CATALOG[1])] if follow_up else [card(p) for p in CATALOG]})
            await asyncio.sleep(0.08)  # long enough for a `: ping` comment between events
            failed = shopper == "2" and seen == 1
            self.record(sid, turn, body["message"], follow_up, failed)
            if failed:
                yield ev("error", {"error": {"code": "llm_unavailable", "message": "model down"}})
                yield ev("done", {"turn_id": turn, "status": "failed", "withheld": []})
                return
            for word in (PRODUCT_ANSWER if follow_up else SEARCH_ANSWER).split(" "):
                yield ev("token", {"text": word + " "})
                await asyncio.sleep(0.01)
            yield ev("done", {"turn_id": turn, "status": "completed", "withheld": []})

        return EventSourceResponse(events(), ping=0.03)

    async def completion(self, request: Request) -> StreamingResponse:
        payload = await request.json()
        with self.lock:
            self.completions.append(payload)
        last = payload["messages"][-1]["content"]
        text = PRODUCT_ANSWER if "second one" in last else SEARCH_ANSWER
        if payload.get("continue_final_message"):  # the model continues the reply's start (vLLM)
            assert text.startswith(last) and payload["add_generation_prompt"] is False
            text = text[len(last) :]

        async def chunks() -> AsyncIterator[bytes]:
            for i, piece in enumerate(re.findall(r"\s*\S+\s*", text)):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode()
                await asyncio.sleep(0.005)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_sse_parser_reads_crlf_comments_and_multiline_data() -> None:
    wire = ': ping - now\r\n\r\nid: t:0\r\nevent: token\r\ndata: {"text":\r\ndata: "hi"}\r\n\r\ndata: plain\r\n\r\n'
    parser = SSEParser()
    events = [ev for line in wire.split("\n") if (ev := parser.feed(line)) is not None]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("token", '{"text":\n"hi"}', "t:0"),
        ("message", "plain", "t:0"),
    ]


def test_rates_count_after_the_first_piece_and_stats_count_errors() -> None:
    ok = TurnResult("service", 1, 1, "q", status="completed")
    for at, text in ((1.0, "The parka "), (1.5, "is warm "), (2.0, "and light.")):
        ok.piece(text, at)
    assert ok.rates() == pytest.approx((2 / 1.0, 4 / 1.0))
    one = TurnResult("service", 1, 2, "q", status="completed")
    one.piece("A whole sentence held back.", 3.0)
    assert one.rates() == (None, None)
    failed = TurnResult("service", 2, 1, "q", status="failed", error_events=["llm_unavailable: down"])
    cut = TurnResult("service", 2, 2, "q", cut=True)
    stats = side_stats([ok, one, failed, cut], wall_s=4.0)
    assert (stats["turns"], stats["cut"], stats["errors"]) == (3, 1, 1)
    assert stats["error_kinds"] == {"error event llm_unavailable": 1}
    assert stats["first_token_s"]["n"] == 2 and stats["first_token_s"]["p50"] == pytest.approx(2.0)


def test_bench_against_fake_service_and_fake_vllm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_json = tmp_path / "out" / "bench_chat.json"
    fakes = FakeBackends()
    with serve(fakes.app) as url:
        code = bench_chat.main(
            [
                *("--base-url", url, "--vllm-url", url, "--concurrency", "2,1", "--turns", "2"),
                *("--json", str(out_json), "--quiet"),
            ]
        )
    assert code == 0
    stdout = capsys.readouterr().out
    lines = stdout.strip().splitlines()
    assert SUMMARY.match(lines[-1]), lines[-1]
    assert "| shoppers | side" in stdout and "vLLM direct" in stdout

    report = json.loads(out_json.read_text())
    assert report["vllm"] == {"url": f"{url}/v1", "model": "fake-model"}
    assert report["warmup"]["turns"] == 4  # two scripts, two turns, before the levels
    one, two = report["levels"]
    assert (one["concurrency"], two["concurrency"]) == (1, 2)
    assert (one["service"]["turns"], one["service"]["errors"]) == (2, 0)
    # shopper 2's second turn ends with an error event: counted, and not replayed against vLLM
    assert (two["service"]["turns"], two["service"]["errors"]) == (4, 1)
    assert two["service"]["error_kinds"] == {"error event llm_unavailable": 1}
    assert (two["direct"]["turns"], two["direct"]["errors"]) == (3, 0)
    for level in (one, two):
        service = level["service"]
        assert service["products_s"]["n"] == service["turns"]
        assert service["products_s"]["p50"] < service["first_token_s"]["p50"] < service["duration_s"]["p50"]
        assert level["overhead"]["paired_turns"] == level["direct"]["turns"]
        assert level["overhead"]["first_token_p50_ratio"] > 0
        assert level["overhead"]["answer_word_overlap_mean"] == pytest.approx(1.0)
    assert set(report["targets"]) == {
        "products_p95_ms@1",
        "products_p95_ms@2",
        "first_token_p95_s@1",
        "overhead@1",
        "overhead@2",
    }

    # The direct requests replay the messages each turn's trace recorded, with its max_tokens and temperature 0.
    prompts = PROMPTS
    search_messages = [
        {"role": r, "content": c}
        for r, c in prompts.get("answer").messages(facts=products_facts(CATALOG), message=bench_chat.SCRIPTS[0][0])
    ] + [{"role": "assistant", "content": "The"}]
    product_messages = [
        {"role": r, "content": c}
        for r, c in prompts.get("product").messages(facts=product_details(CATALOG[1]), message=bench_chat.SCRIPTS[0][1])
    ]
    assert len(fakes.completions) == 2 + 3
    first, second = fakes.completions[:2]  # level 1: shopper 1's search, then its follow-up
    assert first["messages"] == search_messages and second["messages"] == product_messages
    assert first["continue_final_message"] is True and "continue_final_message" not in second
    for payload in fakes.completions:
        assert payload["model"] == "fake-model" and payload["stream"] is True and payload["temperature"] == 0.0
        name = "product" if "second one" in payload["messages"][-1]["content"] else "answer"
        assert payload["max_tokens"] == prompts.get(name).max_tokens
    # The trace's timings split the first token: the model's first text 40 ms, the filters' hold 15 ms.
    breakdown = one["breakdown"]
    assert breakdown["model_first_text_ms"]["p50"] == 40.0 and breakdown["filter_hold_ms"]["p50"] == 15.0
    assert breakdown["before_model_ms"]["n"] == 2 and breakdown["before_model_ms"]["p50"] > 0
    assert "first token at 1 shoppers" in stdout

    plot = out_json.with_suffix(".png")
    if importlib.util.find_spec("matplotlib") is not None:
        assert report["plot"] == str(plot) and plot.stat().st_size > 0


def test_rounds_pool_fresh_sessions_and_pair_each_round_with_its_own_replay(tmp_path: Path) -> None:
    out_json = tmp_path / "bench_chat.json"
    fakes = FakeBackends()
    with serve(fakes.app) as url:
        code = bench_chat.main(
            [
                *("--base-url", url, "--vllm-url", url, "--concurrency", "1", "--turns", "2", "--rounds", "3"),
                *("--json", str(out_json), "--quiet", "--no-warmup"),
            ]
        )
    assert code == 0
    (level,) = json.loads(out_json.read_text())["levels"]
    assert level["rounds"] == 3
    assert (level["service"]["turns"], level["direct"]["turns"]) == (6, 6)
    turns = level["service_turns"]
    assert sorted({t["round"] for t in turns}) == [1, 2, 3]
    assert len({t["session_id"] for t in turns}) == 3  # a new session each round
    assert level["overhead"]["paired_turns"] == 6  # round k's service turn with round k's replay
    assert len(fakes.completions) == 6  # every round's model-phrased turns replayed once


def test_rounds_out_of_range_are_refused() -> None:
    with pytest.raises(SystemExit):
        bench_chat.main(["--rounds", "0"])


def test_auto_reads_the_model_servers_address_once_the_service_is_ready(tmp_path: Path) -> None:
    """A service still starting has not logged its vLLM's address: 'auto' must look after readiness, not before."""
    fakes = FakeBackends()
    log = tmp_path / "vllm.log"
    calls = 0
    ready = fakes.readyz

    async def starting(request: Request) -> JSONResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
        return await ready(request)

    fakes.app.router.routes[0] = Route("/readyz", starting)
    out_json = tmp_path / "bench_chat.json"
    with serve(fakes.app) as url:
        # The address appears in the log while the service answers 503.
        threading.Timer(0.5, lambda: log.write_text(f"INFO Starting vLLM server on {url}\n")).start()
        code = bench_chat.main(
            [
                *("--base-url", url, "--vllm-url", "auto", "--data-dir", str(tmp_path)),
                *("--concurrency", "1", "--turns", "1", "--no-warmup", "--json", str(out_json), "--quiet"),
            ]
        )
    assert code == 0 and calls >= 2
    report = json.loads(out_json.read_text())
    assert report["vllm"] == {"url": f"{url}/v1", "model": "fake-model"}
    assert report["levels"][0]["direct"]["turns"] == 1
