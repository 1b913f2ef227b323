"""POST /v1/chat over a real server: event sequence, grounding, references, actions, resume, cancellation."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.errors import StorageFull
from assistant.grounding import amounts_in
from assistant.llm.fake import FakeLLM
from tests.api.conftest import (
    AGENT,
    WIDGET,
    Running,
    answer,
    build_services,
    chat,
    chat_events,
    names,
    parse_sse,
    serve,
)
from tests.unit.conftest import SMALL_CATALOG


def test_a_search_turn_streams_the_typed_event_sequence(running: Running) -> None:
    running.llm.streams = [[" running shoes ", "are here ", "for you."]]  # after the reply's start, "The"
    events = chat_events(running.base_url, {"message": "red running shoes"})
    seq = names(events)
    assert seq[:3] == ["session", "intent", "products"]
    assert seq[3:-2] == ["token"] * (len(seq) - 5)
    assert seq[-2:] == ["citation", "done"]
    turn = events[0]["data"]["turn_id"]
    assert [e["id"] for e in events] == [f"{turn}:{i}" for i in range(len(events))]
    cards = events[2]["data"]["products"]
    assert cards and cards[0]["title"] == "Red running shoes" and cards[0]["breakdown"]["final"] is not None
    assert events[-2]["data"]["ids"] == [f"product:{c['id']}" for c in cards]
    assert answer(events) == "The running shoes are here for you."
    assert events[-1]["data"]["status"] == "completed"


def test_the_reply_start_goes_out_with_the_models_first_words_never_alone(running: Running) -> None:
    running.llm.streams = [["", " Red", " running shoes ", "are light."], [" ", "\n"]]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    sent = running.llm.calls[-1][1]
    assert (sent[-1].role, sent[-1].content) == ("assistant", "The")  # continued by the model
    tokens = [e["data"]["text"] for e in events if e["event"] == "token"]
    assert tokens[0].startswith("The ") and answer(events) == "The Red running shoes are light."
    session = events[0]["data"]["session_id"]
    trace = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][0]["tool_trace"]
    call = next(c for c in trace if c["name"] == "answer_model")["data"]
    assert call["reply_start"] == "The" and call["messages"][-1] == {"role": "assistant", "content": "The"}
    # The model says nothing but spaces: the start never goes out; the catalog facts are said plainly instead.
    events = chat_events(running.base_url, {"message": "red running shoes", "session_id": session})
    assert answer(events).startswith("I found the Red running shoes"), answer(events)


def test_no_price_in_the_answer_that_is_not_on_a_card(running: Running) -> None:
    running.llm.streams = [[" Red running shoes ", "cost $19.99 and the ", "Blue running shoes are $5."]]
    events = chat_events(running.base_url, {"message": "running shoes"})
    cards = next(e for e in events if e["event"] == "products")["data"]["products"]
    card_prices = {round(c["price"], 2) for c in cards}
    text = answer(events)
    prices = amounts_in(text)
    assert prices and all(round(p, 2) in card_prices for p in prices)
    assert "$19.99" not in text and "$5" not in re.sub(r"\$5\d", "", text)
    assert events[-1]["data"]["withheld"]


def test_a_model_text_cut_or_refused_after_its_first_words_falls_back_to_the_facts(running: Running) -> None:
    running.llm.streams = [
        [" Leather hiking boots ", "are great."],  # a product this turn did not show: cut, nothing left
        [" mid-range pick! ", "I'm sorry, ", "I can't help."],  # goes out at once; then a refusal
    ]
    for message in ("red running shoes", "red running shoes again"):
        events = chat_events(running.base_url, {"message": message})
        shown = next(e for e in events if e["event"] == "products")["data"]["products"][0]["title"]
        text = answer(events)
        assert shown in text and "Leather hiking boots" not in text and "sorry" not in text, text
        assert events[-1]["data"]["status"] == "completed" and events[-1]["data"]["withheld"]
    assert text.startswith("The mid-range pick!") and "\nI found the Red running shoes" in text
    assert any("rejected" in w for w in events[-1]["data"]["withheld"])


def test_a_direct_question_is_answered_from_the_record_first(running: Running) -> None:
    """Price and stock of "the second one" come from its record, before the model says anything; the model adds
    one sentence only if it passes the checks and says something new."""
    running.llm.streams = [
        [" shoes ", "are here."],
        ["It is ", "light and ", "comfortable. ", "It also ", "flies."],  # one new sentence: kept, the rest not
    ]
    first = chat_events(running.base_url, {"message": "red running shoes"})
    session = first[0]["data"]["session_id"]
    second = next(e for e in first if e["event"] == "products")["data"]["products"][1]
    running.llm.streams.append([f"The {second['title']} ", f"costs ${second['price']:.2f}."])  # only repeats: dropped
    events = chat_events(
        running.base_url, {"message": "how much is the second one and is it in stock?", "session_id": session}
    )
    price = f"${second['price']:.2f}"
    stock = "it's out of stock" if not second["in_stock"] else f"{second['stock']} are in stock"
    lead = f"The {second['title']} costs {price}, and {stock}."
    assert answer(events) == f"{lead} It is light and comfortable."
    tokens = [e for e in events if e["event"] == "token"]
    assert "".join(t["data"]["text"] for t in tokens).startswith("The ")  # the lead streams as words
    events = chat_events(running.base_url, {"message": "what does the second one cost?", "session_id": session})
    assert answer(events) == f"The {second['title']} costs {price}."
    assert any("repeats the facts" in w for w in events[-1]["data"]["withheld"])


def test_nothing_relevant_says_the_store_does_not_carry_it(running: Running) -> None:
    running.services.chat.planner.deps.min_relevance = 0.99
    events = chat_events(running.base_url, {"message": "a jet ski"})
    products = next(e for e in events if e["event"] == "products")["data"]["products"]
    assert products == []
    assert "don't carry" in answer(events)
    assert running.llm.calls == []  # no model text for an empty result


def test_references_resolve_against_products_shown_earlier(running: Running) -> None:
    first = chat_events(running.base_url, {"message": "running shoes"})
    session = first[0]["data"]["session_id"]
    shown = [c["id"] for c in first[2]["data"]["products"]]
    second = chat_events(running.base_url, {"message": "tell me about the second one", "session_id": session})
    intent = second[1]["data"]
    assert intent["references"] == [shown[1]]
    assert [c["id"] for c in second[2]["data"]["products"]] == [shown[1]]
    cheaper = chat_events(running.base_url, {"message": "which is the cheapest one?", "session_id": session})
    ref = cheaper[1]["data"]["references"]
    assert len(ref) == 1
    cards = {c["id"]: c["price"] for c in first[2]["data"]["products"]}
    assert cards[ref[0]] == min(cards.values())


def test_an_answer_cut_by_the_token_limit_ends_at_a_whole_sentence(running: Running) -> None:
    """The answer prompt allows 48 tokens: a scripted model that uses them all (one chunk per token) and stops
    mid-word has its unfinished sentence left out; one that stops by itself is said whole."""
    whole = [" w0 "] + [f"w{i} " for i in range(1, 33)] + ["end. "]
    running.llm.streams = [[*whole, *["more "] * 13, "p"], whole]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    session = events[0]["data"]["session_id"]
    assert answer(events).strip() == "The" + "".join(whole).rstrip()
    assert any("cut at the 48-token limit" in w and "more more" in w for w in events[-1]["data"]["withheld"])
    trace = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][0]["tool_trace"]
    assert next(c for c in trace if c["name"] == "answer_model")["data"]["finish_reason"] == "length"
    events = chat_events(running.base_url, {"message": "red running shoes", "session_id": session})
    assert answer(events).strip() == "The" + "".join(whole).rstrip() and events[-1]["data"]["withheld"] == []


def test_a_reference_to_nothing_shown_asks_instead_of_searching(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "tell me about the second one"})
    assert "products" not in [e["event"] for e in events] and running.llm.calls == []
    assert answer(events).startswith("I haven't shown you any products yet")
    first = chat_events(running.base_url, {"message": "running shoes"})
    shown = len(next(e for e in first if e["event"] == "products")["data"]["products"])
    session = first[0]["data"]["session_id"]
    ninth = chat_events(running.base_url, {"message": "tell me about the ninth one", "session_id": session})
    assert answer(ninth) == f"I showed you {shown} products. Which one do you mean?"


def test_the_json_variant_returns_the_same_content(running: Running) -> None:
    running.llm.streams = [[" hiking boots are here."]]
    r = chat(running.base_url, {"message": "hiking boots"}, WIDGET, params={"stream": "false"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "completed" and body["answer"] == "The hiking boots are here."
    assert body["intent"]["intent"] == "search_products"
    assert body["products"] and body["citations"] == [f"product:{p['id']}" for p in body["products"]]


def test_cancelling_an_order_asks_for_confirmation_then_acts_once(running: Running) -> None:
    ask = chat_events(running.base_url, {"message": "please cancel order ORD-AAAAAA"})
    action = next(e for e in ask if e["event"] == "action")["data"]
    assert action["status"] == "needs_confirmation" and action["tool"] == "cancel_order"
    assert running.orders.get("ORD-AAAAAA").status == "placed"  # type: ignore[union-attr]
    session = ask[0]["data"]["session_id"]
    done = chat_events(running.base_url, {"message": "yes", "session_id": session})
    action = next(e for e in done if e["event"] == "action")["data"]
    assert action["status"] == "done" and "cancelled" in answer(done)
    assert running.orders.get("ORD-AAAAAA").status == "cancelled"  # type: ignore[union-attr]
    again = chat_events(running.base_url, {"message": "cancel order ORD-AAAAAA", "session_id": session})
    assert "already cancelled" in answer(again)
    assert "order:ORD-AAAAAA" in next(e for e in again if e["event"] == "citation")["data"]["ids"]


def test_another_shoppers_order_is_not_found(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "cancel order ORD-CCCCCC"})
    assert not any(e["event"] == "action" and e["data"]["status"] != "refused" for e in events)
    text = answer(events)  # a sentence for the shopper, with where to find the number; not the tool's error
    assert text.startswith("There's no order ORD-CCCCCC on this account.") and text.endswith(".")
    assert "confirmation e-mail" in text
    assert running.orders.get("ORD-CCCCCC").status == "placed"  # type: ignore[union-attr]


def test_policy_questions_are_answered_with_the_policys_own_sentences_first(running: Running) -> None:
    # The model's sentence comes after the policy's and only when it adds something: here it repeats the lead.
    running.llm.streams = [["We offer standard shipping."]]
    events = chat_events(running.base_url, {"message": "what shipping options do you have?"})
    citations = next(e for e in events if e["event"] == "citation")["data"]["ids"]
    assert citations == ["policy:shipping#delivery-options-and-costs"]
    text = answer(events)
    assert text.startswith("We offer two delivery options: Standard, which costs $5.99, and Express")
    assert "We offer standard shipping" not in text
    assert "products" not in names(events) and "action" not in names(events)


def test_a_question_about_returning_is_answered_from_the_policy_not_the_order_flow(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "can I return boots I've already worn outside?"})
    intent = next(e for e in events if e["event"] == "intent")["data"]
    assert intent["intent"] == "check_refund_policy"  # the router heard a refund request
    assert "action" not in names(events) and "products" not in names(events)
    assert next(e for e in events if e["event"] == "citation")["data"]["ids"] == [
        "policy:returns#condition-of-returned-items"
    ]
    text = answer(events)
    assert "worn outside can't be returned" in text
    assert text.endswith("tell me the order number and I'll start the return.")
    # A request to return an order still goes to the order tool, with a confirmation.
    events = chat_events(running.base_url, {"message": "I want to return order ORD-BBBBBB"})
    action = next(e for e in events if e["event"] == "action")["data"]
    assert action["tool"] == "start_return" and action["status"] == "needs_confirmation"


def test_asking_for_a_human_emits_a_handoff(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "I want to talk to a human"})
    handoff = next(e for e in events if e["event"] == "handoff")["data"]
    assert handoff["ticket_id"] and handoff["ticket_id"] in answer(events)


def test_model_down_gives_an_error_event_and_503_readiness(running: Running) -> None:
    running.llm.available = False
    events = chat_events(running.base_url, {"message": "running shoes"})
    assert names(events)[-2:] == ["error", "done"]
    assert events[-2]["data"]["error"]["code"] == "llm_unavailable"
    assert events[-1]["data"]["status"] == "failed"
    assert "products" in names(events)  # the catalog part still arrived
    assert "token" not in names(events)  # not even the answer's start: it waits for the model's first words
    r = httpx.get(f"{running.base_url}/readyz")
    assert r.status_code == 503 and r.json()["checks"]["llm"] is False
    running.llm.available = True
    assert httpx.get(f"{running.base_url}/readyz").status_code == 200


def test_a_full_session_store_gives_a_clear_error_and_works_again_once_space_is_freed(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = chat_events(running.base_url, {"message": "red running shoes"})
    session = first[0]["data"]["session_id"]
    store = running.services.sessions
    full = StorageFull("the session store's disk is full: nothing new can be saved until space is freed")

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise full

    # Full before the turn begins: 503 in the one error shape, not a 200 stream that ends at once (nor a 500).
    monkeypatch.setattr(store, "begin_turn", refuse)
    monkeypatch.setattr(store, "create_session", refuse)
    for body in ({"message": "blue shoes", "session_id": session}, {"message": "blue shoes"}):
        r = chat(running.base_url, body, WIDGET)
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_full", r.text
    monkeypatch.undo()

    # Full mid-turn: the events the log refuses still end the stream, unlogged (no id): error, then done.
    append, refused = store.append_event, []

    async def fills_up(session_id: str, turn_id: str, event: str, data: dict[str, Any]) -> Any:
        if event == "token" or refused:
            refused.append(event)
            raise full
        return await append(session_id, turn_id, event, data)

    monkeypatch.setattr(store, "append_event", fills_up)
    events = chat_events(running.base_url, {"message": "red running shoes", "session_id": session})
    assert names(events)[-2:] == ["error", "done"] and "id" not in events[-1], events[-3:]
    assert events[-2]["data"]["error"]["code"] == "storage_full" and events[-1]["data"]["status"] == "failed"
    monkeypatch.undo()

    # Space freed: the session goes on; the turn stored before is intact.
    again = chat_events(running.base_url, {"message": "red running shoes", "session_id": session})
    assert again[-1]["data"]["status"] == "completed"
    turns = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
    assert [t["status"] for t in turns] == ["completed", "failed", "completed"]
    assert turns[0]["answer"] == answer(first).strip()


def test_resume_by_last_event_id_replays_the_rest_of_the_turn(running: Running) -> None:
    running.llm.streams = [[" first. ", "Two. ", "Three."]]
    events = chat_events(running.base_url, {"message": "running shoes"})
    session = events[0]["data"]["session_id"]
    cut = events[3]["id"]
    r = chat(
        running.base_url, {"message": "ignored on resume", "session_id": session}, {**WIDGET, "Last-Event-ID": cut}
    )
    assert r.status_code == 200
    assert parse_sse(r.text) == events[4:]
    r = httpx.get(
        f"{running.base_url}/v1/sessions/{session}/events", headers={**WIDGET, "Last-Event-ID": cut}, timeout=10
    )
    assert parse_sse(r.text) == events[4:]
    bad = chat(running.base_url, {"message": "x", "session_id": session}, {**WIDGET, "Last-Event-ID": "nonsense"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "header.Last-Event-ID"


def words(n: int) -> list[str]:
    """Digit-free words: grounding lets them through as they arrive (after the answer's start, "The")."""
    return [f" w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(n)]


def test_a_client_that_reconnects_within_the_grace_period_gets_the_rest_of_the_turn(running: Running) -> None:
    running.llm.streams = [words(30)]
    running.llm.chunk_delay = 0.05
    first: list[dict] = []
    with httpx.stream(
        "POST", f"{running.base_url}/v1/chat", json={"message": "shoes"}, headers=WIDGET, timeout=30
    ) as r:
        buf = ""
        for chunk in r.iter_text():
            buf += chunk.replace("\r\n", "\n")
            first = parse_sse(buf.rsplit("\n\n", 1)[0] + "\n\n") if "\n\n" in buf else []
            if any(e["event"] == "token" for e in first):
                break
    # The first connection is closed mid-turn; a reconnect with Last-Event-ID picks the turn up where it was.
    session = first[0]["data"]["session_id"]
    last = first[-1]["id"]
    resumed = chat(running.base_url, {"message": "x", "session_id": session}, {**WIDGET, "Last-Event-ID": last})
    rest = parse_sse(resumed.text)
    assert rest[0]["id"] != last and rest[-1]["event"] == "done", rest
    assert rest[-1]["data"]["status"] == "completed"
    ids = [e["id"] for e in first + rest]
    assert len(set(ids)) == len(ids)
    assert answer(first + rest) == "The" + "".join(words(30))
    assert running.llm.cancelled_streams == 0


def test_client_disconnect_cancels_the_model_stream(running: Running) -> None:
    running.services.chat.live.grace_s = 0.0
    running.llm.streams = [words(200)]
    running.llm.chunk_delay = 0.05
    with httpx.stream(
        "POST", f"{running.base_url}/v1/chat", json={"message": "shoes"}, headers=WIDGET, timeout=30
    ) as r:
        buf = ""
        for chunk in r.iter_text():
            buf += chunk.replace("\r\n", "\n")
            if "event: token" in buf:
                break
    session = parse_sse(buf.split("event: token")[0])[0]["data"]["session_id"]
    deadline = time.monotonic() + 10
    while running.llm.cancelled_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.llm.cancelled_streams == 1
    status = None
    while time.monotonic() < deadline:
        turns = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"]
        status = turns[-1]["status"]
        if status != "in_progress":
            break
        time.sleep(0.05)
    assert status == "cancelled"


def test_a_client_that_leaves_while_its_turn_is_being_stored_does_not_leave_it_in_progress(running: Running) -> None:
    """The client disconnects while the turn is being stored, before its stream begins: the turn, which nobody
    follows, is cancelled after the resume grace (when the turn was stored inside the stream, the disconnect
    cancelled the store's write and left the turn in_progress for good)."""
    chat_service = running.services.chat
    chat_service.live.grace_s = 0.2
    session = chat_events(running.base_url, {"message": "hello"})[0]["data"]["session_id"]
    running.llm.streams = [words(200)]
    running.llm.chunk_delay = 0.05
    sessions, stored = chat_service.sessions, threading.Event()
    real_begin = sessions.begin_turn

    async def begin_turn(session_id: str, message: str) -> Any:
        turn = await real_begin(session_id, message)
        stored.set()
        await asyncio.sleep(1.0)  # the client leaves meanwhile
        return turn

    sessions.begin_turn = begin_turn  # type: ignore[method-assign]
    with httpx.stream(
        "POST", f"{running.base_url}/v1/chat", json={"message": "shoes", "session_id": session}, headers=WIDGET
    ) as r:
        assert r.status_code == 200
        assert stored.wait(10)
    deadline, status = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        status = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][-1]["status"]
        if status != "in_progress":
            break
        time.sleep(0.1)
    assert status == "cancelled"


def test_turns_of_different_sessions_run_concurrently(running: Running) -> None:
    running.llm.chunk_delay = 0.01
    results: list[list[str]] = []

    def one(i: int) -> None:
        results.append(names(chat_events(running.base_url, {"message": f"shoes {i}"})))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and all(r[-1] == "done" for r in results)


def test_routing_runs_while_the_session_is_read_and_the_turn_stored(running: Running) -> None:
    """The message's routing starts before the turn is stored (begin_turn waits up to 5 s to see it start),
    runs once per turn, and a request refused before its turn starts still answers at once."""
    chat_service = running.services.chat
    router, sessions = chat_service.planner.router, chat_service.sessions
    routed = threading.Event()
    seen: list[tuple[str, bool]] = []
    real_route, real_begin = router.route, sessions.begin_turn

    def route(text: str) -> Any:
        seen.append(("route", routed.is_set()))
        routed.set()
        return real_route(text)

    async def begin_turn(session_id: str, message: str) -> Any:
        started = await asyncio.to_thread(routed.wait, 5.0)
        seen.append(("begin_turn", started))
        return await real_begin(session_id, message)

    router.route = route  # type: ignore[method-assign]
    sessions.begin_turn = begin_turn  # type: ignore[method-assign]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    assert names(events)[-1] == "done" and events[1]["data"]["intent"] == "search_products"
    assert seen == [("route", False), ("begin_turn", True)]
    refused = chat(running.base_url, {"message": "shoes", "session_id": "s_unknown0000"}, WIDGET)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "session_not_found"


def test_a_routing_failure_ends_the_turn_with_an_error_event(running: Running) -> None:
    def route(text: str) -> Any:
        raise RuntimeError("encoder crashed")

    running.services.chat.planner.router.route = route  # type: ignore[method-assign]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    assert names(events) == ["session", "error", "done"]
    assert events[1]["data"]["error"]["code"] == "internal" and events[2]["data"]["status"] == "failed"


def test_an_agent_key_acts_for_a_named_shopper(running: Running) -> None:
    events = chat_events(running.base_url, {"message": "where is my order", "shopper_id": "2"}, AGENT)
    assert events[0]["data"]["shopper_id"] == "2"
    assert "ORD-CCCCCC" in answer(events)


def test_history_fits_the_budget_and_older_turns_get_summarised(running: Running) -> None:
    running.services.chat.summarizer.summarize_after = 2
    session = None
    messages = ["running shoes", "hiking boots", "a backpack", "coffee mug", "tell me about the first one", "hello"]
    for message in messages:
        body = {"message": message, **({"session_id": session} if session else {})}
        events = chat_events(running.base_url, body)
        session = events[0]["data"]["session_id"]
    answers = [msgs for name, msgs in running.llm.calls if name == "stream_chat" and "Summarise" not in msgs[0].content]
    product, last = answers[-2], answers[-1]
    # The product prompt holds only the facts: no earlier turn rides along.
    assert [m.role for m in product] == ["system", "user", "assistant", "user"]
    assert not any("coffee mug" in m.content for m in product)
    # The small-talk prompt takes the previous turns as history (windowed), between the system prompt and this turn.
    assert any(m.role == "user" and m.content == "coffee mug" for m in last)
    assert any(m.role == "user" and m.content == "tell me about the first one" for m in last)
    assert not any(m.content == "running shoes" for m in last[1:3] if m.role == "user")
    deadline = time.monotonic() + 10
    summary = None
    while summary is None and time.monotonic() < deadline:
        summary = httpx.get(f"{running.base_url}/v1/sessions/{session}", headers=WIDGET).json()["summary"]
        time.sleep(0.1)
    assert summary
    assert any(name == "stream_chat" and "Summarise" in msgs[0].content for name, msgs in running.llm.calls)


def test_a_catalog_without_colour_fields_still_fills_the_colour_slot_and_finds_the_colour(tmp_path: Path) -> None:
    catalog = [p.model_copy(update={"color": None}) for p in SMALL_CATALOG]  # colours only in titles
    services, _ = build_services(tmp_path, FakeLLM(), catalog=catalog)
    try:
        with serve(services) as url:
            events = chat_events(url, {"message": "blue running shoes"})
            purple = chat_events(url, {"message": "purple running shoes"})
    finally:
        asyncio.run(services.close())
    assert events[1]["data"]["slots"]["color"] == "Blue"
    cards = next(e for e in events if e["event"] == "products")["data"]["products"]
    assert [c["title"] for c in cards] == ["Blue running shoes"]  # no colour field to filter on: the title decides
    # No title names the colour: the query's words decide, and the colour does not empty the results.
    assert next(e for e in purple if e["event"] == "products")["data"]["products"]


def test_model_slots_are_validated_against_the_message(tmp_path: Path) -> None:
    llm = FakeLLM(json_replies=[{"color": "red", "price_max": 60, "brand": "Nike", "category": "sneakers"}])
    services, _ = build_services(tmp_path, llm, llm_slots=True)
    try:
        with serve(services) as url:
            events = chat_events(url, {"message": "red running shoes under 60 dollars"})
            session = events[0]["data"]["session_id"]
            turn = httpx.get(f"{url}/v1/sessions/{session}", headers=WIDGET).json()["turns"][0]
    finally:
        asyncio.run(services.close())
    assert turn["slots"]["price_max"] == 60 and turn["slots"]["color"].lower() == "red"
    assert "brand" not in turn["slots"] and "category" not in turn["slots"]  # not in the message: dropped
    model = next(c for c in turn["tool_trace"] if c["name"] == "llm_slots")
    assert model["ok"] and "brand" in model["data"]["dropped"]


def test_an_out_of_scope_message_the_catalog_matches_well_is_searched(running: Running) -> None:
    planner = running.services.chat.planner
    planner.rescue_relevance = 1.01  # nothing is that relevant: the classifier's verdict stands
    events = chat_events(running.base_url, {"message": "weather for running shoes"})
    assert events[1]["data"]["intent"] == "out_of_scope" and "products" not in names(events)
    planner.rescue_relevance = 0.0
    events = chat_events(running.base_url, {"message": "weather for running shoes"})
    assert events[1]["data"]["intent"] == "search_products" and "products" in names(events)


def test_cart_add_and_remove_act_on_the_referenced_product(running: Running) -> None:
    first = chat_events(running.base_url, {"message": "running shoes"})
    session = first[0]["data"]["session_id"]
    cards = first[2]["data"]["products"]
    in_stock = next(i for i, c in enumerate(cards) if c["in_stock"])
    ordinal = ["first", "second", "third", "fourth", "fifth"][in_stock]
    added = chat_events(running.base_url, {"message": f"add the {ordinal} one to my cart", "session_id": session})
    action = next(e for e in added if e["event"] == "action")["data"]
    assert action["status"] == "done" and action["tool"] == "add_to_cart"
    cart = action["result"]["cart"]
    assert [i["product_id"] for i in cart["items"]] == [cards[in_stock]["id"]]
    assert cart["total"] == cards[in_stock]["price"]  # the catalog's price, not the model's
    removed = chat_events(running.base_url, {"message": "take it out of my cart", "session_id": session})
    action = next(e for e in removed if e["event"] == "action")["data"]
    assert action["tool"] == "remove_from_cart" and action["result"]["cart"]["items"] == []


def test_an_out_of_stock_product_is_not_added(running: Running) -> None:
    first = chat_events(running.base_url, {"message": "blue running shoes"})
    session = first[0]["data"]["session_id"]
    cards = first[2]["data"]["products"]
    out = next(i for i, c in enumerate(cards) if not c["in_stock"])
    ordinal = ["first", "second", "third", "fourth", "fifth"][out]
    events = chat_events(running.base_url, {"message": f"add the {ordinal} one to my cart", "session_id": session})
    action = next(e for e in events if e["event"] == "action")["data"]
    assert action["status"] == "refused" and "out of stock" in answer(events)
