"""fuzz: Schemathesis over the service's own /openapi.json, every operation in every role, then hand-made bad input.

Schemathesis (`st run`, all its checks) runs once per role — shopper A's widget key, a visitor token, the agent key,
no key — against a `serve` of this part's own (agent fuzzing writes). Real session, turn and product ids are fed to
the matching parameters (half the time) so the generated requests reach past 404, and the stateful phase follows
the links the schema infers. Rows: one per role (tried = generated cases, broke = cases with a failed check, with
examples) and one per kind of hand-made bad input (tried = requests; broke = a 5xx, no answer within the deadline,
or an answer that is not a 4xx in the one error shape). Last: the service still ready, a normal turn still runs,
and a session stored before all this reads back identically.

Quick: 5 examples per operation and role, no coverage phase (some 700 requests, about a minute on 2 busy cores);
full: 60 examples and the coverage phase (over 5,000 generated requests; several minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from eval.reliability.client import chat_turn, is_error_shape
from eval.reliability.stack import AGENT, SHOPPER_A, WIDGET_A, bearer, visitor_token

if TYPE_CHECKING:
    from eval.reliability.cli import Context
    from eval.reliability.stack import Service

PART = "fuzz"
# What negative_data_rejection counts as rejected: its default list, and 413, the refusal of a body over the size
# limit (read no further than the limit; a schema-violating huge body gets it before any field is looked at).
REJECTED = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
# Longest a hand-made request may take to be answered before it counts as a hang.
DEADLINE_S = 20.0


@dataclass
class Role:
    name: str
    headers: dict[str, str]


@dataclass
class StRun:
    """What one `st run` did, read from its NDJSON event stream."""

    cases: int = 0
    requests: int = 0
    server_errors: int = 0
    failed_cases: int = 0
    by_check: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def config_text(examples: int, ids: dict[str, list[str]]) -> str:
    """The run's schemathesis.toml: hooks, all checks with 413 counted as a rejection, known ids fed half the time."""
    lines = [
        'hooks = "eval.reliability.parts.fuzz_hooks"',
        "request-timeout = 15.0",
        # A session stream follows the session for as long as the client stays: read its opening events only.
        "max-stream-events = 1",
        "suppress-health-check = ['filter_too_much', 'too_slow', 'data_too_large', 'large_base_example']",
        "[generation]",
        f"max-examples = {examples}",
        'database = "none"',  # each run from its seed alone
        "[checks]",
        "max_response_time = 10.0",
        "[checks.negative_data_rejection]",
        f"expected-statuses = {json.dumps([str(s) for s in REJECTED])}",
    ]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines += [
        "[parameters]",
        '"path.session_id" = { dictionary = "sessions", probability = 0.5 }',
        '"body.session_id" = { dictionary = "sessions", probability = 0.5 }',
        '"body.turn_id" = { dictionary = "turns", probability = 0.5 }',
        '"body.product_id" = { dictionary = "products", probability = 0.5 }',
        '"body.events[*].product_id" = { dictionary = "products", probability = 0.5 }',
    ]
    return "\n".join(lines) + "\n"


def read_ndjson(path: Path) -> StRun:
    run = StRun()
    if not path.exists():
        run.errors.append("no NDJSON report")
        return run
    with path.open() as f:
        for line in f:
            event = json.loads(line)
            name, body = next(iter(event.items()))
            if "Error" in name:
                run.errors.append(f"{name}: {json.dumps(body)[:200]}")
                continue
            if name != "ScenarioFinished":
                continue
            recorder = body.get("recorder") or {}
            for interaction in (recorder.get("interactions") or {}).values():
                response = interaction.get("response") or {}
                run.requests += 1
                if int(response.get("status_code") or 0) >= 500:
                    run.server_errors += 1
            for case_id, checks in (recorder.get("checks") or {}).items():
                run.cases += 1
                failed = [c for c in checks if c.get("status") == "failure"]
                if not failed:
                    continue
                run.failed_cases += 1
                for check in failed:
                    run.by_check[check["name"]] += 1
                    if len(run.examples) < 5:
                        run.examples.append(describe(recorder, case_id, check))
    return run


