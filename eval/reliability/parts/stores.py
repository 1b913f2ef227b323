"""stores: the session store (Redis, PostgreSQL) and the Chroma server stopped and restarted under traffic.

Session stores. For each backend a throwaway server (eval/local_servers.py; Redis with `appendonly yes`,
`appendfsync always`: what a deployment that keeps sessions runs — without persistence a restart empties Redis by
design, and "nothing lost" would mean nothing) and a `serve` with SHOP_SESSION_STORE_URL on it (and a short
SHOP_STORE_TIMEOUT_S, so that a hang past it shows within a short outage). Shoppers chat in a loop, each in its own
session, with a slowed stub model so that streams are open when the store goes. Then the store is
- "hung": SIGSTOP (it still accepts connections, nothing answers), or
- "gone": a clean stop (SIGTERM / PostgreSQL's fast shutdown), or kill -9 (full run),
for some seconds, and started again on the same port and data. While it is down every answer must be clear — a 503
in the one error shape, or on a stream already open an `error` event then `done` — and come within the service's
timeouts (slower: broke; past the turn deadline: hung_streams), never a 500 (server_errors); /readyz says sessions
are down. After the restart: /readyz 200 within RECOVER_S, new turns complete, every turn a client saw completed
reads back with its answer (lost_turns otherwise), and no session is corrupted (it reads; its turns are in order;
each turn's events replay to a `done`).

Chroma. `chroma run` over a copy of the seed's index, a `serve` with SHOP_CHROMA_MODE=http on it and
SHOP_EXACT_SCAN_MAX=0 (every nearest-neighbour query goes to Chroma: with the default, a catalog this small is
searched in its local vectors and Chroma is not on the request path at all). Searches (GET /v1/search) and chat
turns run while Chroma is paused and then stopped: 503 or an `error` event then `done`, no hang, no 500; after the
restart searches answer again without restarting the service.

Quick: each outage once, shortly (10 s hung, 4 s gone; 3 shoppers): about 90-120 s on 2 busy cores, most of it
three `serve` starts. Full: SIGSTOP 20 s, clean stop 12 s, kill -9 12 s, SIGSTOP 20 s per session store with 6
shoppers, and three Chroma outages: about 4 minutes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from eval.local_servers import ChromaServer, LocalServer, PostgresServer, RedisServer
from eval.reliability.client import Turn, chat_turn, is_error_shape
from eval.reliability.stack import AGENT, WIDGET_A, WIDGET_B, StubModel, bearer
from eval.sse import sse_events

if TYPE_CHECKING:
    from eval.reliability.cli import Context

PART = "stores"
STORE_TIMEOUT_S = 2.0  # the service's SHOP_STORE_TIMEOUT_S here: a store call that takes longer fails
# A clear answer while a store is down comes within a few of the service's store timeouts (a slot wait, the call,
# the turn's closing write); later counts as a hang of the store's making. The "hung" outages last longer than this.
CLEAR_WITHIN_S = 3 * STORE_TIMEOUT_S + 3.0
TURN_DEADLINE_S = 45.0  # a stream still open after this is hung (hung_streams)
RECOVER_S = 15.0  # /readyz 200 within this after the store is back
MESSAGES = (
    "red running shoes under $60",
    "a warm winter jacket for hiking",
    "show me some leather boots",
    "something for a summer picnic",
    "a gift for my dad who likes cooking",
)
SEARCHES = ("running shoes", "winter jacket", "leather boots", "coffee mug", "backpack")

Down = Literal["pause", "stop", "kill"]


@dataclass
class Outage:
    how: Down
    seconds: float

    @property
    def label(self) -> str:
        return {"pause": "hung (SIGSTOP)", "stop": "gone (clean stop)", "kill": "gone (kill -9)"}[self.how]


def plan(quick: bool) -> tuple[list[Outage], int]:
    """The outages of one backend, and how many shoppers chat through them."""
    if quick:
        return [Outage("pause", 10.0), Outage("stop", 4.0)], 3
    return [Outage("pause", 20.0), Outage("stop", 12.0), Outage("kill", 12.0), Outage("pause", 20.0)], 6


def take_down(server: LocalServer, how: Down) -> None:
    {"pause": server.pause, "stop": server.stop, "kill": server.kill}[how]()


def bring_back(server: LocalServer, how: Down) -> None:
    if how == "pause":
        server.resume()
    else:
        server.start()


# --- what the clients saw


@dataclass
class Seen:
    """One request made while a store was down: how long it took and whether its answer was clear."""

    what: str
    seconds: float
    clear: bool
    detail: str = ""


@dataclass
class Outcomes:
    """What the traffic saw, per phase."""

    down: list[Seen] = field(default_factory=list)
    after: list[Seen] = field(default_factory=list)
    readyz_down: list[str] = field(default_factory=list)  # what /readyz said while the store was down
    recovered_s: list[float | None] = field(default_factory=list)


def stream_verdict(turn: Turn) -> tuple[bool, str]:
    """(clear, what): a 503 in the error shape, or a stream that ended with `done` — failed after an `error` event, or
    completed (a turn that got through before the store went)."""
    if turn.hung:
        return False, "hung"
    if turn.status == 503:
        return is_error_shape(turn.body), f"503 {str(turn.body)[:80]}"
    if turn.status != 200:
        return False, f"HTTP {turn.status} {str(turn.body)[:80]}"
    if turn.done is None:
        return False, f"stream ended without done ({turn.broken or 'closed'}) after {[e for e, _, _ in turn.events]}"
    if turn.done == "completed":
        return True, "completed"
    names = [e for e, _, _ in turn.events]
    if "error" not in names or names[-1] != "done" or names.index("error") > names.index("done"):
        return False, f"done {turn.done} without an error event before it: {names}"
    return True, f"error then done {turn.done}"


@dataclass
class Shopper:
    key: str
    name: str
    session_id: str | None = None
    completed: list[tuple[str, str, str]] = field(default_factory=list)  # (turn_id, message, answer)
    in_flight: Turn | None = None
    sent_in: str = ""  # the phase its in-flight request was sent in
    n: int = 0


class Traffic:
    """Shoppers chatting in a loop until stopped (each at most `max_turns`): requests sent while `phase` is "down"
    use the client that lets a 503 through; the rest must be 200s."""

    def __init__(self, ctx: Context, base_url: str, shoppers: int, max_turns: int, outcomes: Outcomes) -> None:
        self.ctx, self.base_url, self.max_turns, self.outcomes = ctx, base_url, max_turns, outcomes
        keys = (WIDGET_A, WIDGET_B)
        self.shoppers = [Shopper(keys[i % 2], f"s{i}") for i in range(shoppers)]
        self.phase = "before"
        self.epoch = 0  # outages begun so far: a turn that saw one begin was hit by it
        self.stopped = asyncio.Event()
        self.problems: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Traffic:
        self.normal = self.ctx.client(self.base_url)
        self.lenient = self.ctx.client(self.base_url, allow_503=True)
        self._tasks = [asyncio.create_task(self._chat(s)) for s in self.shoppers]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stopped.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.normal.aclose()
        await self.lenient.aclose()

    async def _chat(self, s: Shopper) -> None:
        while not self.stopped.is_set() and s.n < self.max_turns:
            phase, epoch = self.phase, self.epoch
            message = f"{MESSAGES[s.n % len(MESSAGES)]} ({s.name} turn {s.n})"
            s.n += 1
            turn = Turn()
            s.in_flight, s.sent_in = turn, phase
            client = self.lenient if phase == "down" else self.normal
            t0 = time.monotonic()
            await chat_turn(client, self.ctx.tally, s.key, message, s.session_id, TURN_DEADLINE_S, into=turn)
            took = time.monotonic() - t0
            s.in_flight = None
            if turn.session_id and s.session_id is None:
                s.session_id = turn.session_id
            if turn.done == "completed" and turn.turn_id:
                s.completed.append((turn.turn_id, message, turn.text.strip()))
            if phase == "down" or self.epoch != epoch:  # sent while the store was down, or it went down mid-turn
                clear, detail = stream_verdict(turn)
                self.outcomes.down.append(Seen("chat", took, clear and took <= CLEAR_WITHIN_S, detail))
                if turn.done != "completed":
                    await asyncio.sleep(0.5)  # a client backs off after an error
            elif phase == "after":
                ok = turn.status == 200 and turn.done == "completed"
                why = f"HTTP {turn.status} done={turn.done} {turn.broken or ''} {str(turn.body)[:80]}"
                self.outcomes.after.append(Seen("chat", took, ok, "" if ok else why))
            elif not (turn.status == 200 and turn.done == "completed"):
                self.problems.append(f"{s.name} before the outage: HTTP {turn.status} done={turn.done}")
                await asyncio.sleep(0.5)

    async def warmed(self, turns_each: int, limit_s: float = 60.0) -> None:
        """Every shopper has `turns_each` completed turns (or the limit passed)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if all(len(s.completed) >= turns_each for s in self.shoppers):
                return
            await asyncio.sleep(0.1)

    async def switch(self, phase: str, limit_s: float = 30.0) -> None:
        """From now on requests are sent in `phase`; returns once none sent before is still waiting for its headers
        (a stream already open may go on: it is what sees the store go mid-turn)."""
        self.phase = phase
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            waiting = [s for s in self.shoppers if s.in_flight is not None and s.sent_in != phase]
            if not any(t.in_flight is not None and t.in_flight.status == 0 for t in waiting):
                return
            await asyncio.sleep(0.02)

    async def after_turns(self, each: int, limit_s: float) -> None:
        """Every shopper has completed `each` more turns (or the limit passed)."""
        start = {s.name: len(s.completed) for s in self.shoppers}
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if all(len(s.completed) - start[s.name] >= each for s in self.shoppers):
                return
            await asyncio.sleep(0.1)


