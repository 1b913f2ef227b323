"""The model's parse in whole turns: it decides (on), is only recorded (shadow), or leads to a question."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.llm.fake import FakeLLM
from tests.api.conftest import WIDGET, answer, build_services, chat_events, serve


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def go(llm: FakeLLM, **settings: Any) -> str:
        services, _ = build_services(tmp_path / f"s{len(opened)}", llm, **settings)
        cm = serve(services)
        opened.append((cm, services))
        return cm.__enter__()

    yield go
    for cm, services in opened:
        cm.__exit__(None, None, None)
        asyncio.run(services.close())


def turn(url: str, message: str, session: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = chat_events(url, {"message": message, **({"session_id": session} if session else {})})
    intent = next(e["data"] for e in events if e["event"] == "intent")
    return intent, events


def after_search(url: str) -> tuple[str, list[dict[str, Any]]]:
    """A session whose first turn showed running shoes: its id and the cards."""
    _, events = turn(url, "running shoes")
    session = next(e["data"]["session_id"] for e in events if e["event"] == "session")
    return session, next(e["data"]["products"] for e in events if e["event"] == "products")


def trace(url: str, session: str, index: int) -> list[dict[str, Any]]:
    turns = httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
    return turns[index]["tool_trace"]


def parse_record(url: str, session: str, index: int) -> dict[str, Any]:
    return next(r["data"] for r in trace(url, session, index) if r.get("name") == "model_parse")


def test_a_context_leaning_reply_is_decided_by_the_models_valid_parse(start: Any) -> None:
    llm = FakeLLM(json_replies=[{"intent": "product_question", "product": 2}])
    url = start(llm)
    session, shown = after_search(url)
    intent, _ = turn(url, "that other pair", session)
    assert intent["source"] == "model"
    assert intent["intent"] == "product_question" and intent["references"] == [shown[1]["id"]]
    record = parse_record(url, session, 1)
    assert record["status"] == "accepted" and record["reason"] == "context"
    assert "product_question" in record["choices"] and "search_products" in record["choices"]


def test_in_shadow_mode_the_parse_is_recorded_but_the_classifier_decides(start: Any) -> None:
    llm = FakeLLM(json_replies=[{"intent": "product_question", "product": 2}])
    url = start(llm, model_parse="shadow")
    session, _ = after_search(url)
    intent, _ = turn(url, "that other pair", session)
    assert intent["source"] == "classifier" and intent["intent"] == "search_products"
    assert parse_record(url, session, 1)["intent"] == "product_question"


def test_an_unsure_write_whose_parse_does_not_validate_is_asked_about(start: Any) -> None:
    # "undo" reads as cancel_order at low confidence; the model points at a product the message does not name.
    llm = FakeLLM(json_replies=[{"intent": "cancel_order", "product": 1}])
    url = start(llm)
    session, _ = after_search(url)
    intent, events = turn(url, "undo everything", session)
    assert "not sure what you'd like me to do" in answer(events)
    assert not [e for e in events if e["event"] == "action"]
    assert parse_record(url, session, 1)["status"] == "rejected"
    assert intent["source"] == "classifier"


def test_without_the_model_the_classifier_decides(start: Any) -> None:
    llm = FakeLLM()  # no scripted parse: every parse fails, as when the model errs
    url = start(llm)
    session, _ = after_search(url)
    intent, _ = turn(url, "undo everything", session)
    assert intent["intent"] == "cancel_order" and intent["source"] == "classifier"
    assert parse_record(url, session, 1)["status"] == "error"


def test_model_parse_off_never_asks_the_model(start: Any) -> None:
    llm = FakeLLM(json_replies=[{"intent": "product_question", "product": 2}])
    url = start(llm, model_parse="off")
    session, _ = after_search(url)
    turn(url, "that other pair", session)
    assert not any(name == "complete_json" for name, _ in llm.calls)
