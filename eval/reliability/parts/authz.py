"""authz: every endpoint x every credential x own / another shopper's / no session, against a real `serve`; rate
limits; CORS, /metrics and what responses give away. Quick: about 35 s on 2 busy cores (two services; the matrix's
~1,700 requests, five forged tokens); full: the same with all thirteen forged tokens.

The matrix: the endpoints are the service's own /openapi.json (plus the pages /, /console and /widget.js), so an
endpoint added without a rule here fails the part ("no rule for METHOD PATH"). Each cell's expected status is data
(EXPECTED below), compared with what the service answered; a mismatch is a broken row with an example.

Sessions are real ones made first: shopper A's ("1", via widget key A), shopper B's ("2", via a visitor token the
store signed), an anonymous visitor's, B's session an agent has taken over, and B's session waiting after a
handoff. Each holds a secret phrase; any response to a caller who may not read that shopper's sessions that
contains one counts in `cross_reads`. Writes carry a per-cell marker (and each credential adds its own product to a
cart); the data is read back afterwards with the owner's credential, and a marker of a caller who may not write
there counts in `cross_reads` too (row "cross-shopper writes": a write into another's conversation is a way to read
and steer it, so it counts as breaking the same promise).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from assistant.visitors import VisitorTokens, key_id_of
from eval.reliability.client import is_error_shape
from eval.reliability.stack import (
    AGENT,
    IDENTITY_SECRET,
    PAGE_ORIGIN,
    PUBLISHABLE,
    SHOPPER_A,
    SHOPPER_B,
    WIDGET_A,
    WIDGET_B,
    Service,
    bearer,
    visitor_token,
)

if TYPE_CHECKING:
    from eval.reliability.cli import Context

PART = "authz"
EVIL_ORIGIN = "https://evil.example"
PAGES = ("GET /", "GET /console", "GET /widget.js")  # not in the OpenAPI schema, still served to anyone
# A 1x1 PNG: enough for photo search to get past reading the upload.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAMAASsJTYQAAAAASUVORK5CYII=")

# --- the expected status of every cell
#
# Columns are credential classes:
#   none    no credential             wrong   an unknown key              pkb   the publishable key as a bearer
#   pkh     the publishable key in X-Widget-Key from its own page (no bearer)
#   forged  each forged visitor token (expired; tampered payload or signature; signed with another secret, with
#           the identity secret, or not at all; JWT alg=none; a prefix swap; a token naming another publishable key,
#           a widget key or the agent key; shopper A's token sent with another X-Widget-Key): every one must match
#   evil    shopper A's visitor token from a page its key does not allow
#   agweb   the agent key from a browser origin not among the agent origins (that page, the store's own, `null`)
#   widA    widget key of shopper A   visA  visitor token of shopper A (store-signed)   visB  of shopper B
#   anon    an anonymous visitor's token                                       agent  the agent key
# Targets: own / other (the caller's shopper's bot session, another shopper's; callers without a shopper: A's and
# B's), missing (no such session), taken (B's, owned by the agent), handoff (B's, waiting for an agent); resume-own
# / resume-other (POST /v1/chat with Last-Event-ID), cross-id (the own session with Last-Event-ID or `after` naming
# a turn of another shopper's session); new / for-other (a new session, for no one named or for another shopper);
# for the shopper-scoped endpoints own / other name the caller's shopper or another one; `-`: no target.
# Rows marked `!` change the session's state: a cell there that should succeed gets a fresh session of its target's
# kind, so the shared sessions stay as they were made.
COLUMNS = ("none", "wrong", "pkb", "pkh", "forged", "evil", "agweb", "widA", "visA", "visB", "anon", "agent")
EXPECTED_TABLE = """
POST /v1/chat                                        new      401 401 403 401 401 403 403 200 200 200 200 422
POST /v1/chat                                        for-other 401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/chat                                        own      401 401 403 401 401 403 403 200 200 200 200 200
POST /v1/chat                                        other    401 401 403 401 401 403 403 404 404 404 404 200
POST /v1/chat                                        missing  401 401 403 401 401 403 403 404 404 404 404 404
POST /v1/chat                                        taken    401 401 403 401 401 403 403 404 404 202 404 202
POST /v1/chat                                        handoff  401 401 403 401 401 403 403 404 404 200 404 200
POST /v1/chat                                        resume-own 401 401 403 401 401 403 403 200 200 200 200 200
POST /v1/chat                                        resume-other 401 401 403 401 401 403 403 404 404 404 404 200
POST /v1/chat                                        cross-id 401 401 403 401 401 403 403 404 404 404 404 404
GET /v1/sessions/{session_id}                        own      401 401 403 401 401 403 403 200 200 200 200 200
GET /v1/sessions/{session_id}                        other    401 401 403 401 401 403 403 404 404 404 404 200
GET /v1/sessions/{session_id}                        missing  401 401 403 401 401 403 403 404 404 404 404 404
GET /v1/sessions/{session_id}                        taken    401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}                        handoff  401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/stream                 own      401 401 403 401 401 403 403 200 200 200 200 200
GET /v1/sessions/{session_id}/stream                 other    401 401 403 401 401 403 403 404 404 404 404 200
GET /v1/sessions/{session_id}/stream                 missing  401 401 403 401 401 403 403 404 404 404 404 404
GET /v1/sessions/{session_id}/stream                 taken    401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/stream                 handoff  401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/stream                 cross-id 401 401 403 401 401 403 403 404 404 404 404 404
POST /v1/sessions/{session_id}/typing                own      401 401 403 401 401 403 403 200 200 200 200 409
POST /v1/sessions/{session_id}/typing                other    401 401 403 401 401 403 403 404 404 404 404 409
POST /v1/sessions/{session_id}/typing                missing  401 401 403 401 401 403 403 404 404 404 404 404
POST /v1/sessions/{session_id}/typing                taken    401 401 403 401 401 403 403 404 404 200 404 200
POST /v1/sessions/{session_id}/typing                handoff  401 401 403 401 401 403 403 404 404 200 404 409
GET /v1/sessions/{session_id}/events                 own      401 401 403 401 401 403 403 200 200 200 200 200
GET /v1/sessions/{session_id}/events                 other    401 401 403 401 401 403 403 404 404 404 404 200
GET /v1/sessions/{session_id}/events                 missing  401 401 403 401 401 403 403 404 404 404 404 404
GET /v1/sessions/{session_id}/events                 taken    401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/events                 handoff  401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/events                 cross-id 401 401 403 401 401 403 403 404 404 404 404 404
POST /v1/feedback                                    own      401 401 403 401 401 403 403 201 201 201 201 201
POST /v1/feedback                                    other    401 401 403 401 401 403 403 404 404 404 404 201
POST /v1/feedback                                    missing  401 401 403 401 401 403 403 404 404 404 404 404
POST /v1/feedback                                    taken    401 401 403 401 401 403 403 404 404 201 404 201
POST /v1/feedback                                    handoff  401 401 403 401 401 403 403 404 404 201 404 201
GET /v1/sessions/{session_id}/feedback               own      401 401 403 401 401 403 403 200 200 200 200 200
GET /v1/sessions/{session_id}/feedback               other    401 401 403 401 401 403 403 404 404 404 404 200
GET /v1/sessions/{session_id}/feedback               missing  401 401 403 401 401 403 403 404 404 404 404 404
GET /v1/sessions/{session_id}/feedback               taken    401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/sessions/{session_id}/feedback               handoff  401 401 403 401 401 403 403 404 404 200 404 200
GET /v1/agent/sessions                               -        401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/agent/replies                                -        401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/agent/sessions/{session_id}/scenario         own      401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/agent/sessions/{session_id}/scenario         other    401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/agent/sessions/{session_id}/scenario         missing  401 401 403 401 401 403 403 403 403 403 403 404
GET /v1/agent/sessions/{session_id}/scenario         taken    401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/agent/sessions/{session_id}/scenario         handoff  401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/take            !own     401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/take            !other   401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/take            !missing 401 401 403 401 401 403 403 403 403 403 403 404
POST /v1/agent/sessions/{session_id}/take            !taken   401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/take            !handoff 401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/messages        !own     401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/messages        !other   401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/messages        !missing 401 401 403 401 401 403 403 403 403 403 403 404
POST /v1/agent/sessions/{session_id}/messages        !taken   401 401 403 401 401 403 403 403 403 403 403 201
POST /v1/agent/sessions/{session_id}/messages        !handoff 401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/actions         !own     401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/actions         !other   401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/actions         !missing 401 401 403 401 401 403 403 403 403 403 403 404
POST /v1/agent/sessions/{session_id}/actions         !taken   401 401 403 401 401 403 403 403 403 403 403 201
POST /v1/agent/sessions/{session_id}/actions         !handoff 401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/hand-back       !own     401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/hand-back       !other   401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/hand-back       !missing 401 401 403 401 401 403 403 403 403 403 403 404
POST /v1/agent/sessions/{session_id}/hand-back       !taken   401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/hand-back       !handoff 401 401 403 401 401 403 403 403 403 403 403 409
POST /v1/agent/sessions/{session_id}/close           !own     401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/close           !other   401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/close           !missing 401 401 403 401 401 403 403 403 403 403 403 404
POST /v1/agent/sessions/{session_id}/close           !taken   401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/agent/sessions/{session_id}/close           !handoff 401 401 403 401 401 403 403 403 403 403 403 200
GET /v1/search                                       -        401 401 403 401 401 403 403 200 200 200 200 200
POST /v1/search/image                                -        401 401 403 401 401 403 403 409 409 409 409 409
POST /v1/events                                      own      401 401 403 401 401 403 403 202 202 202 202 202
POST /v1/events                                      other    401 401 403 401 401 403 403 403 403 403 403 202
GET /v1/cart                                         own      401 401 403 401 401 403 403 200 200 200 200 200
GET /v1/cart                                         other    401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/cart/items                                  own      401 401 403 401 401 403 403 200 200 200 200 200
POST /v1/cart/items                                  other    401 401 403 401 401 403 403 403 403 403 403 200
POST /v1/visitors                                    -        401 401 401 200 401 403 401 401 200 200 200 401
GET /v1/widget/config                                -        401 401 401 200 401 403 401 401 200 200 200 401
GET /healthz                                         -        200 200 200 200 200 200 200 200 200 200 200 200
GET /readyz                                          -        200 200 200 200 200 200 200 200 200 200 200 200
GET /metrics                                         -        200 200 200 200 200 200 200 200 200 200 200 200
GET /                                                -        200 200 200 200 200 200 200 200 200 200 200 200
GET /console                                         -        200 200 200 200 200 200 200 200 200 200 200 200
GET /widget.js                                       -        200 200 200 200 200 200 200 200 200 200 200 200
"""


@dataclass(frozen=True)
class Rule:
    endpoint: str  # "METHOD /path" as in the OpenAPI schema
    target: str
    fresh: bool  # a cell expected to succeed gets a fresh session of its target's kind
    expected: dict[str, int]


def parse_table(text: str) -> list[Rule]:
    rules = []
    for line in text.strip().splitlines():
        method, path, target, *codes = line.split()
        if len(codes) != len(COLUMNS):
            raise ValueError(f"EXPECTED: {line!r} has {len(codes)} statuses for {len(COLUMNS)} columns")
        fresh = target.startswith("!")
        rules.append(
            Rule(f"{method} {path}", target.lstrip("!"), fresh, dict(zip(COLUMNS, map(int, codes), strict=True)))
        )
    return rules


EXPECTED = parse_table(EXPECTED_TABLE)


# --- credentials


@dataclass
class Cred:
    name: str
    column: str
    headers: dict[str, str]
    shopper: str | None = None  # the shopper it acts for (None: none, or an agent)
    agent: bool = False
    secret: str | None = None  # what it presents that must never come back in a response

    def reads(self, owner: str) -> bool:
        """May this caller read (and write to) the sessions and cart of `owner`?"""
        return self.agent or (self.shopper is not None and self.shopper == owner)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: bytes, signed_part: str) -> str:
    return _b64(hmac.new(secret, signed_part.encode(), hashlib.sha256).digest())


def forged_tokens(real: str, secret: bytes) -> dict[str, str]:
    """Tokens that must prove nothing: `real` is shopper A's valid token, `secret` the service's visitor secret."""
    pk = key_id_of(PUBLISHABLE)
    now = datetime.now(UTC)
    prefix, payload, sig = real.split(".")
    claims = {"k": pk, "s": SHOPPER_B, "iat": int(now.timestamp()), "exp": int((now + timedelta(days=1)).timestamp())}
    other_payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    past = VisitorTokens(secret, timedelta(days=1), lambda: now - timedelta(days=2))
    jwt_head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "expired": past.issue(pk, SHOPPER_A)[0],
        "tampered-payload": f"{prefix}.{other_payload}.{sig}",
        "tampered-signature": f"{prefix}.{payload}.{flipped}",
        "other-secret": VisitorTokens(b"not-the-visitor-secret!", timedelta(days=1)).issue(pk, SHOPPER_A)[0],
        "identity-secret": VisitorTokens(IDENTITY_SECRET.encode(), timedelta(days=1)).issue(pk, SHOPPER_A)[0],
        "unsigned": f"{prefix}.{other_payload}.",
        "two-parts": f"{prefix}.{other_payload}",
        "alg-none-jwt": f"{jwt_head}.{other_payload}.",
        "prefix-swap": f"vt2.{payload}.{_sign(secret, f'vt2.{payload}')}",
        "other-publishable-key": VisitorTokens(secret, timedelta(days=1)).issue(key_id_of("pk_other"), SHOPPER_A)[0],
        "widget-key-id": VisitorTokens(secret, timedelta(days=1)).issue(key_id_of(WIDGET_A), SHOPPER_A)[0],
        "agent-key-id": VisitorTokens(secret, timedelta(days=1)).issue(key_id_of(AGENT), SHOPPER_A)[0],
    }


def credentials(svc: Service, quick: bool) -> tuple[list[Cred], dict[str, str]]:
    """Every credential of the matrix, and the visitor tokens by name."""
    url = svc.base_url
    tok = {"visA": visitor_token(url, SHOPPER_A), "visB": visitor_token(url, SHOPPER_B), "anon": visitor_token(url)}
    anon_id = json.loads(base64.urlsafe_b64decode(tok["anon"].split(".")[1] + "=="))["s"]
    page = {"Origin": PAGE_ORIGIN}
    wrong = "rel-wrong-" + secrets.token_hex(8)
    creds = [
        Cred("none", "none", {}),
        Cred("wrong-key", "wrong", bearer(wrong), secret=wrong),
        Cred("publishable-bearer", "pkb", bearer(PUBLISHABLE)),
        Cred("publishable-header", "pkh", {"X-Widget-Key": PUBLISHABLE, **page}),
        Cred("visitor-A-evil-origin", "evil", {**bearer(tok["visA"]), "Origin": EVIL_ORIGIN}, secret=tok["visA"]),
        Cred("agent-evil-origin", "agweb", {**bearer(AGENT), "Origin": EVIL_ORIGIN}, secret=AGENT),
        Cred("agent-store-page", "agweb", {**bearer(AGENT), "Origin": PAGE_ORIGIN}, secret=AGENT),
        Cred("agent-null-origin", "agweb", {"X-API-Key": AGENT, "Origin": "null"}, secret=AGENT),
        Cred("widget-A", "widA", bearer(WIDGET_A), SHOPPER_A, secret=WIDGET_A),
        Cred("visitor-A", "visA", {**bearer(tok["visA"]), **page}, SHOPPER_A, secret=tok["visA"]),
        Cred("visitor-B", "visB", {**bearer(tok["visB"]), **page}, SHOPPER_B, secret=tok["visB"]),
        Cred("visitor-anon", "anon", {**bearer(tok["anon"]), **page}, anon_id, secret=tok["anon"]),
        Cred("agent", "agent", bearer(AGENT), agent=True, secret=AGENT),
    ]
    forged = forged_tokens(tok["visA"], svc.env["SHOP_VISITOR_SECRET"].encode())
    forged["A-token-other-widget-key"] = tok["visA"]
    if quick:  # one of each kind of trick
        keep = ("expired", "tampered-payload", "identity-secret", "alg-none-jwt", "other-publishable-key")
        forged = {k: v for k, v in forged.items() if k in (*keep, "A-token-other-widget-key")}
    for name, token in forged.items():
        headers = {**bearer(token), **page}
        if name == "A-token-other-widget-key":
            headers["X-Widget-Key"] = WIDGET_B
        creds.insert(4, Cred(f"forged:{name}", "forged", headers, secret=token))
    return creds, tok


# --- the world the matrix runs in


@dataclass
class Made:
    """A session made for the matrix: whose, its first turn, and the phrase only its readers may see."""

    session_id: str
    owner: str
    turn_id: str
    secret: str


@dataclass
class World:
    svc: Service
    client: httpx.AsyncClient
    creds: dict[str, Cred]
    sessions: dict[str, Made] = field(default_factory=dict)  # A, B, anon, taken, handoff
    products: list[str] = field(default_factory=list)
    cart_product: dict[str, str] = field(default_factory=dict)  # cred name -> the product its cart writes add
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (phrase, owner)

    def secret(self, owner: str, what: str) -> str:
        phrase = f"zq{what}{secrets.token_hex(5)}"
        self.secrets.append((phrase, owner))
        return phrase


async def post_chat(w: World, cred: Cred, message: str, **body: Any) -> httpx.Response:
    return await w.client.post(
        "/v1/chat", params={"stream": "false"}, json={"message": message, **body}, headers=cred.headers
    )


async def make_session(w: World, who: Cred, kind: str, what: str) -> Made:
    """A session of `who`'s shopper: `bot`, `taken` (the agent owns it) or `handoff` (waiting for an agent)."""
    assert who.shopper is not None
    agent = w.creds["agent"]
    phrase = w.secret(who.shopper, what)
    text = f"I want to talk to a human agent please {phrase}" if kind == "handoff" else f"running shoes {phrase}"
    r = await post_chat(w, who, text)
    if r.status_code != 200:
        raise RuntimeError(f"making a {kind} session: POST /v1/chat {r.status_code} {r.text[:200]}")
    made = Made(r.json()["session_id"], who.shopper, r.json()["turn_id"], phrase)
    if kind == "taken":
        r = await w.client.post(
            f"/v1/agent/sessions/{made.session_id}/take", json={"name": "Rel"}, headers=agent.headers
        )
        r.raise_for_status()
        said = w.secret(who.shopper, what + "agent")
        r = await w.client.post(
            f"/v1/agent/sessions/{made.session_id}/messages", json={"text": said}, headers=agent.headers
        )
        r.raise_for_status()
        r = await post_chat(w, who, f"thanks {w.secret(who.shopper, what + 'reply')}", session_id=made.session_id)
        if r.status_code != 202:
            raise RuntimeError(f"a message to the agent: {r.status_code} {r.text[:200]}")
    if kind == "handoff":
        r = await w.client.get(f"/v1/sessions/{made.session_id}", headers=agent.headers)
        state = r.json()["control"]["state"]
        if state != "waiting_for_agent":
            raise RuntimeError(f"the handoff session is {state!r}, not waiting_for_agent")
    return made