async def readyz(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    try:
        resp = await client.get("/readyz", timeout=10)
    except httpx.HTTPError as e:
        return 0, {"error": f"{type(e).__name__}"}
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {}


async def watch_down(
    client: httpx.AsyncClient, outcomes: Outcomes, check: str, probes: list[Callable[[], Awaitable[Seen]]]
) -> None:
    """While the store is down: /readyz must say `check` is down; each probe must answer clearly and in time."""
    code, body = await readyz(client)
    down = code == 503 and body.get("checks", {}).get(check) is False
    outcomes.readyz_down.append("" if down else f"/readyz {code} {body}")
    for probe in probes:
        outcomes.down.append(await probe())


async def wait_recovered(client: httpx.AsyncClient, limit_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        code, _ = await readyz(client)
        if code == 200:
            return time.monotonic() - t0
        await asyncio.sleep(0.25)
    return None


async def timed(what: str, call: Awaitable[httpx.Response], ok: Callable[[httpx.Response], bool]) -> Seen:
    t0 = time.monotonic()
    try:
        resp = await call
    except httpx.HTTPError as e:
        return Seen(what, time.monotonic() - t0, False, f"{type(e).__name__}: {e}")
    took = time.monotonic() - t0
    fine = ok(resp)
    return Seen(what, took, fine and took <= CLEAR_WITHIN_S, f"{resp.status_code} {resp.text[:80]}")


def clear_503_or_200(resp: httpx.Response) -> bool:
    if resp.status_code == 200:
        return True
    try:
        return resp.status_code == 503 and is_error_shape(resp.json())
    except ValueError:
        return False


# --- reading back


async def read_back(ctx: Context, base_url: str, shoppers: list[Shopper]) -> tuple[int, int, list[str]]:
    """(turns checked, sessions broken, examples): every session reads, its turns are in order, every turn's events
    replay to a `done`, and every turn a client saw completed is stored completed with its answer (else lost_turns)."""
    broken: list[str] = []
    checked = 0
    async with ctx.client(base_url) as client:
        for s in shoppers:
            if s.session_id is None:
                continue
            try:
                resp = await client.get(f"/v1/sessions/{s.session_id}", headers=bearer(AGENT))
            except httpx.HTTPError as e:
                broken.append(f"{s.name}: GET session: {type(e).__name__}: {e}")
                continue
            if resp.status_code != 200:
                broken.append(f"{s.name}: GET session {resp.status_code} {resp.text[:100]}")
                continue
            turns = resp.json().get("turns", [])
            if [t.get("index") for t in turns] != list(range(len(turns))):
                broken.append(f"{s.name}: turn indexes {[t.get('index') for t in turns]}")
            stored = {t["turn_id"]: t for t in turns}
            for turn_id, message, answer in s.completed:
                checked += 1
                t = stored.get(turn_id)
                if t is None or t.get("status") != "completed" or t.get("user_message") != message:
                    ctx.tally.add("lost_turns")
                    broken.append(f"{s.name}: completed turn {turn_id} reads as {t and t.get('status')}")
                elif t.get("answer", "").strip() != answer:
                    ctx.tally.add("lost_turns")
                    broken.append(f"{s.name}: turn {turn_id} answer {t.get('answer')!r} != seen {answer!r}")
            for t in turns:
                if t.get("kind", "bot") != "bot":
                    continue
                problem = await replayed_to_done(client, s.session_id, t)
                if problem:
                    broken.append(f"{s.name}: turn {t['index']} ({t.get('status')}): {problem}")
    return checked, len(broken), broken


async def replayed_to_done(client: httpx.AsyncClient, session_id: str, turn: dict[str, Any]) -> str:
    """'' when the turn's events replay (after its first, `session`) in order to one `done` agreeing with its
    status; else what is wrong."""
    turn_id = turn["turn_id"]
    headers = {**bearer(AGENT), "Last-Event-ID": f"{turn_id}:0", "Accept": "text/event-stream"}
    t = Turn()
    try:
        async with asyncio.timeout(20):
            async with client.stream("GET", f"/v1/sessions/{session_id}/events", headers=headers) as resp:
                if resp.status_code != 200:
                    body = await resp.aread()
                    if resp.status_code == 404 and turn.get("status") != "completed" and b"event_not_found" in body:
                        return ""  # none of its events was logged: the store went before its first
                    return f"replay HTTP {resp.status_code} {body[:100]!r}"
                async for ev in sse_events(resp.aiter_lines()):
                    t.events.append((ev.event, json.loads(ev.data) if ev.data else {}, ev.id))
                    if ev.event == "done":
                        break
    except TimeoutError:
        return "replay hung"
    except httpx.HTTPError as e:
        return f"replay broke: {type(e).__name__}"
    names = [e for e, _, _ in t.events]
    if not names or names[-1] != "done" or names.count("done") != 1:
        return f"events {names}"
    seqs = [int(i.rsplit(":", 1)[1]) for _, _, i in t.events if i]
    if seqs != list(range(1, len(seqs) + 1)):
        return f"event seqs {seqs}"
    status = t.events[-1][1].get("status")
    if turn.get("status") == "completed" and status != "completed":
        return f"stored completed, its log ends done {status}"
    if turn.get("status") == "completed" and t.text.strip() != turn.get("answer", "").strip():
        return "its logged tokens are not its answer"
    return ""


# --- the scenarios


def row_note(outcomes: Outcomes) -> str:
    slowest = max((s.seconds for s in outcomes.down), default=0.0)
    kinds: dict[str, int] = {}
    for s in outcomes.down:
        key = s.detail.split(" ", 1)[0] if s.detail.startswith(("503", "completed")) else s.detail[:20]
        kinds[key] = kinds.get(key, 0) + 1
    return f"down: {len(outcomes.down)} answers {kinds}, slowest {slowest:.1f}s"


async def session_backend(ctx: Context, backend: str, stub: StubModel) -> None:
    outages, n_shoppers = plan(ctx.quick)
    server: LocalServer = RedisServer(appendonly=True) if backend == "redis" else PostgresServer()
    persistence = "appendonly yes, appendfsync always" if backend == "redis" else "fsync off, process restarts only"
    with server:
        url = server.url  # type: ignore[attr-defined]
        env = {"SHOP_SESSION_STORE_URL": url, "SHOP_STORE_TIMEOUT_S": str(STORE_TIMEOUT_S)}
        with ctx.service(f"stores-{backend}", llm_url=stub.base_url, **env) as svc:
            outcomes = Outcomes()
            max_turns = 60 if ctx.quick else 400
            async with ctx.client(svc.base_url, allow_503=True) as lenient, ctx.client(svc.base_url) as normal:
                async with Traffic(ctx, svc.base_url, n_shoppers, max_turns, outcomes) as traffic:
                    await traffic.warmed(2)
                    for outage in outages:
                        await one_outage(ctx, server, outage, traffic, lenient, normal, outcomes, backend)
                    await traffic.after_turns(1, 30)
                checked, n_broken, examples = await read_back(ctx, svc.base_url, traffic.shoppers)
    note = f"{backend} ({persistence})"
    for i, outage in enumerate(outages):
        rec = outcomes.recovered_s[i] if i < len(outcomes.recovered_s) else None
        note += f"; {outage.label} {outage.seconds:.0f}s: ready again in {'never' if rec is None else f'{rec:.1f}s'}"
    unclear = [f"{s.what} {s.seconds:.1f}s {s.detail}" for s in outcomes.down if not s.clear]
    ctx.tally.check(
        PART,
        f"{backend}: clear answers while down",
        len(outcomes.down),
        len(unclear),
        f"{row_note(outcomes)}; store timeout {STORE_TIMEOUT_S:.0f}s, clear within {CLEAR_WITHIN_S:.0f}s",
        unclear,
    )
    said = [r for r in outcomes.readyz_down if r]
    ctx.tally.check(PART, f"{backend}: /readyz says sessions down", len(outcomes.readyz_down), len(said), "", said)
    late = [i for i, r in enumerate(outcomes.recovered_s) if r is None]
    ctx.tally.check(PART, f"{backend}: ready again after restart", len(outages), len(late), note)
    bad_after = [f"{s.what} {s.detail}" for s in outcomes.after if not s.clear] + traffic.problems
    ctx.tally.check(
        PART,
        f"{backend}: turns complete after restart",
        len(outcomes.after),
        len(bad_after) + (len(outcomes.after) == 0),
        "" if outcomes.after else "no turn after the restart",
        bad_after,
    )
    sessions = sum(1 for s in traffic.shoppers if s.session_id)
    ctx.tally.check(
        PART,
        f"{backend}: sessions intact after restarts",
        sessions,
        n_broken,
        f"{checked} completed turns read back with their answers; every turn's log replays to done",
        examples,
    )


async def one_outage(
    ctx: Context,
    server: LocalServer,
    outage: Outage,
    traffic: Traffic,
    lenient: httpx.AsyncClient,
    normal: httpx.AsyncClient,
    outcomes: Outcomes,
    backend: str,
) -> None:
    await traffic.switch("down")
    traffic.epoch += 1
    take_down(server, outage.how)
    sid = next((s.session_id for s in traffic.shoppers if s.session_id), None)

    def read_session() -> Awaitable[Seen]:
        return timed(
            "GET session",
            lenient.get(f"/v1/sessions/{sid}", headers=bearer(AGENT)),
            lambda r: r.status_code == 503 and is_error_shape(r.json()),
        )

    t_end = time.monotonic() + outage.seconds
    await asyncio.sleep(min(1.0, outage.seconds / 4))
    while time.monotonic() < t_end - 1.0:
        await watch_down(lenient, outcomes, "sessions", [read_session] if sid else [])
        await asyncio.sleep(1.0)
    await asyncio.sleep(max(0.0, t_end - time.monotonic()))
    bring_back(server, outage.how)
    outcomes.recovered_s.append(await wait_recovered(normal, RECOVER_S))
    await traffic.switch("after")
    await traffic.after_turns(1, 30)


async def chroma(ctx: Context, stub: StubModel) -> None:
    """Chroma as a server stopped under search traffic."""
    outages = [Outage("pause", 10.0), Outage("stop", 4.0)]
    if not ctx.quick:
        outages = [Outage("pause", 20.0), Outage("stop", 12.0), Outage("kill", 12.0)]
    index = ctx.workdir / "stores-chroma-index"
    shutil.copytree(ctx.seed / "chroma", index)
    with ChromaServer(index) as server:
        env = {
            "SHOP_CHROMA_MODE": "http",
            "SHOP_CHROMA_HOST": "127.0.0.1",
            "SHOP_CHROMA_PORT": str(server.port),
            "SHOP_EXACT_SCAN_MAX": "0",
            "SHOP_CHROMA_TIMEOUT_S": str(STORE_TIMEOUT_S),
        }
        with ctx.service("stores-chroma", llm_url=stub.base_url, **env) as svc:
            outcomes = Outcomes()
            recovered: list[float | None] = []
            async with ctx.client(svc.base_url, allow_503=True) as lenient, ctx.client(svc.base_url) as normal:
                before = await search_round(normal)
                for outage in outages:
                    async with Traffic(ctx, svc.base_url, 2, 40, outcomes) as traffic:
                        await traffic.warmed(1)
                        await traffic.switch("down")
                        traffic.epoch += 1
                        take_down(server, outage.how)
                        t_end = time.monotonic() + outage.seconds
                        i = 0
                        while time.monotonic() < t_end:
                            q = SEARCHES[i % len(SEARCHES)]
                            i += 1
                            outcomes.down.append(
                                await timed(
                                    "search",
                                    lenient.get("/v1/search", params={"q": q}, headers=bearer(WIDGET_A)),
                                    clear_503_or_200,
                                )
                            )
                            await asyncio.sleep(0.3)
                        bring_back(server, outage.how)
                        t0 = time.monotonic()
                        back = None
                        while time.monotonic() - t0 < RECOVER_S:
                            if await search_round(lenient) == len(SEARCHES):
                                back = time.monotonic() - t0
                                break
                            await asyncio.sleep(0.5)
                        recovered.append(back)
                        await traffic.switch("after")
                        await traffic.after_turns(1, 30)
                after = await search_round(normal)
    down_200 = sum(1 for s in outcomes.down if s.what == "search" and s.detail.startswith("200"))
    unclear = [f"{s.what} {s.seconds:.1f}s {s.detail}" for s in outcomes.down if not s.clear]
    ctx.tally.check(
        PART,
        "chroma: clear answers while down",
        len(outcomes.down),
        len(unclear),
        f"{row_note(outcomes)} ({down_200} searches 200: answered before the store went)",
        unclear,
    )
    late = sum(1 for r in recovered if r is None)
    times = ", ".join("never" if r is None else f"{r:.1f}s" for r in recovered)
    bad_after = [f"{s.what} {s.detail}" for s in outcomes.after if not s.clear]
    ctx.tally.check(
        PART,
        "chroma: searches and turns work after restart",
        len(outages) + len(outcomes.after) + 2,
        late + len(bad_after) + (before != len(SEARCHES)) + (after != len(SEARCHES)),
        f"SHOP_CHROMA_MODE=http, SHOP_EXACT_SCAN_MAX=0; searches back in {times} (no service restart); "
        f"searches before {before}/{len(SEARCHES)}, after {after}/{len(SEARCHES)}",
        bad_after,
    )


async def search_round(client: httpx.AsyncClient) -> int:
    """How many of the searches answer 200 with products."""
    ok = 0
    for q in SEARCHES:
        try:
            resp = await client.get("/v1/search", params={"q": q}, headers=bearer(WIDGET_A), timeout=20)
        except httpx.HTTPError:
            continue
        ok += resp.status_code == 200 and bool(resp.json().get("products"))
    return ok


async def run(ctx: Context) -> None:
    # A slower model than the suite's: a turn's stream stays open long enough for the store to go mid-turn.
    stub = StubModel(ctx.workdir, chunks=8, chunk_delay_ms=120.0)
    stub.start()
    try:
        for backend in ("redis", "postgres"):
            await session_backend(ctx, backend, stub)
        await chroma(ctx, stub)
    finally:
        stub.stop()