def describe(recorder: dict[str, Any], case_id: str, check: dict[str, Any]) -> str:
    failure = (check.get("failure_info") or {}).get("failure") or {}
    response = ((recorder.get("interactions") or {}).get(case_id) or {}).get("response") or {}
    return (
        f"{recorder.get('label')}: {check['name']} ({failure.get('title', '')}) -> "
        f"{response.get('status_code', 'no response')}"
    )[:240]


def st_run(
    svc: Service, role: Role, workdir: Path, examples: int, ids: dict[str, list[str]], seed: int, phases: str
) -> StRun:
    """One `st run` over every operation as `role`; its NDJSON report read back."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"schemathesis-{role.name}.toml"
    config.write_text(config_text(examples, ids))
    report = workdir / f"schemathesis-{role.name}.ndjson"
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{svc.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--seed",
        str(seed),
        "--workers",
        "2",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    for name, value in role.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    env = {**os.environ, "FUZZ_ROLE": role.name, "PYTHONPATH": os.getcwd()}
    log = workdir / f"schemathesis-{role.name}.log"
    with log.open("wb") as out:
        done = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir, timeout=1800, check=False
        )
    run = read_ndjson(report)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not run.failed_cases and not run.errors):
        run.errors.append(f"st run exited {done.returncode}: {log.read_text(errors='replace')[-300:]}")
    return run


# --- hand-made bad input


@dataclass
class Bad:
    """One hand-made request: what it is, and how to send it."""

    label: str
    method: str
    path: str
    headers: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    params: list[tuple[str, str]] | None = None
    chunked: bool = False  # sent with Transfer-Encoding: chunked (no Content-Length to refuse it by)


def json_headers(key: str = WIDGET_A, content_type: str = "application/json") -> dict[str, str]:
    return {**bearer(key), "Content-Type": content_type}


def bad_inputs(session: str, turn: str) -> dict[str, list[Bad]]:
    """Each row's requests: every one must get a 4xx in the one error shape."""
    posts = {
        "/v1/chat": b'{"message": "hi"}',
        "/v1/events": b'{"events": [{"product_id": "p", "kind": "view"}]}',
        "/v1/feedback": json.dumps({"session_id": session, "turn_id": turn, "rating": "up"}).encode(),
        "/v1/cart/items": b'{"product_id": "p"}',
        "/v1/visitors": b"{}",
        f"/v1/agent/sessions/{session}/messages": b'{"text": "hi"}',
        f"/v1/agent/sessions/{session}/actions": b'{"tool": "view_cart"}',
    }

    def key_for(path: str) -> str:
        return AGENT if path.startswith("/v1/agent") else WIDGET_A

    rows: dict[str, list[Bad]] = {}
    invalid_utf8 = [
        b'{"message": "\xff\xfe"}',
        b'{"message": "\xc3\x28"}',
        b"\xed\xa0\x80",
        b'{"message": "\xf4\x90\x80\x80"}',
    ]
    rows["invalid UTF-8 bodies"] = [
        Bad(f"{path} {body[:12]!r}", "POST", path, json_headers(key_for(path)), body)
        for path in posts
        for body in invalid_utf8
    ]
    rows["1 MB and larger bodies"] = [
        Bad(f"{path} {size >> 20} MB", "POST", path, json_headers(key_for(path)), valid_prefix(size))
        for path in [*posts, "/v1/search/image"]
        for size in (1 << 20, 8 << 20)
    ] + [
        Bad(f"{path} 1 MB chunked", "POST", path, json_headers(key_for(path)), valid_prefix(1 << 20), chunked=True)
        for path in ("/v1/chat", "/v1/events", "/v1/search/image")
    ]
    deep = [b"[" * 100_000, b'{"a":' * 50_000, b"[" * 100_000 + b"]" * 100_000]
    rows["deeply nested JSON"] = [
        Bad(f"{path} {body[:6]!r}x{len(body)}", "POST", path, json_headers(key_for(path)), body)
        for path in posts
        for body in deep
    ] + [
        Bad("events nested 400 deep", "POST", "/v1/events", json_headers(), nested_events(400)),
    ]
    controls = ["\x00", "nul\x00inside", "\x01\x02\x1b[31m", "\u202e\u2066", "\ufeff", "\ud800"]
    rows["control characters and NUL in ids"] = [
        Bad(f"session id {c!r}", "GET", "/v1/sessions/" + percent(c), bearer(WIDGET_A)) for c in controls
    ] + [
        Bad(f"chat session_id {c!r}", "POST", "/v1/chat", json_headers(), dumps({"message": "hi", "session_id": c}))
        for c in controls
    ]
    rows["malformed and unknown session ids"] = [
        Bad(f"session {label}", "GET", f"/v1/sessions/{raw}", bearer(WIDGET_A))
        for label, raw in [
            ("unknown", "0" * 32),
            ("traversal", "..%2F..%2Fetc%2Fpasswd"),
            ("dotdot", ".."),
            ("encoded slash", "a%2Fb"),
            ("unicode", percent("séssion-ü-😀")),
            ("10 KB", "a" * 10_240),
            ("SQL", percent("' OR '1'='1")),
            ("another shopper's format", percent("anon-" + "f" * 24)),
        ]
    ] + [
        Bad(f"{tail} of a 10 KB id", method, f"/v1/sessions/{'b' * 10_240}{tail}", bearer(WIDGET_A))
        for method, tail in [("GET", "/feedback"), ("POST", "/typing"), ("GET", "/stream")]
    ]
    injected: list[tuple[str, str | bytes | None]] = [
        ("CR/LF", None),  # sent raw below: httpx refuses to send a header with CR or LF
        ("10 KB", "a" * 10_240),
        ("non-ASCII", "t\u00fcrn:1".encode()),
        ("no seq", "0" * 32),
        ("negative seq", "0" * 32 + ":-1"),
        ("huge seq", "0" * 32 + ":99999999999999999999"),
        ("unknown turn", "f" * 32 + ":0"),
    ]
    rows["Last-Event-ID header injection"] = [
        Bad(f"{path} {label}", method, path, {**json_headers(), "Last-Event-ID": value}, body)
        for label, value in injected
        if value is not None
        for method, path, body in [
            ("POST", "/v1/chat", dumps({"message": "hi", "session_id": session})),
            ("GET", f"/v1/sessions/{session}/events", None),
            ("GET", f"/v1/sessions/{session}/stream", None),
        ]
    ]
    event = {"product_id": "p", "kind": "view"}
    rows["huge events arrays"] = [
        Bad("501 events", "POST", "/v1/events", json_headers(), dumps({"events": [event] * 501})),
        Bad("50,000 events (1 MB+)", "POST", "/v1/events", json_headers(), dumps({"events": [event] * 50_000})),
        Bad("500 unknown products", "POST", "/v1/events", json_headers(), dumps({"events": [event] * 500})),
        Bad(
            "another shopper's", "POST", "/v1/events", json_headers(), dumps({"events": [{**event, "shopper_id": "2"}]})
        ),
        Bad("empty", "POST", "/v1/events", json_headers(), b'{"events": []}'),
        Bad("not a list", "POST", "/v1/events", json_headers(), b'{"events": {"0": {}}}'),
    ]
    rows["wrong content types"] = [
        Bad(f"{path} as {ctype}", "POST", path, json_headers(key_for(path), ctype), posts[path])
        for path in ("/v1/chat", "/v1/events", "/v1/cart/items")
        for ctype in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        )
    ] + [
        Bad("chat with no content type", "POST", "/v1/chat", bearer(WIDGET_A), b'{"message": "hi"}'),
        Bad("chat with an empty body", "POST", "/v1/chat", json_headers(), b""),
        Bad("photo as JSON", "POST", "/v1/search/image", json_headers(), b'{"image": "x"}'),
        Bad("photo, no boundary", "POST", "/v1/search/image", json_headers(content_type="multipart/form-data"), b"x"),
        Bad(
            "photo, truncated multipart",
            "POST",
            "/v1/search/image",
            json_headers(content_type="multipart/form-data; boundary=b"),
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nxx',
        ),
    ]
    rows["hostile values"] = [
        Bad("JSON duplicate keys", "POST", "/v1/chat", json_headers(), b'{"message": "hi", "message": ""}'),
        Bad(
            "huge number",
            "POST",
            "/v1/cart/items",
            json_headers(),
            b'{"product_id": "p", "quantity": 1' + b"0" * 5000 + b"}",
        ),
        Bad("NaN quantity", "POST", "/v1/cart/items", json_headers(), b'{"product_id": "p", "quantity": NaN}'),
        Bad(
            "event year 0",
            "POST",
            "/v1/events",
            json_headers(),
            dumps({"events": [{**event, "at": "0000-01-01T00:00:00Z"}]}),
        ),
        Bad("search price inf", "GET", "/v1/search", bearer(WIDGET_A), params=[("q", "x"), ("max_price", "inf")]),
        Bad("search k huge", "GET", "/v1/search", bearer(WIDGET_A), params=[("q", "x"), ("k", "9" * 400)]),
        Bad("search q 10 KB", "GET", "/v1/search", bearer(WIDGET_A), params=[("q", "x" * 10_240)]),
        Bad(
            "search 5,000 brands", "GET", "/v1/search", bearer(WIDGET_A), params=[("q", "x")] + [("brand", "b")] * 5000
        ),
        Bad("agent queue limit -1", "GET", "/v1/agent/sessions", bearer(AGENT), params=[("limit", "-1")]),
        Bad(
            "agent tool __import__",
            "POST",
            f"/v1/agent/sessions/{session}/actions",
            json_headers(AGENT),
            b'{"tool": "__import__"}',
        ),
        Bad("bearer 10 KB", "GET", "/v1/cart", {"Authorization": "Bearer " + "k" * 10_240}),
        Bad("bearer forged token", "GET", "/v1/cart", {"Authorization": "Bearer vt1.eyJ9.AAAA"}),
        Bad("basic auth", "GET", "/v1/cart", {"Authorization": "Basic cmVsOnJlbA=="}),
        Bad("publishable key as bearer", "GET", "/v1/cart", {"Authorization": "Bearer pk_rel"}),
        Bad(
            "agent key from a foreign Origin",
            "GET",
            "/v1/agent/sessions",
            {**bearer(AGENT), "Origin": "https://evil.example"},
        ),
        Bad("unknown method", "PATCH", "/v1/chat", json_headers(), b"{}"),
        Bad("no such path", "GET", "/v1/../../etc/passwd", bearer(WIDGET_A)),
    ]
    return rows


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def percent(text: str) -> str:
    return "".join(
        c if c.isalnum() and c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in text
    )