# --- one cell


@dataclass
class Cell:
    rule: Rule
    cred: Cred
    marker: str
    session: Made | None = None
    status: int = 0
    body: str = ""
    error_shape: bool = True


def owner_of(w: World, cred: Cred, target: str) -> str:
    """Whose data a target is for this caller (shoppers: theirs or another's; others: A's or B's)."""
    own = cred.shopper if cred.shopper is not None else SHOPPER_A
    other = SHOPPER_A if own != SHOPPER_A else SHOPPER_B
    return own if target in ("own", "new", "resume-own", "cross-id") else other


def session_of(w: World, cred: Cred, target: str) -> Made | None:
    if target in ("taken", "handoff"):
        return w.sessions[target]
    if target == "missing":
        return Made("rel-missing-" + secrets.token_hex(6), "-", secrets.token_hex(16), "")
    if target in ("own", "other", "resume-own", "resume-other", "cross-id"):
        owner = owner_of(w, cred, target)
        return next(m for k, m in w.sessions.items() if k in ("A", "B", "anon") and m.owner == owner)
    return None


async def fresh_session(w: World, cred: Cred, target: str) -> Made:
    if target == "missing":
        return Made("rel-missing-" + secrets.token_hex(6), "-", secrets.token_hex(16), "")
    owner = owner_of(w, cred, target) if target in ("own", "other") else SHOPPER_B
    who = w.creds["widget-A"] if owner == SHOPPER_A else w.creds["visitor-B"]
    kind = "bot" if target in ("own", "other") else target
    return await make_session(w, who, kind, "fresh")


