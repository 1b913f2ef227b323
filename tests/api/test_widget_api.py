"""What the widget calls besides chat: answer feedback, the cart for the add-to-cart button, photo search."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from assistant.llm.fake import FakeLLM
from retrieval.indexer import Indexer
from tests.api.conftest import AGENT, WIDGET, WIDGET_2, Running, build_services, chat, chat_events, serve
from tests.api.test_http_contract import is_error
from tests.unit.conftest import SMALL_CATALOG


def new_visitor(base_url: str) -> dict[str, str]:
    r = httpx.post(f"{base_url}/v1/visitors", json={}, headers={"X-Widget-Key": "pk_demo"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def feedback(base_url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/feedback", json=body, headers=headers, timeout=30)


def a_turn(base_url: str, headers: dict[str, str]) -> tuple[str, str]:
    first = chat_events(base_url, {"message": "running shoes"}, headers)[0]["data"]
    return first["session_id"], first["turn_id"]


# --- feedback


def test_feedback_is_stored_with_the_turn_and_a_second_rating_replaces_the_first(running: Running) -> None:
    url = running.base_url
    me = new_visitor(url)
    session, turn = a_turn(url, me)
    r = feedback(url, {"session_id": session, "turn_id": turn, "rating": "up", "comment": None}, me)
    assert r.status_code == 201 and r.json() == {"ok": True}
    again = {"session_id": session, "turn_id": turn, "rating": "down", "comment": "wrong colour"}
    assert feedback(url, again, me).status_code == 201
    listed = httpx.get(f"{url}/v1/sessions/{session}/feedback", headers=AGENT).json()
    assert listed["session_id"] == session and len(listed["feedback"]) == 1
    stored = listed["feedback"][0]
    assert (stored["turn_id"], stored["rating"], stored["comment"], stored["given_by"]) == (
        turn,
        "down",
        "wrong colour",
        "shopper",
    )
    assert stored["shopper_id"] == httpx.get(f"{url}/v1/sessions/{session}", headers=me).json()["shopper_id"]
    assert stored["at"]
    # The owner lists it too; it is in the shared records, where evaluations read it.
    assert httpx.get(f"{url}/v1/sessions/{session}/feedback", headers=me).json() == listed
    assert running.services.stores is not None
    kept = running.services.stores.feedback.get(session, turn)
    assert kept is not None and kept.rating == "down"


def test_feedback_only_on_a_turn_of_a_session_the_caller_may_read(running: Running) -> None:
    url = running.base_url
    me, other = new_visitor(url), new_visitor(url)
    session, turn = a_turn(url, me)
    body = {"session_id": session, "turn_id": turn, "rating": "up"}
    is_error(feedback(url, body, other), 404, "session_not_found")
    is_error(feedback(url, body, WIDGET), 404, "session_not_found")
    is_error(httpx.get(f"{url}/v1/sessions/{session}/feedback", headers=other), 404, "session_not_found")
    is_error(feedback(url, {**body, "turn_id": "no-such-turn"}, me), 404, "turn_not_found")
    is_error(feedback(url, {**body, "rating": "meh"}, me), 422, "invalid_request")
    is_error(feedback(url, {**body, "comment": "x" * 1001}, me), 422, "invalid_request")
    is_error(feedback(url, body, {}), 401, "unauthorized")
    assert running.services.stores is not None and running.services.stores.feedback.for_session(session) == []
    # An agent may rate it (and is recorded as the agent).
    assert feedback(url, {**body, "comment": "x" * 1000}, AGENT).status_code == 201
    assert running.services.stores.feedback.for_session(session)[0].given_by == "agent"


# --- the cart


def test_the_cart_adds_up_with_cards_and_the_catalogs_prices(running: Running) -> None:
    url = running.base_url
    me = new_visitor(url)
    empty = httpx.get(f"{url}/v1/cart", headers=me).json()
    assert empty["items"] == [] and empty["total"] == 0 and empty["count"] == 0
    r = httpx.post(f"{url}/v1/cart/items", json={"product_id": "p1", "quantity": 2}, headers=me)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{url}/v1/cart/items", json={"product_id": "p3"}, headers=me)
    cart = r.json()
    lines = [(i["product_id"], i["quantity"], i["subtotal"]) for i in cart["items"]]
    assert lines == [("p1", 2, 118.0), ("p3", 1, 149.0)]
    assert cart["total"] == 267.0 and cart["count"] == 3 and cart["currency"] == "USD"
    card = cart["items"][0]["product"]
    assert card["id"] == "p1" and card["title"] == "Red running shoes" and card["price"] == 59.0
    assert httpx.get(f"{url}/v1/cart", headers=me).json() == cart
    # The chat's cart is the same cart: what the chat adds, the button's cart shows, and the other way round.
    first = chat_events(url, {"message": "hiking backpack"}, me)
    ordinal = ["first", "second", "third", "fourth", "fifth"]
    cards = first[2]["data"]["products"]
    pick = next(i for i, c in enumerate(cards) if c["id"] == "p4")
    body = {"message": f"add the {ordinal[pick]} one to my cart", "session_id": first[0]["data"]["session_id"]}
    action = next(e for e in chat_events(url, body, me) if e["event"] == "action")["data"]
    assert [i["product_id"] for i in action["result"]["cart"]["items"]] == ["p1", "p3", "p4"]
    cart = httpx.get(f"{url}/v1/cart", headers=me).json()
    assert [i["product_id"] for i in cart["items"]] == ["p1", "p3", "p4"] and cart["total"] == 312.0
    # Another visitor's cart is their own; an agent reads a named shopper's.
    assert httpx.get(f"{url}/v1/cart", headers=new_visitor(url)).json()["items"] == []
    agent_view = httpx.get(f"{url}/v1/cart", params={"shopper_id": cart["shopper_id"]}, headers=AGENT).json()
    assert agent_view["total"] == 312.0
    is_error(httpx.get(f"{url}/v1/cart", params={"shopper_id": "2"}, headers=WIDGET), 403, "forbidden")
    is_error(httpx.get(f"{url}/v1/cart", headers=AGENT), 422, "invalid_request")


def test_adding_an_unknown_or_out_of_stock_product_is_refused(running: Running) -> None:
    url = running.base_url
    items = f"{url}/v1/cart/items"
    is_error(httpx.post(items, json={"product_id": "nope"}, headers=WIDGET), 404, "product_not_found")
    is_error(httpx.post(items, json={"product_id": "p2"}, headers=WIDGET), 409, "out_of_stock")  # stock 0
    for quantity in (0, 100):
        r = httpx.post(items, json={"product_id": "p1", "quantity": quantity}, headers=WIDGET)
        is_error(r, 422, "invalid_request")
    is_error(httpx.post(items, json={"product_id": "p1", "shopper_id": "1"}, headers=WIDGET_2), 403, "forbidden")
    assert httpx.get(f"{url}/v1/cart", headers=WIDGET).json()["items"] == []


# --- photo search


class ColourEncoder:
    """A stand-in CLIP: an image's vector is its mean colour; a text's is a fixed direction."""

    model_id = "fake-colour"
    dim = 3

    def embed_images(self, images: Sequence[str | Path], progress: Any = None) -> np.ndarray:
        rows = []
        for path in images:
            with Image.open(path) as img:
                rows.append(np.asarray(img.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0) + 1.0)
        out = np.array(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(np.array([[0.6, 0.6, 0.52915026]], dtype=np.float32), (len(texts), 1))


COLOURS = {"p1": (220, 20, 20), "p2": (20, 20, 220), "p3": (120, 70, 20), "p4": (20, 160, 40), "p5": (250, 250, 250)}


def png(colour: tuple[int, int, int], size: int = 32, noise: int = 0) -> bytes:
    """A PNG of one colour; with `noise`, speckled around it (incompressible, so as large as a real photo)."""
    pixels = np.full((size, size, 3), colour, dtype=np.int16)
    if noise:
        pixels += np.random.default_rng(0).integers(-noise, noise + 1, pixels.shape, dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def with_photos(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "images"
    root.mkdir()
    catalog = []
    for p in SMALL_CATALOG:
        if p.id in COLOURS:
            (root / f"{p.id}.png").write_bytes(png(COLOURS[p.id]))
            p = p.model_copy(update={"image": f"{p.id}.png"})
        catalog.append(p)
    services, _ = build_services(tmp_path, FakeLLM(), catalog=catalog)
    engine, encoder = services.engine, ColourEncoder()
    Indexer(engine.store, engine.encoder, tmp_path / "lexical", image_encoder=encoder, image_root=root).index(catalog)
    engine.image_encoder = encoder
    try:
        with serve(services) as url:
            yield url
    finally:
        asyncio.run(services.close())


def photo_search(
    url: str, photo: bytes, headers: dict[str, str], field: str = "image", **params: Any
) -> httpx.Response:
    files = {field: ("photo.png", photo, "image/png")}
    return httpx.post(f"{url}/v1/search/image", files=files, params=params, headers=headers, timeout=30)


def test_photo_search_finds_the_products_that_look_like_the_photo(with_photos: str) -> None:
    me = new_visitor(with_photos)
    config = httpx.get(f"{with_photos}/v1/widget/config", headers={"X-Widget-Key": "pk_demo"}).json()
    assert config["image_search"] is True
    photo = png((200, 30, 30), size=300, noise=20)
    assert len(photo) > 100_000  # far over SHOP_MAX_BODY_BYTES, as a real photo is
    r = photo_search(with_photos, photo, me, k=3)
    assert r.status_code == 200, r.text
    cards = r.json()["products"]
    assert len(cards) == 3 and cards[0]["id"] == "p1" and cards[0]["breakdown"]["image"] > 0.99
    assert photo_search(with_photos, png((30, 30, 200)), me, field="file").json()["products"][0]["id"] == "p2"
    missing = httpx.post(f"{with_photos}/v1/search/image", files={"other": ("x", b"x")}, headers=me)
    is_error(missing, 422, "invalid_request")
    is_error(photo_search(with_photos, b"not an image at all", me), 422, "invalid_image")
    is_error(photo_search(with_photos, png((1, 1, 1)), {}), 401, "unauthorized")


def test_photo_search_over_the_size_limit_is_413(tmp_path: Path) -> None:
    services, _ = build_services(tmp_path, FakeLLM(), max_image_bytes=10_000)
    try:
        with serve(services) as url:
            is_error(photo_search(url, png((9, 9, 9), size=100, noise=100), WIDGET), 413, "payload_too_large")
            assert photo_search(url, png((9, 9, 9), size=20), WIDGET).status_code == 409  # small: on to the search
    finally:
        asyncio.run(services.close())


def test_photo_search_without_clip_says_it_is_not_configured(running: Running) -> None:
    r = photo_search(running.base_url, png((200, 30, 30)), new_visitor(running.base_url))
    is_error(r, 409, "not_configured")
    assert "SHOP_CLIP_MODEL_PATH" in r.json()["error"]["message"]


def test_the_widgets_operations_document_their_errors(running: Running) -> None:
    spec = httpx.get(f"{running.base_url}/openapi.json").json()
    expected = {
        ("/v1/feedback", "post"): {"401", "404", "422"},
        ("/v1/sessions/{session_id}/feedback", "get"): {"401", "404"},
        ("/v1/cart", "get"): {"401", "403"},
        ("/v1/cart/items", "post"): {"401", "404", "409", "422"},
        ("/v1/search/image", "post"): {"401", "409", "413", "422"},
    }
    for (path, method), statuses in expected.items():
        responses = spec["paths"][path][method]["responses"]
        assert statuses <= set(responses), (path, sorted(responses))
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }
    assert "201" in spec["paths"]["/v1/feedback"]["post"]["responses"]


def test_chat_and_feedback_from_a_page_in_a_browser_origin(running: Running) -> None:
    page = {"Origin": "http://localhost:8080"}
    me = {**new_visitor(running.base_url), **page}
    r = chat(running.base_url, {"message": "running shoes"}, me)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == page["Origin"]
