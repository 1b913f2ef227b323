"""Visitor identity for a public widget: a publishable key (it sits in the store's page) gets signed, expiring visitor
tokens, each standing for one shopper; a store that knows its logged-in shopper signs that shopper's id with the key's
identity secret (HMAC-SHA256) and the token is issued for that shopper.

A token is `vt1.<payload>.<signature>`: the payload is base64url JSON {k: the publishable key's id, s: shopper id,
iat, exp}; the signature is HMAC-SHA256 over `vt1.<payload>` with the service's visitor secret. Nothing here knows
about HTTP: refusals are `TokenRejected` (the API answers 401) and `Forbidden`/`InvalidRequest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.errors import Forbidden, InvalidRequest, TokenRejected
from assistant.settings import ApiKey

log = logging.getLogger(__name__)

TOKEN_PREFIX = "vt1"
ANONYMOUS_PREFIX = "v-"
SECRET_FILE = "visitor-secret"
@dataclass(frozen=True)
class Visitor:
    """Who a valid token stands for: the shopper, under which publishable key, until when."""

    key_id: str
    shopper_id: str
    expires_at: datetime


def key_id_of(key: str) -> str:
    """A stable, non-secret id of a key (its digest's start): tokens name their key by it, limits count by it."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def sign_shopper_id(identity_secret: str, shopper_id: str) -> str:
    """What a store's server sends with its logged-in shopper's id: hex HMAC-SHA256 of the id."""
    return hmac.new(identity_secret.encode(), shopper_id.encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VisitorTokens:
    """Issues and verifies visitor tokens with one secret; `clock` is injectable so tests can move time."""

    def __init__(
        self, secret: bytes, ttl: timedelta, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the visitor secret needs at least 16 bytes")
        self._secret = secret
        self.ttl = ttl
        self.clock = clock

    def _sign(self, signed_part: str) -> str:
        return _b64(hmac.new(self._secret, signed_part.encode(), hashlib.sha256).digest())

    def issue(self, key_id: str, shopper_id: str) -> tuple[str, Visitor]:
        now = self.clock()
        exp = int((now + self.ttl).timestamp())
        claims = {"k": key_id, "s": shopper_id, "iat": int(now.timestamp()), "exp": exp}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signed_part = f"{TOKEN_PREFIX}.{payload}"
        visitor = Visitor(key_id, shopper_id, datetime.fromtimestamp(exp, UTC))
        return f"{signed_part}.{self._sign(signed_part)}", visitor

    def verify(self, token: str) -> Visitor:
        """The visitor a token stands for; TokenRejected when it is malformed, not signed here, or expired."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise TokenRejected("not a visitor token", "malformed")
        signed_part = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(signed_part).encode(), parts[2].encode()):
            raise TokenRejected("the visitor token's signature does not match", "bad_signature")
        try:
            claims: Any = json.loads(_unb64(parts[1]))
            key_id, shopper, exp = str(claims["k"]), str(claims["s"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TokenRejected("not a visitor token", "malformed") from None
        expires = datetime.fromtimestamp(exp, UTC)
        if expires <= self.clock():
            raise TokenRejected("the visitor token has expired; get a new one from POST /v1/visitors", "expired")
        return Visitor(key_id, shopper, expires)

    def identify(
        self,
        key_id: str,
        config: ApiKey,
        visitor_token: str | None,
        shopper_id: str | None,
        shopper_signature: str | None,
    ) -> tuple[str, Visitor]:
        """A token for a page of the publishable key `key_id`: for the shopper the store signed, else for the visitor
        a still valid token of this key names (renewed), else for a new anonymous visitor."""
        if shopper_id is not None or shopper_signature is not None:
            if not shopper_id or not shopper_signature:
                raise InvalidRequest("send shopper_id and shopper_signature together")
            if config.identity_secret is None:
                raise Forbidden("this publishable key has no identity_secret: it cannot verify shopper ids")
            expected = sign_shopper_id(config.identity_secret.get_secret_value(), shopper_id)
            if not hmac.compare_digest(expected.encode(), shopper_signature.strip().lower().encode()):
                raise TokenRejected("shopper_signature is not this key's signature of shopper_id", "bad_signature")
            return self.issue(key_id, shopper_id)
        if visitor_token:
            try:
                known = self.verify(visitor_token)
            except TokenRejected:
                known = None  # expired or unreadable: the visitor starts afresh, as a new anonymous one
            if known is not None and known.key_id == key_id:
                return self.issue(key_id, known.shopper_id)
        return self.issue(key_id, new_anonymous_id())


def new_anonymous_id() -> str:
    return ANONYMOUS_PREFIX + secrets.token_hex(12)


def load_or_create_secret(path: Path) -> bytes:
    """The secret kept in `path`, created (random, mode 0600) when there is none; two processes starting at once
    end up with the same one."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails when another process created it first: then theirs counts
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the visitor secret is too short; delete the file to make a new one")
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others; its mode is now 0600", path)
        path.chmod(0o600)
    return text.encode()
