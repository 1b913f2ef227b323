"""Clients that misbehave, for the load part: streams nobody reads, connections dropped at every stage of a request,
shoppers who leave mid-turn, slowloris. Raw sockets where httpx would be too polite (it reads eagerly, it never
stops halfway through a request). Each scenario returns a Result; the load part checks the service after each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from eval.reliability.client import Turn, chat_turn
from eval.reliability.shoppers import turn_error
from eval.reliability.stack import AGENT, HOST, WIDGET_A, WIDGET_B, Service, bearer
from eval.sse import SSEParser

if TYPE_CHECKING:
    from eval.reliability.cli import Context

FINAL = ("completed", "failed", "cancelled")


async def settle_fds(svc: Service, target: int, slack: int, within_s: float) -> int:
    """The service's descriptor count once it is at most `target` + `slack`, or after `within_s`."""
    deadline = time.monotonic() + within_s
    fds = svc.open_fds()
    while fds > target + slack and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        fds = svc.open_fds()
    return fds


@dataclass
class Result:
    """What a scenario tried and what broke, with details for the report."""

    tried: int = 0
    broke: int = 0
    note: str = ""
    examples: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def expect(self, ok: bool, what: str) -> None:
        self.tried += 1
        if not ok:
            self.broke += 1
            self.examples.append(what)


def http_request(method: str, path: str, key: str, body: dict[str, Any] | None = None, **headers: str) -> bytes:
    raw = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Authorization: Bearer {key}"]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(raw)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def chat_request(key: str, message: str, session_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"message": message}
    if session_id:
        body["session_id"] = session_id
    return http_request("POST", "/v1/chat", key, body, Accept="text/event-stream")


def blocking_socket(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A connected socket that nobody reads: with a small receive buffer the server's sends fill up soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((HOST, port))
    return sock


async def async_socket(port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), 10)
    except BaseException:
        sock.close()
        raise
    return sock


def close(sock: socket.socket, reset: bool = False) -> None:
    """Close; `reset` sends RST instead of FIN (SO_LINGER 0), as a crashed client or a dropped network does."""
    with contextlib.suppress(OSError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def drain(sock: socket.socket) -> tuple[int, bool]:
    """What is waiting in a socket nobody read: (bytes, whether the server closed the connection)."""
    sock.setblocking(False)
    total = 0
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return total, True
            total += len(chunk)
    except BlockingIOError:
        return total, False
    except OSError:
        return total, True


def send_queue(server_port: int, client_port: int) -> int | None:
    """Bytes the service's kernel holds for one client connection (its socket's Send-Q), from /proc/net/tcp."""
    try:
        lines = open("/proc/net/tcp").read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        local, remote, _, queues = line.split()[1:5]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[0], 16)
    return None


ORPHAN_SLACK = 2**16
"""Bytes the kernel may keep for a reader once the service closed its end: what a graceful close leaves in a small
socket buffer (a finished chat stream's tail). A dropped stalled stream leaves megabytes unless the drop resets."""


def orphaned_bytes(server_port: int, client_ports: list[int]) -> int:
    """Bytes the kernel still holds for these client connections after the service closed its end (sockets with no
    descriptor: inode 0 in /proc/net/tcp). A service that drops a reader with a plain close leaves exactly that: the
    orphan keeps its send buffer and queues the FIN behind it for as long as the reader takes nothing."""
    try:
        lines = open("/proc/net/tcp").read().splitlines()[1:]
    except OSError:
        return 0
    held = 0
    for line in lines:
        cols = line.split()
        local, remote, queues, inode = cols[1], cols[2], cols[4], cols[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) in client_ports:
            if inode == "0":
                held += int(queues.split(":")[0], 16)
    return held


def held_by_service(server_port: int, client_ports: list[int]) -> int:
    """How many of these client connections the service still has a descriptor for (a nonzero inode)."""
    try:
        lines = open("/proc/net/tcp").read().splitlines()[1:]
    except OSError:
        return 0
    return sum(
        1
        for cols in (line.split() for line in lines)
        if int(cols[1].split(":")[1], 16) == server_port
        and int(cols[2].split(":")[1], 16) in client_ports
        and cols[9] != "0"
    )


async def released(server_port: int, client_ports: list[int], within_s: float) -> None:
    """Once the service holds none of these client connections, or after `within_s`."""
    deadline = time.monotonic() + within_s
    held = held_by_service(server_port, client_ports)
    while held and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        held = held_by_service(server_port, client_ports)


