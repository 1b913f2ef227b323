"""What the agent console adds over the agents' API: "Save as test case" (a conversation as a scenario the offline
dialogue evaluation runs and passes), canned replies, and the queue's filters (mine, thumbs down, intent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assistant.console_replies import load_replies
from assistant.llm.fake import FakeLLM
from assistant.settings import DEMO_KEYS, SHIPPED_REPLIES, ApiKey
from eval.dialogues.drivers import InProcessDriver
from eval.dialogues.export import scenario_from_session
from eval.dialogues.fake_llm import FactsLLM
from eval.dialogues.runner import Runner
from eval.dialogues.scenario import load_file
from tests.api.conftest import AGENT, WIDGET, WIDGET_2, Running, build_services, chat, chat_events, serve

OTHER_AGENT = {"Authorization": "Bearer demo-agent-key-2"}


@pytest.fixture
def facts(tmp_path: Path) -> Iterator[Running]:
    """The service with the evaluation's fake model, so what it said can be replayed by `eval.dialogues`."""
    llm = FactsLLM()
    services, orders = build_services(tmp_path, llm)  # type: ignore[arg-type]
    try:
        with serve(services) as url:
            yield Running(url, services, llm, orders, tmp_path)  # type: ignore[arg-type]
    finally:
        asyncio.run(services.close())


def say(running: Running, message: str, session: str | None = None, headers: dict[str, str] = WIDGET) -> str:
    body: dict[str, Any] = {"message": message, **({"session_id": session} if session else {})}
    return str(chat_events(running.base_url, body, headers)[0]["data"]["session_id"])