def request_for(w: World, cell: Cell) -> tuple[str, str, dict[str, Any]]:
    """The request a cell sends: method, path, httpx keyword arguments."""
    method, template = cell.rule.endpoint.split(" ", 1)
    cred, target, m = cell.cred, cell.rule.target, cell.marker
    s = cell.session
    path = template.replace("{session_id}", s.session_id) if s else template
    headers = dict(cred.headers)
    kw: dict[str, Any] = {"headers": headers}
    other = owner_of(w, cred, "other")
    own_for_agent = {"shopper_id": owner_of(w, cred, "own")} if cred.agent else {}
    others_turn = session_of(w, cred, "other").turn_id  # type: ignore[union-attr]
    match cell.rule.endpoint:
        case "POST /v1/chat":
            kw["params"] = {"stream": "false"}
            body: dict[str, Any] = {"message": f"running shoes {m}"}
            if target.startswith("resume-") and s is not None:
                headers["Last-Event-ID"] = f"{s.turn_id}:0"
            if target == "cross-id":
                headers["Last-Event-ID"] = f"{others_turn}:0"
            if s is not None:
                body["session_id"] = s.session_id
            elif target == "for-other":
                body["shopper_id"] = other
            kw["json"] = body
        case "GET /v1/sessions/{session_id}/stream":
            assert s is not None
            kw["params"] = {"after": f"{others_turn if target == 'cross-id' else s.turn_id}:0"}
        case "GET /v1/sessions/{session_id}/events":
            assert s is not None
            headers["Last-Event-ID"] = f"{others_turn if target == 'cross-id' else s.turn_id}:0"
        case "POST /v1/feedback":
            assert s is not None
            kw["json"] = {"session_id": s.session_id, "turn_id": s.turn_id, "rating": "down", "comment": m}
        case "POST /v1/agent/sessions/{session_id}/take":
            kw["json"] = {"name": m}
        case "POST /v1/agent/sessions/{session_id}/messages":
            kw["json"] = {"text": m}
        case "POST /v1/agent/sessions/{session_id}/actions":
            kw["json"] = {"tool": "view_cart", "arguments": {}}
        case "GET /v1/search":
            kw["params"] = {"q": "shoes", **({"shopper_id": other} if cred.agent else {})}
        case "POST /v1/search/image":
            kw["files"] = {"image": ("p.png", PNG, "image/png")}
        case "POST /v1/events":
            who = {"shopper_id": other} if target == "other" else own_for_agent
            kw["json"] = {"events": [{"product_id": w.products[0], "kind": "view", **who}]}
        case "GET /v1/cart":
            kw["params"] = {"shopper_id": other} if target == "other" else own_for_agent
        case "POST /v1/cart/items":
            who = {"shopper_id": other} if target == "other" else own_for_agent
            kw["json"] = {"product_id": w.cart_product[cred.name], **who}
        case "POST /v1/visitors":
            kw["json"] = {}
        case _:
            if method == "POST":
                kw["json"] = {}
    return method, path, kw