def valid_prefix(size: int) -> bytes:
    """A JSON object `size` bytes long: a message of spaces."""
    head, tail = b'{"message": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def nested_events(depth: int) -> bytes:
    return b'{"events": [{"product_id": "p", "kind": "view", "at": ' + b"[" * depth + b"]" * depth + b"}]}"


async def in_chunks(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def send(client: httpx.AsyncClient, bad: Bad) -> str | None:
    """None when the service answered as it must (a 4xx in the one error shape, in time); else what went wrong."""
    try:
        content: Any = bad.content
        if bad.chunked and bad.content is not None:
            content = in_chunks(bad.content)
        resp = await asyncio.wait_for(
            client.request(bad.method, bad.path, headers=bad.headers, content=content, params=bad.params),
            DEADLINE_S,
        )
    except TimeoutError:
        return f"{bad.label}: no answer in {DEADLINE_S:.0f} s"
    except httpx.HTTPError as e:
        return f"{bad.label}: {type(e).__name__}: {e}"[:200]
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not 400 <= resp.status_code < 500 or not is_error_shape(body):
        return f"{bad.label}: {resp.status_code} {resp.text[:120]!r}"
    return None


async def raw_header_injection(svc: Service, session: str) -> list[str]:
    """Last-Event-ID with CR/LF in it, sent on a raw socket (clients refuse to): a 400 from the server's HTTP parser
    or a 4xx in the one error shape, never a 5xx, an injected header echoed, or a hang."""
    problems = []
    host, port = svc.base_url.removeprefix("http://").split(":")
    for label, value in [
        ("CRLF", b"x\r\nX-Injected: 1"),
        ("bare LF", b"x\nX-Injected: 1"),
        ("bare CR", b"x\rX-Injected: 1"),
    ]:
        request = (
            f"GET /v1/sessions/{session}/events HTTP/1.1\r\nHost: {host}\r\n".encode()
            + f"Authorization: Bearer {WIDGET_A}\r\nLast-Event-ID: ".encode()
            + value
            + b"\r\nConnection: close\r\n\r\n"
        )
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(65536), DEADLINE_S)
            writer.close()
        except (TimeoutError, OSError) as e:
            problems.append(f"Last-Event-ID {label}: {type(e).__name__}")
            continue
        status_line = answer.split(b"\r\n", 1)[0]
        parts = status_line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if not 400 <= status < 500 or b"x-injected" in answer.lower().split(b"\r\n\r\n", 1)[0]:
            problems.append(f"Last-Event-ID {label}: {status_line[:80]!r}")
    return problems


