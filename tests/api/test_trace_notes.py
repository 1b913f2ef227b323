"""What a bot turn's trace records for the console's trace view: how long routing took, and what the grounding check
repaired in the answer (apart from what it dropped)."""

from __future__ import annotations

import httpx

from tests.api.conftest import AGENT, Running, chat_events


def test_a_turns_trace_has_its_routing_time_and_the_groundings_repairs(running: Running) -> None:
    running.llm.streams = [[" Red running shoes ", "cost $1.00. ", "They come in 17 sizes."]]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    session = events[0]["data"]["session_id"]
    done = events[-1]["data"]
    turn = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=AGENT).json()["turns"][0]
    notes = {n["name"]: n for n in turn["tool_trace"] if "arguments" not in n}
    routing = notes["routing"]["data"]
    assert isinstance(routing["ms"], float) and routing["ms"] >= 0 and routing["source"] == "classifier"
    repaired = notes["answer_model"]["data"]["repaired"]
    assert len(repaired) == 1 and repaired[0].startswith("price $1.00 replaced by"), repaired
    assert repaired[0] in done["withheld"] and len(done["withheld"]) == 2, done["withheld"]  # one sentence dropped