async def send(w: World, cell: Cell) -> None:
    method, path, kw = request_for(w, cell)
    async with w.client.stream(method, path, **kw) as resp:
        cell.status = resp.status_code
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            chunks: list[bytes] = []

            async def read() -> None:
                async for chunk in resp.aiter_raw():
                    chunks.append(chunk)

            try:  # a session stream never ends: what it sends in a moment is what it shows this caller
                await asyncio.wait_for(read(), 0.4)
            except TimeoutError:
                pass
            cell.body = b"".join(chunks).decode("utf-8", "replace")
        else:
            raw = await resp.aread()
            cell.body = raw.decode("utf-8", "replace")
            if resp.status_code >= 400:
                try:
                    cell.error_shape = is_error_shape(json.loads(raw))
                except ValueError:
                    cell.error_shape = False


# --- the matrix


def endpoints_of(spec: dict[str, Any]) -> list[str]:
    found = [
        f"{m.upper()} {p}"
        for p, ops in spec["paths"].items()
        for m in ops
        if m in ("get", "post", "put", "delete", "patch")
    ]
    return found + list(PAGES)


async def run_matrix(ctx: Context, w: World, creds: list[Cred]) -> None:
    tally = ctx.tally
    spec = (await w.client.get("/openapi.json")).json()
    ruled = {r.endpoint for r in EXPECTED}
    unruled = [f"no rule for {e}" for e in endpoints_of(spec) if e not in ruled]
    stale = [f"a rule for {e}, which the service does not have" for e in sorted(ruled - set(endpoints_of(spec)))]
    tally.check(
        PART, "every endpoint has a rule", len(endpoints_of(spec)), len(unruled) + len(stale), "", unruled + stale
    )

    cells: list[Cell] = []
    mismatches: list[str] = []
    shapes: list[str] = []
    leaks: list[str] = []
    echoes: list[str] = []
    # What no response may carry, whoever asks: the service's secrets and the keys that are not public.
    kept = [
        ("the visitor secret", w.svc.env["SHOP_VISITOR_SECRET"]),
        ("the identity secret", IDENTITY_SECRET),
        ("the agent key", AGENT),
        ("widget key A", WIDGET_A),
        ("widget key B", WIDGET_B),
    ]
    sem = asyncio.Semaphore(12)

    async def refused(cell: Cell) -> None:
        async with sem:
            await send(w, cell)

    served = set(endpoints_of(spec))
    for i, rule in enumerate(r for r in EXPECTED if r.endpoint in served):
        row: list[Cell] = []
        for cred in creds:
            cell = Cell(rule, cred, f"mk{i:03d}{cred.column}{secrets.token_hex(3)}")
            cell.session = session_of(w, cred, rule.target)
            row.append(cell)
        # Those that should get through first, one at a time (a fresh session where the row changes state); then
        # the refused ones together, so a refused write that lands anyway is the last word where writes replace.
        allowed = [c for c in row if c.rule.expected[c.cred.column] < 300]
        for cell in allowed:
            if rule.fresh and cell.session is not None:
                cell.session = await fresh_session(w, cell.cred, rule.target)
            await send(w, cell)
        await asyncio.gather(*(refused(c) for c in row if c not in allowed))
        cells += row

    for cell in cells:
        want = cell.rule.expected[cell.cred.column]
        where = f"{cell.rule.endpoint} [{cell.rule.target}] as {cell.cred.name}"
        if cell.status != want:
            mismatches.append(f"{where}: {cell.status}, expected {want}: {cell.body[:160]}")
        if cell.status >= 400 and not cell.error_shape:
            shapes.append(f"{where}: {cell.status} {cell.body[:120]}")
        for phrase, owner in w.secrets:
            if phrase in cell.body and not cell.cred.reads(owner):
                tally.add("cross_reads")
                leaks.append(f"{where}: {cell.status} shows shopper {owner}'s {phrase!r}")
        if cell.cred.secret and cell.status >= 400 and cell.cred.secret in cell.body:
            echoes.append(f"{where}: the error repeats the credential")
        echoes += [f"{where}: {cell.status} carries {name}" for name, value in kept if value in cell.body]
    n = len(cells)
    tally.check(
        PART,
        "matrix: status as expected",
        n,
        len(mismatches),
        f"{len(EXPECTED)} rules x {len(creds)} credentials",
        mismatches,
    )
    tally.check(PART, "matrix: errors in the one shape", sum(c.status >= 400 for c in cells), len(shapes), "", shapes)
    tally.check(PART, "no response shows another shopper's data", n, len(leaks), "cross_reads", leaks)
    tally.check(PART, "no response carries a secret or a presented key", n, len(echoes), "", echoes)
    await check_writes(ctx, w, cells)
    check_absent_alike(ctx, cells)
    check_detector(ctx, w, cells)
    dump = [
        {
            "endpoint": c.rule.endpoint,
            "target": c.rule.target,
            "credential": c.cred.name,
            "expected": c.rule.expected[c.cred.column],
            "status": c.status,
        }
        for c in cells
    ]
    (ctx.report_dir / "authz-matrix.json").write_text(json.dumps(dump, indent=0))