# Messages a shopper may well send: each is a turn like any other, stored as sent.
ODD_MESSAGES = [
    "hi\x00there",
    "\x1b[31mred shoes\x1b[0m",
    "\u202eseohs gninnur",
    "line\r\nX-Injected: 1",
    "\x07\x08\x0b\x0c\x7f boots",
    "tab\tseparated\tshoes",
    "😀" * 500,
    "<script>alert(1)</script>",
]


async def odd_messages(ctx: Context, svc: Service) -> tuple[int, list[str]]:
    """Each odd message is a turn that completes and reads back as sent; a lone surrogate (valid JSON, not text) is
    a 422 in the one error shape."""
    problems = []
    async with ctx.client(svc.base_url) as client:
        for message in ODD_MESSAGES:
            turn = await chat_turn(client, ctx.tally, WIDGET_A, message, deadline_s=60)
            if turn.status != 200 or turn.done != "completed" or turn.session_id is None:
                problems.append(f"{message[:20]!r}: {turn.status} done={turn.done} {turn.body or turn.broken or ''}")
                continue
            stored = await client.get(f"/v1/sessions/{turn.session_id}", headers=bearer(WIDGET_A))
            if stored.status_code != 200 or stored.json()["turns"][-1]["user_message"] != message:
                problems.append(f"{message[:20]!r}: stored differently ({stored.status_code})")
        for raw in (b'{"message": "\\ud800"}', b'{"message": "a\\udfff b"}'):
            r = await client.post("/v1/chat", content=raw, headers=json_headers())
            if r.status_code != 422 or not is_error_shape(r.json()):
                problems.append(f"{raw!r}: {r.status_code} {r.text[:80]!r}")
    return len(ODD_MESSAGES) + 2, problems