def queue(running: Running, headers: dict[str, str] = AGENT, **params: Any) -> list[str]:
    r = httpx.get(f"{running.base_url}/v1/agent/sessions", params=params, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return [e["session_id"] for e in r.json()["sessions"]]


def test_a_conversation_saved_as_a_test_case_loads_as_a_scenario_and_passes(facts: Running, tmp_path: Path) -> None:
    session = say(facts, "red running shoes")
    say(facts, "tell me about the second one", session)
    say(facts, "what is your return policy", session)
    r = httpx.get(f"{facts.base_url}/v1/agent/sessions/{session}/scenario", headers=AGENT, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    assert r.headers["content-disposition"] == f'attachment; filename="console-{session.lower()[:40]}.yaml"'
    path = tmp_path / "saved.yaml"
    path.write_text(r.text, encoding="utf-8")
    (scenario,) = load_file(path)  # exactly what the evaluation loads
    assert [t.say for t in scenario.turns] == [
        "red running shoes",
        "tell me about the second one",
        "what is your return policy",
    ]
    first, second, third = (t.expect for t in scenario.turns)
    assert first.intent == ["search_products"] and first.products and first.products.min >= 2
    assert first.tools and [c.name for c in first.tools.any_order or []] == ["search_products"]
    assert second.intent == ["product_question"] and second.tools and second.tools.any_order
    assert third.citations == ["policy"]
    # The same through the pure converter, from GET /v1/sessions/{id}.
    view = httpx.get(f"{facts.base_url}/v1/sessions/{session}", headers=AGENT, timeout=30).json()
    assert scenario_from_session(view) == scenario
    assert scenario_from_session(view).model_dump() == type(scenario).model_validate(scenario.model_dump()).model_dump()

    # Replayed in-process with the fake model on a fresh service: every check holds.
    replay, _ = build_services(tmp_path / "replay", FactsLLM())  # type: ignore[arg-type]

    async def run() -> Any:
        async def build(catalog: str, extra: list[Any]) -> Any:
            return replay

        return await Runner(InProcessDriver(build, [scenario])).run(scenario)

    (tmp_path / "replay").mkdir(exist_ok=True)
    try:
        result = asyncio.run(run())
    finally:
        asyncio.run(replay.close())
    assert result.passed, [str(f) for f in result.failures]


def test_saving_a_test_case_is_for_agents_and_leaves_out_what_was_said_to_a_person(running: Running) -> None:
    session = say(running, "red running shoes")
    url = f"{running.base_url}/v1/agent/sessions/{session}/scenario"
    assert httpx.get(url, headers=WIDGET, timeout=30).status_code == 403
    assert httpx.get(f"{running.base_url}/v1/agent/sessions/nope/scenario", headers=AGENT).status_code == 404
    actions = url[: -len("/scenario")]
    assert httpx.post(f"{actions}/take", json={"name": "Anna"}, headers=AGENT).status_code == 200
    assert chat(running.base_url, {"message": "are you there?", "session_id": session}, WIDGET).status_code == 202
    assert httpx.post(f"{actions}/hand-back", json={}, headers=AGENT).status_code == 200
    data = yaml.safe_load(httpx.get(url, headers=AGENT, timeout=30).text)
    (saved,) = data["scenarios"]
    assert [t["say"] for t in saved["turns"]] == ["red running shoes"]
    assert "1 message(s) the shopper wrote to a person" in saved["description"]


def test_canned_replies_come_from_the_replies_file(running: Running, tmp_path: Path) -> None:
    r = httpx.get(f"{running.base_url}/v1/agent/replies", headers=AGENT)
    assert r.status_code == 200
    assert r.json() == load_replies(SHIPPED_REPLIES).model_dump()
    assert {"title", "text"} == set(r.json()["replies"][0])
    assert httpx.get(f"{running.base_url}/v1/agent/replies", headers=WIDGET).status_code == 403
    own = tmp_path / "replies.yaml"
    own.write_text("- title: Hello\n  text: Hello from our team.\n", encoding="utf-8")
    running.services.settings.console_replies_path = own
    assert httpx.get(f"{running.base_url}/v1/agent/replies", headers=AGENT).json() == {
        "replies": [{"title": "Hello", "text": "Hello from our team."}]
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("- title: no text\n", encoding="utf-8")
    running.services.settings.console_replies_path = bad
    r = httpx.get(f"{running.base_url}/v1/agent/replies", headers=AGENT)
    assert r.status_code == 503 and "bad.yaml" in r.json()["error"]["message"]


@pytest.fixture
def two_agents(tmp_path: Path) -> Iterator[Running]:
    keys = {**DEMO_KEYS, "demo-agent-key-2": ApiKey(role="agent")}
    llm = FakeLLM()
    services, orders = build_services(tmp_path, llm, api_keys=keys)
    try:
        with serve(services) as url:
            yield Running(url, services, llm, orders, tmp_path)
    finally:
        asyncio.run(services.close())


def test_the_queue_filters_by_owner_thumbs_down_and_latest_intent(two_agents: Running) -> None:
    running = two_agents
    shoes = say(running, "red running shoes")
    returns = say(running, "what is your return policy", headers=WIDGET_2)
    third = say(running, "hiking boots")
    base = running.base_url
    assert httpx.post(f"{base}/v1/agent/sessions/{shoes}/take", json={"name": "Anna"}, headers=AGENT).is_success
    assert httpx.post(f"{base}/v1/agent/sessions/{third}/take", json={"name": "Ben"}, headers=OTHER_AGENT).is_success
    assert queue(running, mine="true") == [shoes]
    assert queue(running, OTHER_AGENT, mine="true") == [third]
    turn = httpx.get(f"{base}/v1/sessions/{returns}", headers=AGENT).json()["turns"][0]["turn_id"]
    rated = httpx.post(
        f"{base}/v1/feedback", json={"session_id": returns, "turn_id": turn, "rating": "down"}, headers=WIDGET_2
    )
    assert rated.status_code == 201, rated.text
    assert queue(running, thumbs_down="true") == [returns]
    entries = httpx.get(f"{base}/v1/agent/sessions", headers=AGENT).json()["sessions"]
    intents = {e["session_id"]: e["intent"] for e in entries}
    assert intents[shoes] == "search_products" and intents[returns] != "search_products"
    assert set(queue(running, intent="search_products")) == {shoes, third}
    assert queue(running, intent=intents[returns]) == [returns]
    assert queue(running, intent="search_products", mine="true") == [shoes]