def check_absent_alike(ctx: Context, cells: list[Cell]) -> None:
    """Another shopper's session reads as absent: the refusal is the one a session that does not exist gets (same
    status, code and message but for the id), so a caller cannot tell that it exists."""

    def shape(cell: Cell) -> tuple[int, str]:
        text = cell.body.replace(cell.session.session_id, "<id>") if cell.session else cell.body
        return cell.status, text

    missing = {(c.rule.endpoint, c.cred.name): shape(c) for c in cells if c.rule.target == "missing"}
    differ = []
    tried = 0
    for c in cells:
        if c.rule.target != "other" or c.cred.agent or (c.rule.endpoint, c.cred.name) not in missing:
            continue
        tried += 1
        absent = missing[(c.rule.endpoint, c.cred.name)]
        if shape(c) != absent:
            differ.append(f"{c.rule.endpoint} as {c.cred.name}: another's {shape(c)} vs none {absent}"[:300])
    ctx.tally.check(PART, "another shopper's session reads as absent", tried, len(differ), "", differ)


def check_detector(ctx: Context, w: World, cells: list[Cell]) -> None:
    """The leak check can see: each shared session's secret is in what its owner (and the agent) read of it."""
    blind = []
    tried = 0
    for name, made in w.sessions.items():
        for c in cells:
            if c.rule.endpoint == "GET /v1/sessions/{session_id}" and c.session is made and c.status == 200:
                tried += 1
                if made.secret not in c.body:
                    blind.append(f"{name} session as {c.cred.name}: its secret phrase not in the view")
    if tried < len(w.sessions):
        blind.append(f"only {tried} reads of {len(w.sessions)} sessions by their readers")
    ctx.tally.check(PART, "leak check sees the sessions' secrets", tried, len(blind), "", blind)