async def still_serving(ctx: Context, svc: Service, before: dict[str, dict[str, Any]]) -> list[str]:
    """The service still ready, a normal turn still completes, and every session stored before all this still holds
    what it held: the same turns, identical (the agent's fuzzing may legitimately have taken one over and added to
    it since, so a session may have more)."""
    problems = []
    async with ctx.client(svc.base_url) as client:
        ready = await client.get("/readyz")
        if ready.status_code != 200:
            problems.append(f"/readyz {ready.status_code}")
        turn = await chat_turn(client, ctx.tally, WIDGET_A, "running shoes under 100", deadline_s=60)
        if turn.status != 200 or turn.done != "completed":
            problems.append(f"a normal turn: {turn.status} done={turn.done} {turn.broken or ''}")
        for session, then in before.items():
            after = await client.get(f"/v1/sessions/{session}", headers=bearer(AGENT))
            now = after.json() if after.status_code == 200 else {}
            kept = {k: now.get(k) for k in ("session_id", "shopper_id", "created_at")}
            if kept != {k: then[k] for k in kept} or now.get("turns", [])[: len(then["turns"])] != then["turns"]:
                problems.append(f"session {session} lost or changed what it held ({after.status_code})")
                (ctx.workdir / f"fuzz-session-{session}.json").write_text(json.dumps([then, now], indent=1))
    return problems


