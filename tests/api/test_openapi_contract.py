"""The published OpenAPI schema says what the API does (issue 18's fuzzing): every status an operation can return is
documented in the one error shape, every limit the code enforces is in the schema, and a request that breaks the
schema is a 422 (not a 400, 413 or a 200)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, get_args

import httpx

from assistant.agent_service import NOT_FOR_AGENTS
from assistant.schemas import SOME_TEXT, AgentTool
from assistant.settings import AssistantSettings
from tests.api.conftest import AGENT, WIDGET, Running, build_services, chat, chat_events, serve
from tests.api.test_http_contract import is_error
from tests.api.test_widget_api import new_visitor, photo_search

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def spec_of(running: Running) -> dict[str, Any]:
    return httpx.get(f"{running.base_url}/openapi.json").json()


def test_every_operation_documents_the_statuses_it_can_return(running: Running) -> None:
    spec = spec_of(running)
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            caller = {"401", "403", "422", "429"} | ({"503"} if path != "/v1/visitors" else set())
            body = {"400", "413"} if "requestBody" in operation else set()
            assert caller | body <= set(responses), (method, path, sorted(responses))
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, status)
    paths = spec["paths"]
    # The ones the first fuzzing found undocumented.
    assert "404" in paths["/v1/sessions/{session_id}/events"]["get"]["responses"]
    assert {"404", "413"} <= set(paths["/v1/events"]["post"]["responses"])
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def test_the_schema_states_the_limits_the_code_enforces(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, _llm(), max_message_chars=50)
    try:
        with serve(services) as url:
            spec = httpx.get(f"{url}/openapi.json").json()
            message = spec["components"]["schemas"]["ChatRequest"]["properties"]["message"]
            assert message["maxLength"] == 50 and message["minLength"] == 1 and message["pattern"] == r"\S"
            # Over it: a 422 naming the field (the widget keys on the code), not a 413.
            r = chat(url, {"message": "x" * 51}, WIDGET)
            is_error(r, 422, "message_too_long")
            is_error(chat(url, {"message": " \n\t "}, WIDGET), 422, "invalid_request")
            assert chat(url, {"message": "x" * 50}, WIDGET).status_code == 200
    finally:
        asyncio.run(services.close())


def _llm() -> Any:
    from assistant.llm.fake import FakeLLM

    return FakeLLM()


def test_last_event_id_has_a_stated_form_and_a_malformed_one_is_422(running: Running) -> None:
    spec = spec_of(running)
    events = spec["paths"]["/v1/sessions/{session_id}/events"]["get"]
    header = next(p for p in events["parameters"] if p["name"] == "Last-Event-ID")
    assert header["required"] is True and header["schema"]["pattern"].startswith("^[0-9a-f]{32}:")
    chat_header = next(p for p in spec["paths"]["/v1/chat"]["post"]["parameters"] if p["name"] == "Last-Event-ID")
    assert chat_header["schema"]["type"] == "string" and "anyOf" not in chat_header["schema"]  # never null
    session = chat_events(running.base_url, {"message": "running shoes"})[0]["data"]["session_id"]
    url = f"{running.base_url}/v1/sessions/{session}/events"
    for value in ("null", "x\u00e9", "0" * 32 + ":-1", "a" * 5000):
        r = httpx.get(url, headers={**WIDGET, "Last-Event-ID": value.encode()})
        is_error(r, 422, "invalid_request")
    missing = httpx.get(url, headers=WIDGET)  # required: was a 400 the schema did not mention
    is_error(missing, 422, "invalid_request")
    assert missing.json()["error"]["details"][0]["field"] == "header.Last-Event-ID"
    is_error(httpx.get(url, headers={**WIDGET, "Last-Event-ID": "f" * 32 + ":0"}), 404, "event_not_found")
    r = chat(running.base_url, {"message": "x"}, {**WIDGET, "Last-Event-ID": "f" * 32 + ":0"})
    is_error(r, 422, "invalid_request")  # resuming needs the session_id (the header's description says so)


def test_search_filters_reject_what_the_schema_rejects(running: Running) -> None:
    url = f"{running.base_url}/v1/search"
    params = {p["name"]: p for p in spec_of(running)["paths"]["/v1/search"]["get"]["parameters"]}
    color = next(s for s in params["color"]["schema"]["anyOf"] if s.get("type") == "array")
    assert color["items"]["minLength"] == 1 and params["shopper_id"]["schema"]["anyOf"][0]["minLength"] == 1
    for bad in ([("q", "shoes"), ("color", "")], [("q", "shoes"), ("max_price", "inf")], [("q", "x"), ("k", "nan")]):
        is_error(httpx.get(url, params=bad, headers=WIDGET), 422, "invalid_request")
    assert httpx.get(url, params=[("q", "shoes"), ("color", "red")], headers=WIDGET).status_code == 200


def test_a_search_for_only_spaces_is_422_as_the_schema_says(running: Running) -> None:
    """q="\\x0c" (a form feed) passed min_length and the engine raised: a 500 the full fuzz run found."""
    url = f"{running.base_url}/v1/search"
    q = {p["name"]: p for p in spec_of(running)["paths"]["/v1/search"]["get"]["parameters"]}["q"]["schema"]
    assert q["pattern"] == SOME_TEXT
    for blank in ("\x0c", " \t\r\n", "\x1c\x1f", "\u3000"):
        assert re.search(q["pattern"], blank) is None
        is_error(httpx.get(url, params={"q": blank}, headers=WIDGET), 422, "invalid_request")
        is_error(httpx.get(url, params={"q": blank, "shopper_id": "1"}, headers=AGENT), 422, "invalid_request")
    assert httpx.get(url, params={"q": "\x0c shoes "}, headers=WIDGET).status_code == 200


def test_an_events_batch_the_schema_allows_is_not_refused_for_its_size(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, _llm(), profiles=True)
    try:
        with serve(services) as url:
            event = {"product_id": "p3", "kind": "view", "at": "2026-01-01T00:00:00Z"}
            r = httpx.post(f"{url}/v1/events", json={"events": [event] * 500}, headers=WIDGET, timeout=60)
            assert r.status_code == 202, r.text  # 30 KB: over SHOP_MAX_BODY_BYTES, within the events limit
            is_error(
                httpx.post(f"{url}/v1/events", json={"events": [event] * 501}, headers=WIDGET), 422, "invalid_request"
            )
            unknown = {"events": [{"product_id": "nope", "kind": "view"}]}
            is_error(httpx.post(f"{url}/v1/events", json=unknown, headers=WIDGET), 404, "unknown_product")
            agents = {"events": [{"product_id": "p3", "kind": "view", "shopper_id": ""}]}
            is_error(httpx.post(f"{url}/v1/events", json=agents, headers=AGENT), 422, "invalid_request")
    finally:
        asyncio.run(services.close())


def test_agent_tools_are_an_enum_of_the_tools_agents_may_use(running: Running) -> None:
    tool = spec_of(running)["components"]["schemas"]["AgentActionIn"]["properties"]["tool"]
    assert set(tool["enum"]) == set(get_args(AgentTool))
    toolbox = running.services.agent.toolbox
    assert toolbox is not None and set(get_args(AgentTool)) == set(toolbox.names) - NOT_FOR_AGENTS
    session = chat_events(running.base_url, {"message": "hi"})[0]["data"]["session_id"]
    r = httpx.post(
        f"{running.base_url}/v1/agent/sessions/{session}/actions", json={"tool": "__import__"}, headers=AGENT
    )
    is_error(r, 422, "invalid_request")


def test_photo_search_takes_the_photo_as_a_plain_part_and_needs_one(running: Running) -> None:
    body = spec_of(running)["paths"]["/v1/search/image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["anyOf"] == [{"required": ["image"]}, {"required": ["file"]}]
    me = new_visitor(running.base_url)
    url = f"{running.base_url}/v1/search/image"
    # A part without a filename is the photo too (here: no CLIP, so on to "not configured").
    is_error(httpx.post(url, files={"image": (None, b"null")}, headers=me), 409, "not_configured")
    is_error(httpx.post(url, files={"other": ("x", b"x")}, headers=me), 422, "invalid_request")
    is_error(httpx.post(url, content=b"{}", headers={**me, "Content-Type": "application/json"}), 422, "invalid_request")
    is_error(photo_search(running.base_url, b"x", me), 409, "not_configured")


def test_visitors_needs_shopper_id_and_signature_together(running: Running) -> None:
    schema = spec_of(running)["components"]["schemas"]["VisitorRequest"]
    assert len(schema["anyOf"]) == 2
    r = httpx.post(f"{running.base_url}/v1/visitors", json={"shopper_id": "1"}, headers={"X-Widget-Key": "pk_demo"})
    is_error(r, 422, "invalid_request")


def test_settings_limits_reach_the_413_descriptions() -> None:
    from assistant.api.app import create_app

    app = create_app(AssistantSettings(max_body_bytes=4096))
    paths = app.openapi()["paths"]
    assert paths["/v1/chat"]["post"]["responses"]["413"]["description"] == "body over 4096 bytes"
    assert paths["/v1/events"]["post"]["responses"]["413"]["description"] == "body over 262144 bytes"


def test_the_schema_states_how_each_operation_authenticates(running: Running) -> None:
    spec = spec_of(running)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-Api-Key")
    assert (schemes["widgetKey"]["in"], schemes["widgetKey"]["name"]) == ("header", "X-Widget-Key")
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            names = {name for requirement in operation.get("security", []) for name in requirement}
            if not path.startswith("/v1/"):
                assert not names, (method, path)
            elif path in ("/v1/visitors", "/v1/widget/config"):
                assert names == {"widgetKey", "bearer"}, (method, path)
            else:
                assert names == {"bearer", "apiKey"}, (method, path)
    # what the schema states is what the service does: the X-Api-Key header alone authenticates
    r = httpx.get(f"{running.base_url}/v1/cart", headers={"X-Api-Key": WIDGET["Authorization"].removeprefix("Bearer ")})
    assert r.status_code == 200, r.text