async def watch_orphans(server_port: int, client_ports: list[int], stop: asyncio.Event) -> int:
    """The most `orphaned_bytes` seen until `stop` is set."""
    most = 0
    while not stop.is_set():
        most = max(most, orphaned_bytes(server_port, client_ports))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    return max(most, orphaned_bytes(server_port, client_ports))


async def session_view(client: httpx.AsyncClient, key: str, session_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/sessions/{session_id}", headers=bearer(key))
    return resp.json() if resp.status_code == 200 else {"turns": [], "status": resp.status_code}


async def until_final(
    client: httpx.AsyncClient, key: str, session_id: str, match: Callable[[dict[str, Any]], bool], within_s: float
) -> list[dict[str, Any]]:
    """The session's turns that `match`, once all are in a final state (or when `within_s` runs out)."""
    deadline = time.monotonic() + within_s
    while True:
        turns = [t for t in (await session_view(client, key, session_id))["turns"] if match(t)]
        if (turns and all(t["status"] in FINAL for t in turns)) or time.monotonic() > deadline:
            return turns
        await asyncio.sleep(0.5)


async def new_session(ctx: Context, client: httpx.AsyncClient, key: str, message: str = "hi") -> str:
    turn = await chat_turn(client, ctx.tally, key, message, deadline_s=60)
    if turn.session_id is None:
        raise RuntimeError(f"no session: HTTP {turn.status} {turn.body or turn.broken}")
    return turn.session_id


async def others_turns(ctx: Context, svc: Service, key: str, stop: asyncio.Event) -> list[Turn]:
    """Another shopper chatting while a scenario runs: every turn must end fine."""
    turns: list[Turn] = []
    async with ctx.client(svc.base_url) as client:
        session_id = None
        while not stop.is_set():
            turn = await chat_turn(client, ctx.tally, key, "show me headphones", session_id=session_id, deadline_s=60)
            session_id = session_id or turn.session_id
            turns.append(turn)
            await asyncio.sleep(0.5)
    return turns


# --- 1. streams nobody reads


async def never_read(ctx: Context, svc: Service, pump_turns: int, volume_bytes: int, drop_within_s: float) -> Result:
    """A chat stream and a session stream opened and never read (a tab that froze), while the same shopper's other
    tab chats on in that session and then an agent takes it over and writes long messages, `volume_bytes` in all:
    more than the kernel's buffers hold, so the service's sends to the reader stall. The unread turn still completes
    and is stored; the other tab, the agent and another shopper are unaffected; the service lets go of both
    connections by itself (within `drop_within_s` of the pump's end) while the reader still holds its sockets, so
    what it buffered for the reader is freed, in the kernel too (no orphaned socket keeps megabytes for it)."""
    res = Result()
    key = WIDGET_B
    marker = f"show me backpacks ({uuid.uuid4().hex[:8]})"
    fds_before = svc.open_fds()
    rss_before = svc.rss_bytes()
    async with ctx.client(svc.base_url) as client:
        session_id = await new_session(ctx, client, key)
        chat_sock = blocking_socket(svc.port, rcvbuf=2048)
        chat_sock.sendall(chat_request(key, marker, session_id))
        stream_sock = blocking_socket(svc.port, rcvbuf=2048)
        stream_sock.sendall(http_request("GET", f"/v1/sessions/{session_id}/stream", key, Accept="text/event-stream"))
        stop = asyncio.Event()
        other = asyncio.create_task(others_turns(ctx, svc, WIDGET_A, stop))
        readers = [chat_sock.getsockname()[1], stream_sock.getsockname()[1]]
        orphans = asyncio.create_task(watch_orphans(svc.port, readers, stop))
        sem = asyncio.Semaphore(6)
        t0 = time.monotonic()

        async def pump(i: int) -> Turn:
            async with sem:
                return await chat_turn(client, ctx.tally, key, f"is the {i % 3 + 1}st one in stock?", session_id, 60)

        pumped = await asyncio.gather(*(pump(i) for i in range(pump_turns)))
        agent = bearer(AGENT)
        took = await client.post(f"/v1/agent/sessions/{session_id}/take", json={"name": "Rel"}, headers=agent)
        text = ("Here is everything about our backpacks. " * 100)[:4000]
        said = {"text": text}
        refused: list[str] = []

        async def say(_: int) -> None:
            async with sem:
                resp = await client.post(f"/v1/agent/sessions/{session_id}/messages", json=said, headers=agent)
            if resp.status_code != 201:
                refused.append(f"{resp.status_code} {resp.text[:80]}")

        messages = -(-volume_bytes // len(text))
        await asyncio.gather(*(say(i) for i in range(messages)))
        back = await client.post(f"/v1/agent/sessions/{session_id}/hand-back", headers=agent)
        pump_s = time.monotonic() - t0
        rss_pumped = svc.rss_bytes()
        queued = send_queue(svc.port, stream_sock.getsockname()[1])
        stored = await until_final(client, key, session_id, lambda t: t["user_message"] == marker, 30)
        res.expect(
            len(stored) == 1 and stored[0]["status"] == "completed",
            f"the unread turn is stored as {[t['status'] for t in stored] or 'nothing'}",
        )
        bad = [e for t in pumped if (e := turn_error(t))]
        res.expect(not bad, f"the same shopper's other tab: {len(bad)} of {len(pumped)} turns broke: {bad[:2]}")
        res.expect(
            took.status_code == 200 and back.status_code == 200 and not refused,
            f"the agent: take {took.status_code}, hand-back {back.status_code}, {len(refused)} messages refused "
            f"{refused[:2]}",
        )
        # The reader still holds both sockets: the service must let go of them by itself. Wait for both connections
        # (the descriptor count's slack alone would let one still held pass) without reading: a read would let the
        # service send again and restart its send deadline.
        deadline = time.monotonic() + drop_within_s
        await released(svc.port, readers, drop_within_s)
        fds_held = await settle_fds(svc, fds_before, 1, max(0.0, deadline - time.monotonic()))
        still_held = held_by_service(svc.port, readers)
        stop.set()
        others = await other
        orphaned = await orphans
        bad = [e for t in others if (e := turn_error(t))]
        res.expect(not bad, f"another shopper: {len(bad)} of {len(others)} turns broke: {bad[:2]}")
        turn = await chat_turn(client, ctx.tally, key, "thanks!", session_id, 60)
        res.expect(turn_error(turn) is None, f"the session afterwards: {turn_error(turn)}")
    chat_bytes, chat_closed = drain(chat_sock)
    stream_bytes, stream_closed = drain(stream_sock)
    close(chat_sock)
    close(stream_sock)
    res.expect(
        chat_closed and stream_closed and not still_held and fds_held <= fds_before + 1,
        f"{drop_within_s:.0f} s after the pump the service still held {still_held} unread connections (chat stream "
        f"closed: {chat_closed}, session stream closed: {stream_closed}; descriptors {fds_before} before, "
        f"{fds_held} then)",
    )
    res.expect(
        orphaned <= ORPHAN_SLACK,
        f"the service dropped the reader with a plain close: the kernel kept {orphaned} bytes for it in orphaned "
        "sockets (a drop must reset the connection)",
    )
    res.details = {
        "orphaned_bytes": orphaned,
        "pumped_turns": len(pumped),
        "agent_messages": messages,
        "volume_mb": round(volume_bytes / 2**20, 1),
        "pump_s": round(pump_s, 1),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_pump_mb": round(rss_pumped / 2**20, 1),
        "rss_after_drop_mb": round(svc.rss_bytes() / 2**20, 1),
        "fds_before": fds_before,
        "fds_while_reader_holds_sockets": fds_held,
        "session_stream_send_q_after_pump": queued,
        "chat_stream": {"bytes_waiting": chat_bytes, "closed_by_service": chat_closed},
        "session_stream": {"bytes_waiting": stream_bytes, "closed_by_service": stream_closed},
        "other_shopper_turns": len(others),
    }
    res.note = (
        f"{len(pumped)} turns and {messages} agent messages ({volume_bytes / 2**20:.1f} MB) to a reader that never "
        f"read; descriptors {fds_before} -> {fds_held} with its sockets open"
    )
    return res


# --- 2. connections opened and dropped


STAGES = ("mid-headers", "mid-body", "after-request", "mid-stream")


async def dropped(ctx: Context, svc: Service, n: int, grace_s: float) -> Result:
    """`n` connections, each dropped at one stage (a quarter each; half with FIN, half with RST): in the middle of
    its headers, in the middle of its body, right after sending a whole chat request, and in the middle of a chat
    or session stream. The turns those requests started all end stored in a final state (completed, or cancelled
    after the resume grace), and every session is usable afterwards."""
    res = Result()
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    keys = [WIDGET_A, WIDGET_B]
    async with ctx.client(svc.base_url) as client:
        sessions = [(k, await new_session(ctx, client, k)) for k in keys]
        counts = dict.fromkeys(STAGES, 0)
        failures: list[str] = []
        sem = asyncio.Semaphore(50)

        async def one(i: int) -> None:
            stage = STAGES[i % len(STAGES)]
            key, session_id = sessions[i % len(sessions)]
            reset = (i // len(STAGES)) % 2 == 1
            request = chat_request(key, f"any sneakers under ${50 + i}?", session_id)
            async with sem:
                try:
                    sock = await async_socket(svc.port)
                except OSError as e:
                    failures.append(f"connect: {e}")
                    return
                try:
                    if stage == "mid-headers":
                        head = request.split(b"\r\n\r\n")[0]
                        await loop.sock_sendall(sock, head[: rng.randint(5, len(head) - 1)])
                    elif stage == "mid-body":
                        await loop.sock_sendall(sock, request[: len(request) - rng.randint(3, 20)])
                    elif stage == "after-request":  # gone before any answer, the turn under way or not
                        await loop.sock_sendall(sock, request)
                        await asyncio.sleep(rng.uniform(0.05, 0.3))
                    else:
                        if i % 8 == 3:  # every other mid-stream drop is a session stream's
                            request = http_request(
                                "GET", f"/v1/sessions/{session_id}/stream", key, Accept="text/event-stream"
                            )
                        await loop.sock_sendall(sock, request)
                        got = b""
                        while b"\n\n" not in got.replace(b"\r\n", b"\n").partition(b"\n\n")[2]:  # an event, then gone
                            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
                            if not chunk:
                                failures.append(f"{stage}: the service closed before the first event")
                                break
                            got += chunk
                    await asyncio.sleep(rng.uniform(0, 0.05))
                except (OSError, TimeoutError) as e:
                    failures.append(f"{stage}: {type(e).__name__}: {e}")
                finally:
                    close(sock, reset)
                counts[stage] += 1

        await asyncio.gather(*(one(i) for i in range(n)))
        res.expect(not failures, f"{len(failures)} connections failed before their drop: {failures[:3]}")
        # Every turn in those sessions ends final: completed, or cancelled once the grace has passed.
        for key, session_id in sessions:
            turns = await until_final(client, key, session_id, lambda t: True, grace_s + 30)
            stuck = [t["turn_id"] for t in turns if t["status"] not in FINAL]
            res.expect(not stuck, f"session {session_id}: {len(stuck)} of {len(turns)} turns never ended")
            statuses: dict[str, int] = {}
            for t in turns:
                statuses[t["status"]] = statuses.get(t["status"], 0) + 1
            res.details[session_id] = statuses
            turn = await chat_turn(client, ctx.tally, key, "thanks!", session_id, 60)
            res.expect(turn_error(turn) is None, f"session {session_id} after the drops: {turn_error(turn)}")
    res.details["stages"] = counts
    res.note = ", ".join(f"{k} {v}" for k, v in counts.items())
    return res


# --- 3. shoppers who leave mid-turn


async def mid_turn(ctx: Context, svc: Service, n: int, grace_s: float) -> Result:
    """`n` shoppers each read a turn up to its first product card or token and disconnect. Half come back within the
    resume grace with Last-Event-ID and must get the rest of the turn to `done`, the stored answer equal to all they
    read; the others stay away, and their turn must be stored final (completed, or cancelled after the grace) with
    a log that ends in `done`. Every session then takes another turn."""
    res = Result()
    async with ctx.client(svc.base_url) as client:

        async def one(i: int) -> None:
            key = (WIDGET_A, WIDGET_B)[i % 2]
            headers = {**bearer(key), "Accept": "text/event-stream"}
            first: list[tuple[str, dict[str, Any], str | None]] = []
            parser = SSEParser()
            async with client.stream(
                "POST", "/v1/chat", json={"message": "show me backpacks under $80"}, headers=headers
            ) as resp:
                async for line in resp.aiter_lines():
                    ev = parser.feed(line)
                    if ev is None:
                        continue
                    first.append((ev.event, json.loads(ev.data) if ev.data else {}, ev.id))
                    if ev.event in ("products", "token", "done"):
                        break
            session_id = next((d["session_id"] for e, d, _ in first if e == "session"), None)
            last_id = next((i for _, _, i in reversed(first) if i), None)
            if session_id is None or last_id is None:
                res.expect(False, f"shopper {i}: no session event before leaving")
                return
            turn_id = last_id.rsplit(":", 1)[0]
            streamed = "".join(str(d.get("text", "")) for e, d, _ in first if e == "token")
            if i % 2 == 0:  # comes back at once
                rest: list[tuple[str, dict[str, Any]]] = []
                async with client.stream(
                    "POST",
                    "/v1/chat",
                    json={"message": "(resume)", "session_id": session_id},
                    headers={**headers, "Last-Event-ID": last_id},
                ) as resp:
                    async for line in resp.aiter_lines():
                        ev = parser.feed(line)
                        if ev is not None:
                            rest.append((ev.event, json.loads(ev.data) if ev.data else {}))
                            if ev.event == "done":
                                break
                streamed += "".join(str(d.get("text", "")) for e, d in rest if e == "token")
                done = next((d.get("status") for e, d in rest if e == "done"), None)
                if first[-1][0] == "done":
                    done = first[-1][1].get("status")
                res.expect(done == "completed", f"resumed turn {turn_id}: done {done}")
                stored = await until_final(client, key, session_id, lambda t: t["turn_id"] == turn_id, 10)
                ok = bool(stored) and stored[0]["answer"] == streamed.strip()
                if not ok:
                    ctx.tally.add("lost_turns")
                res.expect(ok, f"resumed turn {turn_id}: stored answer differs from what was streamed")
            else:
                stored = await until_final(client, key, session_id, lambda t: t["turn_id"] == turn_id, grace_s + 20)
                status = stored[0]["status"] if stored else None
                res.expect(status in ("completed", "cancelled"), f"abandoned turn {turn_id}: stored {status}")
                resp = await client.get(
                    f"/v1/sessions/{session_id}/events", headers={**headers, "Last-Event-ID": f"{turn_id}:0"}
                )
                ends = [ln for ln in resp.text.splitlines() if ln.startswith("event:")][-1:]
                res.expect(ends == ["event: done"], f"abandoned turn {turn_id}: its log ends with {ends}")
            turn = await chat_turn(client, ctx.tally, key, "is the first one in stock?", session_id, 60)
            res.expect(turn_error(turn) is None, f"session {session_id} after leaving mid-turn: {turn_error(turn)}")

        await asyncio.gather(*(one(i) for i in range(n)))
    res.note = f"{n} shoppers left mid-turn, {(n + 1) // 2} came back"
    return res


# --- 4. slowloris


async def slowloris(ctx: Context, svc: Service, n: int, every_s: float, bound_s: float) -> Result:
    """`n` connections that send a request a byte every `every_s` seconds (half still in their headers, half in a
    body they declared), each for at most `bound_s`: the service must close every one of them by itself within
    `bound_s`, and answer another shopper meanwhile."""
    res = Result()
    loop = asyncio.get_running_loop()
    closed_after: list[float] = []
    held: list[str] = []

    async def one(i: int) -> None:
        request = chat_request(WIDGET_A, "show me socks")
        head, _, body = request.partition(b"\r\n\r\n")
        sock = await async_socket(svc.port)
        t0 = time.monotonic()
        try:
            if i % 2:  # whole headers, then the body a byte at a time
                await loop.sock_sendall(sock, head + b"\r\n\r\n")
                trickle = body
            else:
                trickle = request
            for b in trickle:
                try:
                    await loop.sock_sendall(sock, bytes([b]))
                    got = await asyncio.wait_for(loop.sock_recv(sock, 4096), every_s)
                except TimeoutError:
                    got = None
                except OSError:
                    got = b""
                if got == b"" or (got and b"\r\n\r\n" in got):  # closed, or answered (408) and about to close
                    closed_after.append(time.monotonic() - t0)
                    return
                if time.monotonic() - t0 > bound_s:
                    held.append(f"connection {i} still open after {bound_s:.0f} s")
                    return
            held.append(f"connection {i}: the whole request went through a byte at a time")
        finally:
            close(sock)

    stop = asyncio.Event()
    other = asyncio.create_task(others_turns(ctx, svc, WIDGET_B, stop))
    await asyncio.gather(*(one(i) for i in range(n)))
    stop.set()
    others = await other
    res.expect(not held, f"{len(held)} of {n} slow connections held: {held[:2]}")
    bad = [turn_error(t) for t in others if turn_error(t)]
    res.expect(bool(others) and not bad, f"another shopper meanwhile: {len(bad)} of {len(others)} turns broke")
    res.details = {
        "connections": n,
        "closed_by_service": len(closed_after),
        "closed_after_s_max": round(max(closed_after), 1) if closed_after else None,
        "other_shopper_turns": len(others),
    }
    res.note = f"{len(closed_after)} of {n} closed by the service, the last after {res.details['closed_after_s_max']} s"
    return res
