"""At a handoff the model writes a short summary for the agent in the background: stored beside the facts when the
grounding check backs it, dropped (with the reason) when it invents a price, order or product; the shopper's
handoff turn never waits for it, and the model being down leaves the facts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from assistant.llm.base import ChatMessage, LLMUnavailable, StreamInfo
from assistant.llm.fake import FakeLLM
from tests.api.conftest import AGENT, WIDGET, build_services, chat_events, names, serve

WAIT_S = 10.0
HANDOFF_PROMPT = "You brief a customer-service agent"


class SummaryLLM(FakeLLM):
    """The fake model; the handoff summary prompt gets `summary` (after `release` is set, when given), or fails
    when `summary_down`."""

    def __init__(self, summary: Sequence[str] = (), release: threading.Event | None = None) -> None:
        super().__init__()
        self.summary = list(summary)
        self.release = release
        self.summary_down = False
        self.summary_calls: list[list[ChatMessage]] = []

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.2,
        info: StreamInfo | None = None,
    ) -> AsyncIterator[str]:
        if not messages[0].content.startswith(HANDOFF_PROMPT):
            async for delta in super().stream_chat(messages, max_tokens=max_tokens, temperature=temperature, info=info):
                yield delta
            return
        self.summary_calls.append(list(messages))
        while self.release is not None and not await asyncio.to_thread(self.release.wait, 0.05):
            pass  # held until the test releases it (from its own thread)
        if self.summary_down:
            raise LLMUnavailable("the model is down")
        for chunk in self.summary:
            yield chunk


@contextmanager
def running_with(tmp_path: Path, llm: FakeLLM, **overrides: Any) -> Iterator[str]:
    services, _ = build_services(tmp_path, llm, **overrides)
    try:
        with serve(services) as url:
            yield url
    finally:
        asyncio.run(services.close())


def hand_off(url: str) -> tuple[str, list[dict[str, Any]]]:
    """A session that saw running shoes and mentioned an order, then asked for a person: (id, handoff events)."""
    session = chat_events(url, {"message": "running shoes"})[0]["data"]["session_id"]
    chat_events(url, {"message": "where is my order ORD-AAAAAA", "session_id": session})
    events = chat_events(url, {"message": "I want to talk to a human", "session_id": session})
    assert "handoff" in names(events) and "error" not in names(events), names(events)
    return session, events


def control_handoff(url: str, session: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET, timeout=30)
    assert r.status_code == 200, r.text
    handoff: dict[str, Any] = r.json()["control"]["handoff"]
    return handoff


def settled(url: str, session: str) -> dict[str, Any]:
    """The session's handoff once the model's summary is no longer pending."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        handoff = control_handoff(url, session)
        if handoff["model_summary_status"] != "pending":
            return handoff
        time.sleep(0.05)
    raise AssertionError(f"the model's summary is still pending: {handoff}")


def queued(url: str, session: str) -> dict[str, Any]:
    entries = httpx.get(f"{url}/v1/agent/sessions", headers=AGENT, timeout=30).json()["sessions"]
    handoff: dict[str, Any] = next(e for e in entries if e["session_id"] == session)["handoff"]
    return handoff


def test_the_models_summary_is_stored_beside_the_facts_and_the_queue_shows_both(tmp_path: Path) -> None:
    llm = SummaryLLM(["The shopper looked at running shoes ", "and asks about order ORD-AAAAAA."])
    with running_with(tmp_path, llm) as url:
        session, _ = hand_off(url)
        handoff = settled(url, session)
        assert handoff["model_summary"] == "The shopper looked at running shoes and asks about order ORD-AAAAAA."
        assert handoff["model_summary_status"] == "written" and handoff["model_summary_at"]
        facts = handoff["facts"]
        assert facts["reason"] == "I want to talk to a human"
        assert facts["asked"][-1] == "I want to talk to a human" and "running shoes" in facts["asked"]
        assert facts["orders"] == ["ORD-AAAAAA"]
        assert facts["products"] and all(p["title"] and p["price"] is not None for p in facts["products"])
        assert "I want to talk to a human" in handoff["summary"]  # the deterministic text stays
        assert queued(url, session) == handoff
        # The model was given the facts: the products with their prices, the order, the reason.
        prompt = llm.summary_calls[0][1].content
        assert facts["products"][0]["title"] in prompt and "ORD-AAAAAA" in prompt and "talk to a human" in prompt


def test_a_summary_with_an_invented_price_or_order_is_dropped_with_the_reason(tmp_path: Path) -> None:
    for summary, why in (
        (["The shopper wants running shoes for $12.34."], "12.34"),
        (["The shopper asks about order ORD-ZZZZZZ."], "ORD-ZZZZZZ"),
    ):
        with running_with(tmp_path / why, SummaryLLM(summary)) as url:
            session, _ = hand_off(url)
            handoff = settled(url, session)
            assert handoff["model_summary"] is None and handoff["model_summary_status"] == "dropped"
            assert why in handoff["model_summary_note"], handoff["model_summary_note"]
            assert handoff["facts"]["orders"] == ["ORD-AAAAAA"]
            assert queued(url, session)["model_summary"] is None


def test_the_model_down_leaves_the_facts_and_the_shopper_sees_no_error(tmp_path: Path) -> None:
    llm = SummaryLLM(["unused."])
    llm.summary_down = True
    with running_with(tmp_path, llm) as url:
        session, events = hand_off(url)
        assert names(events)[-1] == "done"
        handoff = settled(url, session)
        assert handoff["model_summary"] is None and handoff["model_summary_status"] == "failed"
        assert "down" in handoff["model_summary_note"]
        assert handoff["facts"]["reason"] == "I want to talk to a human" and handoff["facts"]["products"]


def test_the_handoff_turn_does_not_wait_for_the_summary_and_a_slow_one_times_out(tmp_path: Path) -> None:
    release = threading.Event()
    llm = SummaryLLM(["The shopper looked at running shoes."], release)
    try:
        with running_with(tmp_path / "waits", llm) as url:
            session, events = hand_off(url)  # the whole turn, to `done`, while the summary is held
            assert names(events)[-1] == "done" and llm.summary_calls
            pending = control_handoff(url, session)
            assert pending["model_summary_status"] == "pending" and pending["facts"]["products"]
            assert queued(url, session)["model_summary_status"] == "pending"
            release.set()
            assert settled(url, session)["model_summary"] == "The shopper looked at running shoes."
        never = SummaryLLM(["too late."], threading.Event())
        with running_with(tmp_path / "slow", never, handoff_summary_timeout_s=0.3) as url:
            session, _ = hand_off(url)
            handoff = settled(url, session)
            assert handoff["model_summary_status"] == "failed" and "0.3 s" in handoff["model_summary_note"]
    finally:
        release.set()