async def check_writes(ctx: Context, w: World, cells: list[Cell]) -> None:
    """Read every shared session, its feedback and each shopper's cart back with the owner's credential: a write
    of a caller who may not write there is a cross-shopper write."""
    by_marker = {c.marker: c for c in cells}
    owners = {SHOPPER_A: w.creds["widget-A"], SHOPPER_B: w.creds["visitor-B"]}
    owners[w.creds["visitor-anon"].shopper or "-"] = w.creds["visitor-anon"]
    landed: list[str] = []
    tried = 0
    for name, made in w.sessions.items():
        cred = owners[made.owner]
        for path in (f"/v1/sessions/{made.session_id}", f"/v1/sessions/{made.session_id}/feedback"):
            r = await w.client.get(path, headers=cred.headers)
            tried += 1
            if r.status_code != 200:
                landed.append(f"reading back {name} session {path} as its owner: {r.status_code}")
                continue
            for marker in set(re.findall(r"mk\d{3}[A-Za-z]+[0-9a-f]{6}", r.text)):
                cell = by_marker.get(marker)
                if cell is not None and not cell.cred.reads(made.owner):
                    ctx.tally.add("cross_reads")
                    landed.append(
                        f"{cell.rule.endpoint} as {cell.cred.name} wrote into shopper {made.owner}'s {name} session"
                    )
    adders = {c.cred.name for c in cells if c.rule.endpoint == "POST /v1/cart/items"}
    product_of = {p: n for n, p in w.cart_product.items()}
    for owner, cred in owners.items():
        r = await w.client.get("/v1/cart", headers=cred.headers)
        tried += 1
        if r.status_code != 200:
            landed.append(f"reading back shopper {owner}'s cart: {r.status_code}")
            continue
        for line in r.json()["items"]:
            writer = product_of.get(line["product_id"])
            if writer in adders and not w.creds[writer].reads(owner):
                ctx.tally.add("cross_reads")
                landed.append(f"POST /v1/cart/items as {writer} added to shopper {owner}'s cart")
    ctx.tally.check(PART, "cross-shopper writes (read back by the owner)", tried, len(landed), "cross_reads", landed)