async def known_ids(ctx: Context, svc: Service) -> tuple[dict[str, list[str]], str, str, dict[str, dict[str, Any]]]:
    """Two sessions of shopper A, one of a visitor and one an agent opened for A (each as stored now); their turns;
    product ids."""
    async with ctx.client(svc.base_url) as client:
        kept = await chat_turn(client, ctx.tally, WIDGET_A, "running shoes", deadline_s=60)
        more = await chat_turn(client, ctx.tally, WIDGET_A, "show me jackets", deadline_s=60)
        visitor = visitor_token(svc.base_url)
        theirs = await chat_turn(client, ctx.tally, visitor, "hello", deadline_s=60)
        agents = await chat_turn(client, ctx.tally, AGENT, "hi", deadline_s=60, shopper_id=SHOPPER_A)
        turns = [t for t in (kept, more, theirs, agents) if t.session_id and t.turn_id]
        if len(turns) < 4 or kept.session_id is None or kept.turn_id is None:
            raise RuntimeError(f"could not open the sessions the fuzzing starts from: {[t.status for t in turns]}")
        products = await client.get("/v1/search", params={"q": "shoes", "k": 20}, headers=bearer(WIDGET_A))
        ids = {
            "sessions": [t.session_id for t in turns if t.session_id],
            "turns": [t.turn_id for t in turns if t.turn_id],
            "products": [p["id"] for p in products.json()["products"]] or ["none"],
        }
        before = {s: (await client.get(f"/v1/sessions/{s}", headers=bearer(AGENT))).json() for s in ids["sessions"]}
    return ids, kept.session_id, kept.turn_id, before


async def run(ctx: Context) -> None:
    examples = 5 if ctx.quick else 60
    # The coverage phase (boundaries, every documented status, wrong types and methods) sends some 800 requests per
    # role whatever the examples: the full run only.
    phases = "examples,fuzzing,stateful" if ctx.quick else "examples,coverage,fuzzing,stateful"
    with ctx.service("fuzz") as svc:
        ids, kept, kept_turn, before = await known_ids(ctx, svc)
        roles = [
            Role("widget", bearer(WIDGET_A)),
            Role("visitor", bearer(visitor_token(svc.base_url, SHOPPER_A + "-visitor"))),
            Role("agent", bearer(AGENT)),
            Role("none", {}),
        ]
        workdir = ctx.workdir / "fuzz-schemathesis"
        for i, role in enumerate(roles):
            t0 = time.monotonic()
            result = await asyncio.to_thread(st_run, svc, role, workdir, examples, ids, 1000 + i, phases)
            ctx.tally.add("requests", result.requests)
            ctx.tally.add("server_errors", result.server_errors)
            checks = ", ".join(f"{name} {n}" for name, n in sorted(result.by_check.items())) or "every check passed"
            note = f"{result.requests} requests, {time.monotonic() - t0:.0f} s; {checks}"
            if result.errors:
                note += f"; {len(result.errors)} errors"
            ctx.tally.check(
                PART,
                f"schemathesis as {role.name}",
                result.cases,
                result.failed_cases + len(result.errors),
                note,
                result.examples + result.errors,
            )

        async with ctx.client(svc.base_url, timeout=httpx.Timeout(DEADLINE_S + 10, connect=10)) as client:
            for name, requests in bad_inputs(kept, kept_turn).items():
                problems = [p for p in [await send(client, bad) for bad in requests] if p]
                if name == "Last-Event-ID header injection":
                    problems += await raw_header_injection(svc, kept)
                    ctx.tally.add("requests", 3)
                    requests = [*requests, *[Bad("raw", "GET", "/")] * 3]
                ctx.tally.check(PART, name, len(requests), len(problems), "a 4xx in the one error shape", problems)

        tried, problems = await odd_messages(ctx, svc)
        ctx.tally.check(
            PART, "control characters and NUL in messages", tried, len(problems), "turns, as sent", problems
        )

        problems = await still_serving(ctx, svc, before)
        ctx.tally.check(
            PART,
            "still serving after the bad input",
            2 + len(before),
            len(problems),
            "readyz, a turn, the sessions stored before",
            problems,
        )
