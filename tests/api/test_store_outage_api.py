"""A store that is down (found by eval.reliability's stores part): clear answers, never a 500 or a stream cut short.

Before the turn runs, the session store being down is a 503 in the one error shape (beginning the turn used to fail
after the SSE response had started: the connection dropped with no answer). Lost mid-turn, the stream ends with an
`error` event then `done` even though the store cannot log them. A `done` that says completed is sent only once the
turn is stored (it used to be sent first: a store lost in between left a turn the client saw completed stored as
failed). The product index down is a 503 for a search and an `unavailable` error in a turn (it used to read as "no
products": the failed search was taken for an empty one)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assistant.sessions.base import SessionStoreUnavailable
from retrieval.store import VectorStoreUnavailable
from tests.api.conftest import WIDGET, Running, chat, chat_events, names, parse_sse


def away(*_args: Any, **_kwargs: Any) -> Any:
    raise SessionStoreUnavailable("test", ConnectionRefusedError("connection refused"))


async def away_async(*args: Any, **kwargs: Any) -> Any:
    away(*args, **kwargs)


def unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == "unavailable", body
    assert "session store" in body["error"]["message"]


@pytest.mark.parametrize("method", ["get_session", "create_session", "begin_turn"])
def test_a_session_store_that_is_down_before_the_turn_is_a_503(
    running: Running, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    session = chat_events(running.base_url, {"message": "red running shoes"})[0]["data"]["session_id"]
    monkeypatch.setattr(running.services.sessions, method, away_async)
    body = {"message": "hello"} if method == "create_session" else {"message": "hello", "session_id": session}
    unavailable(chat(running.base_url, body, WIDGET))
    if method == "get_session":
        unavailable(httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET, timeout=10))
    monkeypatch.undo()
    assert names(chat_events(running.base_url, {"message": "hello", "session_id": session}))[-1] == "done"


def test_a_store_lost_mid_turn_ends_the_stream_with_an_error_then_done(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.services.sessions
    logged = store.append_event

    gone: list[bool] = []

    async def append(session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> Any:
        if event == "token" or gone:  # the store goes at the first token, for good
            gone.append(True)
            away()
        return await logged(session_id, turn_id, event, data)

    monkeypatch.setattr(store, "append_event", append)
    events = chat_events(running.base_url, {"message": "red running shoes"})
    assert names(events)[:3] == ["session", "intent", "products"]
    assert names(events)[-2:] == ["error", "done"], names(events)
    error, done = events[-2:]
    assert error["data"]["error"]["code"] == "unavailable"
    assert done["data"]["status"] == "failed"
    assert "id" not in error and "id" not in done  # not logged (the store did not take them), still sent
    session = events[0]["data"]["session_id"]
    turns = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET, timeout=10).json()["turns"]
    assert [t["status"] for t in turns] == ["failed"]


def test_done_says_completed_only_once_the_turn_is_stored(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(running.services.sessions, "complete_turn", away_async)
    events = chat_events(running.base_url, {"message": "red running shoes"})
    assert "completed" not in [e["data"].get("status") for e in events if e["event"] == "done"]
    assert names(events)[-2:] == ["error", "done"]
    assert events[-2]["data"]["error"]["code"] == "unavailable"


def test_resuming_a_turn_none_of_whose_events_were_logged_is_a_404(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = chat_events(running.base_url, {"message": "red running shoes"})[0]["data"]["session_id"]
    monkeypatch.setattr(running.services.sessions, "append_event", away_async)
    events = chat_events(running.base_url, {"message": "red running shoes", "session_id": session})
    assert names(events) == ["error", "done"]
    turn = events[-1]["data"]["turn_id"]
    monkeypatch.undo()
    r = httpx.get(
        f"{running.base_url}/v1/sessions/{session}/events",
        headers={**WIDGET, "Last-Event-ID": f"{turn}:0"},
        timeout=10,
    )  # used to be a 200 whose stream broke off: the log was read after the response had started
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "event_not_found"


def test_the_product_index_down_is_a_503_for_a_search_and_an_error_in_a_turn(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = running.services.engine

    def index_away(*_args: Any, **_kwargs: Any) -> Any:
        raise VectorStoreUnavailable("the Chroma server does not answer: ConnectError")

    monkeypatch.setattr(engine, "exact_scan_max", 0)  # nearest neighbours from the vector store, not a local scan
    monkeypatch.setattr(engine.store, "query_text", index_away)
    r = httpx.get(f"{running.base_url}/v1/search", params={"q": "running shoes"}, headers=WIDGET, timeout=10)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    events = parse_sse(chat(running.base_url, {"message": "red running shoes"}, WIDGET).text)
    assert names(events)[-2:] == ["error", "done"], names(events)
    assert "products" not in names(events)  # not "we don't carry that": the search failed, it found nothing
    assert events[-2]["data"]["error"]["code"] == "unavailable"
    monkeypatch.undo()
    assert httpx.get(f"{running.base_url}/v1/search", params={"q": "shoes"}, headers=WIDGET, timeout=10).is_success