async def check_internal(ctx: Context, w: World) -> None:
    """What is for agents only (internal notes, proposed and refused actions) never reaches the shopper, also
    after the person turn is stored (hand back)."""
    agent, shopper = w.creds["agent"], w.creds["visitor-B"]
    made = await make_session(w, shopper, "bot", "internal")
    sid = made.session_id
    note = f"zqnote{secrets.token_hex(5)}"
    proposal = f"ORD-ZQ{secrets.token_hex(5).upper()}"
    steps = [
        (f"/v1/agent/sessions/{sid}/take", {"name": "Rel"}),
        (f"/v1/agent/sessions/{sid}/messages", {"text": note, "internal": True}),
        (f"/v1/agent/sessions/{sid}/actions", {"tool": "cancel_order", "arguments": {"order_id": proposal}}),
    ]
    for path, body in steps:
        r = await w.client.post(path, json=body, headers=agent.headers)
        if r.status_code >= 300:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:200]}")
    shown: list[str] = []
    tried = 0
    for phase in ("live", "handed back"):
        if phase == "handed back":
            await w.client.post(f"/v1/agent/sessions/{sid}/hand-back", json={}, headers=agent.headers)
        views = [
            Cell(Rule("GET /v1/sessions/{session_id}", "own", False, {}), shopper, "", made),
            Cell(Rule("GET /v1/sessions/{session_id}/stream", "own", False, {}), shopper, "", made),
        ]
        for cell in views:
            await send(w, cell)
            tried += 1
            for secret in (note, proposal):
                if secret in cell.body:
                    shown.append(f"{phase}: {cell.rule.endpoint} as the shopper shows {secret!r} (agents only)")
    ctx.tally.check(PART, "agents' internal notes and proposals stay with agents", tried, len(shown), "", shown)


# --- rate limits


async def burst(client: httpx.AsyncClient, n: int, method: str, path: str, **kw: Any) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.request(method, path, **kw) for _ in range(n))))


def limited_ok(resp: httpx.Response) -> str | None:
    """None when a 429 is what it should be: Retry-After (whole seconds >= 1) and the one error shape."""
    after = resp.headers.get("retry-after", "")
    if not after.isdigit() or int(after) < 1:
        return f"429 without a usable Retry-After ({after!r})"
    try:
        body = resp.json()
    except ValueError:
        return "429 not in the one error shape"
    if not is_error_shape(body) or body["error"]["code"] != "rate_limited":
        return f"429 body {resp.text[:100]}"
    return None


