"""Visitor tokens and identity verification (assistant/visitors.py), without HTTP."""

from __future__ import annotations

import base64
import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from assistant.errors import Forbidden, InvalidRequest, TokenRejected
from assistant.settings import DEMO_KEYS, ApiKey, AssistantSettings
from assistant.visitors import VisitorTokens, key_id_of, load_or_create_secret, sign_shopper_id

SECRET = b"s" * 32
NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ApiKey(role="publishable", allowed_origins=["https://shop.example"], identity_secret=SecretStr("i" * 20))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tokens(clock: Clock | None = None, secret: bytes = SECRET) -> VisitorTokens:
    return VisitorTokens(secret, timedelta(days=30), clock or Clock(NOW))


def test_a_token_stands_for_its_key_and_shopper_until_it_expires() -> None:
    clock = Clock(NOW)
    t = tokens(clock)
    token, visitor = t.issue("key-a", "v-123")
    assert visitor.expires_at == NOW + timedelta(days=30)
    assert t.verify(token) == visitor
    clock.now = NOW + timedelta(days=30)
    with pytest.raises(TokenRejected) as e:
        t.verify(token)
    assert e.value.reason == "expired"


def test_a_tampered_forged_or_malformed_token_is_rejected() -> None:
    t = tokens()
    token, _ = t.issue("key-a", "v-123")
    prefix, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["s"] = "1"  # another shopper, same signature
    other = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged, _ = tokens(secret=b"x" * 32).issue("key-a", "1")  # signed with another secret
    for bad in (f"{prefix}.{other}.{sig}", forged, token[:-2], "vt1.abc", "vt1.e30.", "nonsense"):
        with pytest.raises(TokenRejected):
            t.verify(bad)


def test_identify_signed_shopper_then_renewed_token_then_anonymous() -> None:
    t = tokens()
    secret = KEY.identity_secret.get_secret_value()  # type: ignore[union-attr]
    token, visitor = t.identify("key-a", KEY, None, "42", sign_shopper_id(secret, "42"))
    assert visitor.shopper_id == "42"
    # Uppercase hex is the same signature.
    assert t.identify("key-a", KEY, None, "42", sign_shopper_id(secret, "42").upper())[1].shopper_id == "42"
    renewed = t.identify("key-a", KEY, token, None, None)[1]
    assert renewed.shopper_id == "42"
    # Another key's token, an unreadable one: a new anonymous visitor, never the token's shopper.
    for stale in (t.identify("key-b", KEY, token, None, None)[1], t.identify("key-a", KEY, "vt1.x.y", None, None)[1]):
        assert stale.shopper_id.startswith("v-") and stale.shopper_id != "42"
    first, second = (t.identify("key-a", KEY, None, None, None)[1].shopper_id for _ in range(2))
    assert first != second and first.startswith("v-")


def test_identify_refuses_a_wrong_or_half_identity() -> None:
    t = tokens()
    with pytest.raises(TokenRejected):
        t.identify("key-a", KEY, None, "42", sign_shopper_id("i" * 20, "43"))
    with pytest.raises(TokenRejected):
        t.identify("key-a", KEY, None, "42", sign_shopper_id("another secret!!", "42"))
    with pytest.raises(InvalidRequest):
        t.identify("key-a", KEY, None, "42", None)
    with pytest.raises(Forbidden):
        no_secret = ApiKey(role="publishable")
        t.identify("key-a", no_secret, None, "42", sign_shopper_id("i" * 20, "42"))


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "visitor-secret"
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(load_or_create_secret(path))) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(results)) == 1 and len(results[0]) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == results[0]
    assert [p.name for p in path.parent.iterdir()] == ["visitor-secret"]  # no temporary files left


def test_key_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="publishable key stands for no shopper"):
        ApiKey(role="publishable", shopper_id="1")
    with pytest.raises(ValidationError, match="for publishable keys only"):
        ApiKey(role="widget", shopper_id="1", allowed_origins=["https://a.example"])
    with pytest.raises(ValidationError, match="no path"):
        ApiKey(role="publishable", allowed_origins=["https://a.example/shop"])
    with pytest.raises(ValidationError, match="SHOP_VISITOR_SECRET"):
        AssistantSettings(visitor_secret="short")
    assert key_id_of("pk_demo") == key_id_of("pk_demo") != key_id_of("pk_other")


def test_the_demo_widget_key_is_allowed_on_the_demo_pages_own_origin() -> None:
    assert DEMO_KEYS["pk_demo"].role == "publishable"
    keys = AssistantSettings(port=9123).keys
    assert {"http://127.0.0.1:9123", "http://localhost:9123"} <= set(keys["pk_demo"].allowed_origins)
    origins = AssistantSettings().browser_origins
    assert {"http://127.0.0.1:8080", "http://localhost:8080", "http://localhost:3000"} <= set(origins)
