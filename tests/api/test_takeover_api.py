"""Agent takeover over HTTP: the session stream, the agents' endpoints, who may do what in which state."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from assistant.llm.fake import FakeLLM
from tests.api.conftest import (
    AGENT,
    WIDGET,
    WIDGET_2,
    Running,
    build_services,
    chat,
    chat_events,
    names,
    parse_sse,
    serve,
)

WAIT_S = 10.0


class SessionStream:
    """GET /v1/sessions/{id}/stream read in a thread; `events` grows as they arrive."""

    def __init__(self, running: Running, session_id: str, headers: dict[str, str]) -> None:
        running.services.settings.heartbeat_s = 0.2  # the reader wakes up to see it should stop
        base_url = running.base_url
        self.url = f"{base_url}/v1/sessions/{session_id}/stream"
        self.headers = headers
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        with httpx.stream("GET", self.url, headers=self.headers, timeout=30) as r:
            self.status = r.status_code
            buf = ""
            for chunk in r.iter_text():
                buf += chunk.replace("\r\n", "\n")
                if self._stop.is_set():
                    return
                if "\n\n" in buf:
                    whole, buf = buf.rsplit("\n\n", 1)
                    self.events.extend(parse_sse(whole + "\n\n"))
                if self._stop.is_set():
                    return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)

    def wait_for(self, test: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = next((e for e in self.events if test(e)), None)
            if found is not None:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {what} on the session stream: {names(self.events)}")


@contextmanager
def session_stream(running: Running, session_id: str, headers: dict[str, str] = WIDGET) -> Iterator[SessionStream]:
    stream = SessionStream(running, session_id, headers)
    stream._thread.start()
    stream.wait_for(lambda e: e["event"] == "state", "state snapshot")  # subscribed: what follows is live
    try:
        yield stream
    finally:
        stream.stop()


def post(running: Running, path: str, headers: dict[str, str] = AGENT, **body: Any) -> httpx.Response:
    return httpx.post(f"{running.base_url}{path}", json=body, headers=headers, timeout=30)


def agent(running: Running, session: str, action: str, headers: dict[str, str] = AGENT, **body: Any) -> httpx.Response:
    return post(running, f"/v1/agent/sessions/{session}/{action}", headers, **body)


def new_session(running: Running, message: str = "running shoes") -> str:
    return str(chat_events(running.base_url, {"message": message})[0]["data"]["session_id"])


def test_widget_keys_and_visitor_tokens_cannot_call_agent_endpoints(running: Running) -> None:
    session = new_session(running)
    token = post(running, "/v1/visitors", {"X-Widget-Key": "pk_demo"}, visitor_token=None).json()["token"]
    visitor = {"Authorization": f"Bearer {token}"}
    for headers in (WIDGET, WIDGET_2, visitor):
        assert httpx.get(f"{running.base_url}/v1/agent/sessions", headers=headers).status_code == 403
        for action, body in (("take", {}), ("messages", {"text": "hi"}), ("hand-back", {}), ("close", {})):
            r = agent(running, session, action, headers, **body)
            assert r.status_code == 403, (action, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    assert httpx.get(f"{running.base_url}/v1/agent/sessions").status_code == 401
    assert httpx.get(f"{running.base_url}/v1/agent/sessions", headers=AGENT).status_code == 200


def test_a_handoff_queues_the_session_with_its_reason_summary_and_waiting_time(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "running shoes"})
    session = events[0]["data"]["session_id"]
    events = chat_events(running.base_url, {"message": "I want to talk to a human", "session_id": session})
    assert names(events).index("state") == names(events).index("handoff") + 1
    assert events[names(events).index("state")]["data"]["state"] == "waiting_for_agent"
    new_session(running, "hiking boots")  # a session with the bot, not waiting
    queue = httpx.get(
        f"{running.base_url}/v1/agent/sessions", params={"state": "waiting_for_agent"}, headers=AGENT
    ).json()["sessions"]
    assert [e["session_id"] for e in queue] == [session]
    entry = queue[0]
    assert entry["state"] == "waiting_for_agent" and entry["waiting_s"] >= 0
    assert entry["handoff"]["ticket_id"].startswith("HO-") and entry["handoff"]["reason"]
    assert "I want to talk to a human" in entry["handoff"]["summary"] and "running shoes" in entry["handoff"]["summary"]
    assert entry["last_message"] == "I want to talk to a human"
    everything = httpx.get(f"{running.base_url}/v1/agent/sessions", headers=AGENT).json()["sessions"]
    assert everything[0]["session_id"] == session  # waiting first
    assert {e["state"] for e in everything} == {"waiting_for_agent", "bot"}
    only_handoffs = httpx.get(f"{running.base_url}/v1/agent/sessions?has_handoff=true", headers=AGENT).json()
    assert [e["session_id"] for e in only_handoffs["sessions"]] == [session]
    found = httpx.get(f"{running.base_url}/v1/agent/sessions?q=HIKING", headers=AGENT).json()["sessions"]
    assert len(found) == 1 and found[0]["last_message"] == "hiking boots"


def test_takeover_cancels_the_bot_turn_in_flight_and_the_shopper_sees_the_agent_join(running: Running) -> None:
    session = new_session(running)
    running.llm.streams = [[f" w{chr(97 + i % 26)}" for i in range(200)]]
    running.llm.chunk_delay = 0.05
    turn: list[dict[str, Any]] = []

    def shopper_turn() -> None:
        r = chat(running.base_url, {"message": "hiking boots", "session_id": session}, WIDGET)
        turn.extend(parse_sse(r.text))

    with session_stream(running, session) as stream:
        shopper = threading.Thread(target=shopper_turn)
        shopper.start()
        stream.wait_for(lambda e: e["event"] == "token", "bot token")
        r = agent(running, session, "take", name="Anna")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "agent" and r.json()["agent_name"] == "Anna"
        shopper.join(WAIT_S)
        joined = stream.wait_for(lambda e: e["event"] == "agent_joined", "agent_joined")
        assert joined["data"] == {"name": "Anna"}
        stream.wait_for(lambda e: e["event"] == "state" and e["data"]["state"] == "agent", "state agent")
    assert running.llm.cancelled_streams == 1
    assert turn[-1]["event"] == "done" and turn[-1]["data"]["status"] == "cancelled"
    # The session stream saw the bot's turn end before the agent joined, in one order.
    seen = names(stream.events)
    assert seen.index("done") < seen.index("agent_joined")
    turns = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
    assert turns[-2]["status"] == "cancelled" and "agent" in turns[-2]["error"]
    assert turns[-1]["kind"] == "person" and turns[-1]["status"] == "in_progress"
    # Taking it again changes nothing (another agent key gets 409: tests/unit/test_takeover.py, the rule itself).
    again = agent(running, session, "take", name="Anna")
    assert again.status_code == 200 and again.json()["person_turn_id"] == turns[-1]["turn_id"]


def test_messages_go_both_ways_live_and_the_bot_never_answers_over_a_person(running: Running) -> None:
    session = new_session(running)
    assert agent(running, session, "take", name="Anna").status_code == 200
    calls_before = len(running.llm.calls)
    with session_stream(running, session) as shopper, session_stream(running, session, AGENT) as console:
        r = agent(running, session, "messages", text="Hi, I'm Anna. How can I help?")
        assert r.status_code == 201 and r.json()["event"] == "message"
        got = shopper.wait_for(lambda e: e["event"] == "message", "agent message")
        assert got["data"]["from"] == "agent" and got["data"]["name"] == "Anna"
        assert got["data"]["text"] == "Hi, I'm Anna. How can I help?" and got["id"] == r.json()["id"]
        # An internal note reaches agents only.
        assert agent(running, session, "messages", text="VIP, be nice", internal=True).status_code == 201
        console.wait_for(lambda e: e["event"] == "message" and e["data"]["internal"], "note on the console")
        # The shopper writes: delivered to the person, no bot turn.
        r = chat(running.base_url, {"message": "my order never came", "session_id": session}, WIDGET)
        assert r.status_code == 202, r.text
        assert r.json()["delivered_to"] == "agent" and r.json()["agent_name"] == "Anna"
        mine = console.wait_for(lambda e: e["event"] == "message" and e["data"]["from"] == "shopper", "shopper msg")
        assert mine["data"]["text"] == "my order never came" and mine["id"] == r.json()["event_id"]
        json_too = chat(
            running.base_url, {"message": "hello?", "session_id": session}, WIDGET, params={"stream": "false"}
        )
        assert json_too.status_code == 202
        # Typing, both ways, live only.
        assert post(running, f"/v1/sessions/{session}/typing", WIDGET).json() == {"delivered": True}
        typing = console.wait_for(lambda e: e["event"] == "typing", "shopper typing")
        assert typing["data"]["from"] == "shopper" and "id" not in typing
        assert post(running, f"/v1/sessions/{session}/typing", AGENT).json() == {"delivered": True}
        assert shopper.wait_for(lambda e: e["event"] == "typing" and e["data"]["from"] == "agent", "agent typing")
    assert not any(e["event"] == "message" and e["data"]["internal"] for e in shopper.events)
    assert len(running.llm.calls) == calls_before  # the model was never asked
    view = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()
    assert view["control"]["state"] == "agent" and view["control"]["agent_name"] == "Anna"


def test_who_may_send_what_in_which_state(running: Running) -> None:
    session = new_session(running)
    # With the bot: agents cannot message, note, type or hand back; the shopper's typing goes nowhere.
    for action, body in (
        ("messages", {"text": "hi"}),
        ("messages", {"text": "n", "internal": True}),
        ("hand-back", {}),
    ):
        r = agent(running, session, action, **body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "state_conflict", (action, r.text)
        assert r.json()["error"]["details"]["state"] == "bot"
    assert post(running, f"/v1/sessions/{session}/typing", AGENT).status_code == 409
    assert post(running, f"/v1/sessions/{session}/typing", WIDGET).json() == {"delivered": False}
    # Another shopper cannot see or type into it.
    assert post(running, f"/v1/sessions/{session}/typing", WIDGET_2).status_code == 404
    assert httpx.get(f"{running.base_url}/v1/sessions/{session}/stream", headers=WIDGET_2).status_code == 404
    # Closed: agents cannot write; the shopper writing reopens it with the bot.
    assert agent(running, session, "close").json()["state"] == "closed"
    assert agent(running, session, "close").status_code == 409
    assert agent(running, session, "messages", text="hi").status_code == 409
    events = chat_events(running.base_url, {"message": "hiking boots", "session_id": session})
    assert names(events)[:2] == ["session", "state"] and events[1]["data"]["state"] == "bot"
    assert names(events)[-1] == "done" and events[-1]["data"]["status"] == "completed"


def test_hand_back_resumes_the_bot_with_the_persons_words_in_its_context(running: Running) -> None:
    session = new_session(running)
    agent(running, session, "take", name="Anna")
    agent(running, session, "messages", text="Your parcel left the depot this morning.")
    agent(running, session, "messages", text="secret internal remark", internal=True)
    chat(running.base_url, {"message": "thanks, when will it arrive?", "session_id": session}, WIDGET)
    with session_stream(running, session) as stream:
        r = agent(running, session, "hand-back")
        assert r.status_code == 200 and r.json()["state"] == "bot"
        left = stream.wait_for(lambda e: e["event"] == "agent_left", "agent_left")
        assert left["data"] == {"name": "Anna", "to": "bot"}
        stream.wait_for(lambda e: e["event"] == "state" and e["data"]["state"] == "bot", "state bot")
        running.llm.calls.clear()
        events = chat_events(running.base_url, {"message": "hello", "session_id": session})  # small talk: history
        assert names(events)[-1] == "done"
        stream.wait_for(lambda e: e["event"] == "done" and e["data"]["turn_id"] == events[0]["data"]["turn_id"], "bot")
    prompt = next(msgs for name, msgs in running.llm.calls if name == "stream_chat")
    said = [(m.role, m.content) for m in prompt]
    assert ("user", "thanks, when will it arrive?") in said
    assert any(role == "assistant" and "Your parcel left the depot" in text and "Anna" in text for role, text in said)
    assert not any("secret internal remark" in text for _, text in said)
    person = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][1]
    assert person["kind"] == "person" and person["status"] == "completed"
    assert [m["sender"] for m in person["messages"]] == ["agent", "shopper"]  # the note: agents only
    as_agent = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=AGENT).json()["turns"][1]
    assert [m["internal"] for m in as_agent["messages"]] == [False, True, False]


def test_the_session_stream_resumes_by_last_event_id_across_turns(running: Running) -> None:
    session = new_session(running)
    agent(running, session, "take", name="Anna")
    agent(running, session, "messages", text="Hello from Anna")
    agent(running, session, "messages", text="note", internal=True)
    agent(running, session, "hand-back")
    chat_events(running.base_url, {"message": "hiking boots", "session_id": session})
    first_turn = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=AGENT).json()["turns"][0]["turn_id"]
    log = chat_events(running.base_url, {"message": "hello", "session_id": session})  # the session's latest turn
    # Resume from the first turn's `session` event: the rest of it, the person's turn, the bot's later turns.
    with session_stream_from(running, session, f"{first_turn}:0") as stream:
        stream.wait_for(lambda e: e["event"] == "done" and e["data"]["turn_id"] == log[0]["data"]["turn_id"], "end")
    replayed = [e for e in stream.events if "id" in e]
    ids = [e["id"] for e in replayed]
    assert ids[0] == f"{first_turn}:1" and len(set(ids)) == len(ids)
    assert [n for n in names(replayed) if n in ("agent_joined", "message", "agent_left")] == [
        "agent_joined",
        "message",
        "agent_left",
    ]
    # The same place resumes the same way with the query form; a malformed id is 422 (the schema's pattern), an
    # unknown one 404.
    r = httpx.get(f"{running.base_url}/v1/sessions/{session}/stream", headers={**WIDGET, "Last-Event-ID": "bad"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "header.Last-Event-ID"
    unknown = f"{first_turn}:999"
    r = httpx.get(f"{running.base_url}/v1/sessions/{session}/stream", params={"after": unknown}, headers=WIDGET)
    assert r.status_code == 404


@contextmanager
def session_stream_from(running: Running, session_id: str, last_event_id: str) -> Iterator[SessionStream]:
    stream = SessionStream(running, session_id, {**WIDGET, "Last-Event-ID": last_event_id})
    stream._thread.start()
    try:
        yield stream
    finally:
        stream.stop()


def test_the_session_stream_sends_heartbeats(running: Running) -> None:
    running.services.settings.heartbeat_s = 0.1
    session = new_session(running)
    with httpx.stream("GET", f"{running.base_url}/v1/sessions/{session}/stream", headers=WIDGET, timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        buf = ""
        for chunk in r.iter_text():
            buf += chunk
            if buf.count(": ping") >= 2:
                break
    assert buf.startswith("event: state")


def test_openapi_documents_the_new_operations_with_the_one_error_shape(running: Running) -> None:
    paths = httpx.get(f"{running.base_url}/openapi.json").json()["paths"]
    operations = {
        ("/v1/agent/sessions", "get"): ("401", "403"),
        ("/v1/agent/sessions/{session_id}/take", "post"): ("403", "404", "409"),
        ("/v1/agent/sessions/{session_id}/messages", "post"): ("403", "404", "409", "422"),
        ("/v1/agent/sessions/{session_id}/hand-back", "post"): ("403", "404", "409"),
        ("/v1/agent/sessions/{session_id}/actions", "post"): ("403", "404", "409", "422"),
        ("/v1/agent/sessions/{session_id}/close", "post"): ("403", "404", "409"),
        ("/v1/sessions/{session_id}/stream", "get"): ("404", "422"),
        ("/v1/sessions/{session_id}/typing", "post"): ("404", "409"),
        ("/v1/chat", "post"): ("404", "413"),
    }
    for (path, method), statuses in operations.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse"), (
                path,
                status,
            )
    assert "202" in paths["/v1/chat"]["post"]["responses"]
    assert "text/event-stream" in paths["/v1/sessions/{session_id}/stream"]["get"]["responses"]["200"]["content"]


def test_an_agent_acts_with_the_tools_and_a_change_needs_the_agents_confirmation(running: Running) -> None:
    session = new_session(running)
    act = {"tool": "cancel_order", "arguments": {"order_id": "ORD-AAAAAA"}}
    assert agent(running, session, "actions", **act).status_code == 409  # with the bot: not the agent's to do
    agent(running, session, "take", name="Anna")
    r = agent(running, session, "actions", tool="handoff_to_human", arguments={"reason": "x"})
    assert r.status_code == 422 and "cancel_order" in r.json()["error"]["details"][0]["problem"]  # the schema's enum
    # Confirming what was never proposed is refused.
    r = agent(running, session, "actions", **act, confirm=True)
    assert r.status_code == 409 and r.json()["error"]["code"] == "state_conflict"
    with session_stream(running, session) as shopper:
        proposed = agent(running, session, "actions", **act)
        assert proposed.status_code == 201, proposed.text
        data = proposed.json()["data"]
        assert data["status"] == "needs_confirmation" and data["internal"] and "ORD-AAAAAA" in data["description"]
        assert running.orders.get("ORD-AAAAAA").status == "placed"  # type: ignore[union-attr]
        done = agent(running, session, "actions", **act, confirm=True).json()
        assert done["data"]["status"] == "done" and done["data"]["by"] == "Anna"
        assert running.orders.get("ORD-AAAAAA").status == "cancelled"  # type: ignore[union-attr]
        seen = shopper.wait_for(lambda e: e["event"] == "action", "the agent's action")
        assert seen["id"] == done["id"]  # the proposal never reached the shopper
        # Another shopper's order stays out of reach, as it does for the bot.
        r = agent(running, session, "actions", tool="order_status", arguments={"order_id": "ORD-CCCCCC"})
        assert r.json()["data"]["status"] == "refused"
    assert not any(e["event"] == "action" and e["data"]["internal"] for e in shopper.events)
    agent(running, session, "hand-back")
    person = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=AGENT).json()["turns"][-1]
    assert [(t["tool"], t["status"], t["by"]) for t in person["tool_trace"]] == [
        ("cancel_order", "needs_confirmation", "Anna"),
        ("cancel_order", "done", "Anna"),
        ("order_status", "refused", "Anna"),
    ]
    # The shopper's view of the stored person turn keeps to what their stream showed: the proposal and the refusal
    # are the agent's business (eval.reliability authz found them in GET /v1/sessions/{id} after the hand-back).
    mine = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][-1]
    assert [(t["tool"], t["status"]) for t in mine["tool_trace"]] == [("cancel_order", "done")]
    assert "ORD-CCCCCC" not in json.dumps(mine)


def test_a_session_another_agent_holds_is_theirs_until_they_let_go(tmp_path: Path) -> None:
    keys = {"k-shop": {"role": "widget", "shopper_id": "1"}, "k-anna": {"role": "agent"}, "k-ben": {"role": "agent"}}
    services, _ = build_services(tmp_path, FakeLLM(), api_keys=keys)
    shop, anna, ben = ({"Authorization": f"Bearer {k}"} for k in ("k-shop", "k-anna", "k-ben"))
    try:
        with serve(services) as url:
            base = f"{url}/v1/agent/sessions"
            session = chat_events(url, {"message": "running shoes"}, shop)[0]["data"]["session_id"]
            assert httpx.post(f"{base}/{session}/take", json={"name": "Anna"}, headers=anna).status_code == 200
            for action, body in (("take", {"name": "Ben"}), ("messages", {"text": "hi"}), ("hand-back", {})):
                r = httpx.post(f"{base}/{session}/{action}", json=body, headers=ben)
                assert r.status_code == 409, (action, r.text)
                assert r.json()["error"]["details"]["agent_name"] == "Anna"
            note = httpx.post(f"{base}/{session}/messages", json={"text": "seen", "internal": True}, headers=ben)
            assert note.status_code == 201  # any agent may leave a note
            assert httpx.post(f"{base}/{session}/hand-back", headers=anna).status_code == 200
            assert httpx.post(f"{base}/{session}/take", json={"name": "Ben"}, headers=ben).json()["agent_name"] == "Ben"
    finally:
        asyncio.run(services.close())