async def check_rate_limits(ctx: Context) -> None:
    per_minute = 20
    with ctx.service(
        "authz-limits", SHOP_RATE_LIMIT_PER_MINUTE=str(per_minute), SHOP_METRICS_TOKEN="rel-metrics"
    ) as svc:
        toks = {"v1": visitor_token(svc.base_url), "v2": visitor_token(svc.base_url)}  # 2 of pk@127.0.0.1's 20
        async with (
            ctx.client(svc.base_url) as client,
            ctx.client(svc.base_url, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as elsewhere,
        ):
            cases: list[tuple[str, dict[str, str], dict[str, str], str]] = [
                # (what, the burst's credential, another one that must not starve meanwhile, the burst's GET)
                ("widget key", bearer(WIDGET_A), bearer(WIDGET_B), "/v1/cart"),
                ("agent key", bearer(AGENT), bearer(WIDGET_B), "/v1/agent/replies"),
                ("visitor token", bearer(toks["v1"]), bearer(toks["v2"]), "/v1/cart"),
            ]
            for what, hot, cold, path in cases:
                problems: list[str] = []
                hot_task = asyncio.create_task(burst(client, per_minute + 15, "GET", path, headers=hot))
                await asyncio.sleep(0.05)
                cold_rs = await burst(client, 5, "GET", "/v1/cart", headers=cold)
                hot_rs = await hot_task
                limited = [r for r in hot_rs if r.status_code == 429]
                ok = [r for r in hot_rs if r.status_code == 200]
                if not limited:
                    problems.append(
                        f"{len(hot_rs)} at once from one {what}: no 429 ({sorted({r.status_code for r in hot_rs})})"
                    )
                if len(ok) > per_minute + 2:
                    problems.append(f"{len(ok)} of a burst got through a limit of {per_minute}/min")
                problems += [p for p in (limited_ok(r) for r in limited[:3]) if p]
                starved = [r.status_code for r in cold_rs if r.status_code != 200]
                if starved:
                    problems.append(f"another credential during the burst: {starved}")
                ctx.tally.check(PART, f"rate limit: {what}", len(hot_rs) + len(cold_rs), len(problems), "", problems)

            # The publishable key counts per key and client address: one page's burst leaves other visitors be.
            problems = []
            pk = {"X-Widget-Key": PUBLISHABLE, "Origin": PAGE_ORIGIN}
            hot_rs = await burst(client, per_minute + 5, "POST", "/v1/visitors", json={}, headers=pk)
            cold_rs = await burst(elsewhere, 3, "POST", "/v1/visitors", json={}, headers=pk)
            limited = [r for r in hot_rs if r.status_code == 429]
            if not limited:
                problems.append(f"{len(hot_rs)} token requests from one address: no 429")
            problems += [p for p in (limited_ok(r) for r in limited[:3]) if p]
            if [r.status_code for r in cold_rs] != [200] * len(cold_rs):
                problems.append(f"from another address meanwhile: {[r.status_code for r in cold_rs]}")
            # A visitor token used where the publishable key is (widget config) counts there too.
            cfg = await client.get("/v1/widget/config", headers={**bearer(toks["v2"]), "Origin": PAGE_ORIGIN})
            if cfg.status_code != 429:
                problems.append(f"widget config with a visitor token from the limited address: {cfg.status_code}")
            ctx.tally.check(
                PART,
                "rate limit: publishable key per client address",
                len(hot_rs) + len(cold_rs) + 1,
                len(problems),
                "second address 127.0.0.2",
                problems,
            )

            # /metrics with SHOP_METRICS_TOKEN: its bearer only (the token never in a reply).
            problems = []
            for label, headers, want in (
                ("no token", {}, 401),
                ("a wrong token", bearer("rel-metrics-wrong"), 401),
                ("the agent key", bearer(AGENT), 401),
                ("the token", bearer("rel-metrics"), 200),
            ):
                r = await client.get("/metrics", headers=headers)
                if r.status_code != want:
                    problems.append(f"/metrics with {label}: {r.status_code}, expected {want}")
                elif want != 200 and ("rel-metrics" in r.text or not is_error_shape(r.json())):
                    problems.append(f"/metrics with {label}: {r.text[:100]}")
            ctx.tally.check(PART, "/metrics with SHOP_METRICS_TOKEN needs its bearer", 4, len(problems), "", problems)


# --- CORS and /metrics on loopback


async def check_cors_and_metrics(ctx: Context, w: World) -> None:
    problems: list[str] = []
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    for path in ("/v1/chat", "/v1/agent/sessions", "/v1/visitors"):
        r = await w.client.options(path, headers={"Origin": EVIL_ORIGIN, **preflight})
        allowed = r.headers.get("access-control-allow-origin")
        if r.status_code < 400 or allowed:
            problems.append(
                f"preflight {path} from {EVIL_ORIGIN}: {r.status_code}, Access-Control-Allow-Origin {allowed}"
            )
        r = await w.client.options(path, headers={"Origin": PAGE_ORIGIN, **preflight})
        if r.status_code != 200 or r.headers.get("access-control-allow-origin") != PAGE_ORIGIN:
            problems.append(f"preflight {path} from the store's page: {r.status_code}")
    r = await w.client.get("/v1/cart", headers={**bearer(WIDGET_A), "Origin": EVIL_ORIGIN})
    if r.headers.get("access-control-allow-origin") not in (None, ""):
        problems.append(f"a response to {EVIL_ORIGIN} carries Access-Control-Allow-Origin")
    ctx.tally.check(PART, "CORS: preflight from a disallowed origin refused", 7, len(problems), "", problems)

    # Without SHOP_METRICS_TOKEN /metrics is for loopback clients. This suite only reaches the service over
    # loopback; a client elsewhere is played by a trusted proxy's X-Forwarded-For (uvicorn's proxy headers).
    problems = []
    r = await w.client.get("/metrics")
    if r.status_code != 200:
        problems.append(f"/metrics from 127.0.0.1: {r.status_code}")
    r = await w.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    if r.status_code != 403 or not is_error_shape(r.json()):
        problems.append(f"/metrics for 203.0.113.7 via a loopback proxy: {r.status_code}")
    ctx.tally.check(
        PART,
        "/metrics without a token: loopback only",
        2,
        len(problems),
        "other hosts only via X-Forwarded-For from loopback",
        problems,
    )


# --- the part


async def run(ctx: Context) -> None:
    with ctx.service("authz") as svc:
        creds, _ = credentials(svc, ctx.quick)
        async with ctx.client(svc.base_url) as client:
            w = World(svc, client, {c.name: c for c in creds})
            found = (await client.get("/v1/search", params={"q": "shoes", "k": 50}, headers=bearer(AGENT))).json()
            w.products = [p["id"] for p in found["products"] if p["in_stock"]]
            if len(w.products) < len(creds):
                found = (await client.get("/v1/search", params={"q": "a", "k": 50}, headers=bearer(AGENT))).json()
                w.products += [p["id"] for p in found["products"] if p["in_stock"] and p["id"] not in w.products]
            w.cart_product = {c.name: w.products[i % len(w.products)] for i, c in enumerate(creds)}
            w.sessions["A"] = await make_session(w, w.creds["widget-A"], "bot", "A")
            w.sessions["B"] = await make_session(w, w.creds["visitor-B"], "bot", "B")
            w.sessions["anon"] = await make_session(w, w.creds["visitor-anon"], "bot", "anon")
            w.sessions["taken"] = await make_session(w, w.creds["visitor-B"], "taken", "taken")
            w.sessions["handoff"] = await make_session(w, w.creds["visitor-B"], "handoff", "handoff")
            await run_matrix(ctx, w, creds)
            await check_internal(ctx, w)
            await check_cors_and_metrics(ctx, w)
    await check_rate_limits(ctx)
