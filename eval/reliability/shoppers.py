"""Shoppers for the load part: each one a browser of its own (one HTTP client, its own credential) holding
multi-turn conversations with think time, the message mix of a store's chat: searches, follow-ups on what was shown,
price and stock questions, policy questions and small talk. Some keep the session stream open, as the widget does.

Credentials: the suite's two widget keys, visitor tokens for shoppers the store signed in (one per shopper), and
anonymous visitors (a new one for each conversation, as new visitors keep arriving).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from eval.reliability.client import Turn, chat_turn
from eval.reliability.stack import IDENTITY_SECRET, PAGE_ORIGIN, PUBLISHABLE, WIDGET_A, WIDGET_B
from eval.reliability.tally import Tally
from eval.sse import sse_events

GREETINGS = ["hi!", "hello there", "good morning", "hey, can you help me find something?"]
SEARCHES = [
    "show me hiking boots under $150",
    "any sneakers between 50 and 100 dollars?",
    "I need a necklace for my wife, under 50 dollars",
    "bluetooth speaker under $60",
    "I need a new office chair, budget 300",
    "I need a present for my dad, he likes fishing, under $50",
    "gift ideas for my mom who loves cooking",
    "something to keep me warm in winter under 100 dollars",
    "show me backpacks",
    "show me cameras under $500",
    "show me headphones",
    "show me denim jackets",
    "show me christmas decorations under $30",
    "show me bowls",
    "reading glasses",
    "a waterproof jacket for hiking",
]
FOLLOW_UPS = [
    "show me cheaper ones",
    "tell me more about the second one",
    "compare the first two",
    "do they come in black?",
    "which one is the cheapest?",
    "anything similar in blue?",
]
PRICE_STOCK = [
    "how much is the first one?",
    "what's the price of the last one",
    "is the second one in stock?",
    "is the third one available in red?",
    "which is cheaper, the first or the second?",
]
POLICIES = [
    "what is your return policy?",
    "how long does shipping take?",
    "do you offer express shipping?",
    "how long do refunds take?",
    "can I return boots I've already worn outside?",
    "do you price match?",
]
SMALL_TALK = ["thanks!", "that's helpful, thank you", "you're great", "ok cool", "haha nice"]
GOODBYES = ["thanks, bye!", "that's all, thank you", "great, thanks for the help"]

# What follows an answer: (kind, messages, weight).
NEXT = [
    ("follow_up", FOLLOW_UPS, 3),
    ("price_stock", PRICE_STOCK, 3),
    ("policy", POLICIES, 2),
    ("search", SEARCHES, 2),
    ("small_talk", SMALL_TALK, 1),
]


def conversation(rng: random.Random) -> list[tuple[str, str]]:
    """One conversation's messages, (kind, text): maybe a greeting, a search, 1-4 more, maybe a goodbye."""
    turns: list[tuple[str, str]] = []
    if rng.random() < 0.3:
        turns.append(("small_talk", rng.choice(GREETINGS)))
    if rng.random() < 0.15:  # some shoppers come with a policy question only
        turns.append(("policy", rng.choice(POLICIES)))
    else:
        turns.append(("search", rng.choice(SEARCHES)))
    for _ in range(rng.randint(1, 4)):
        kind, texts, _w = rng.choices(NEXT, weights=[w for *_, w in NEXT])[0]
        turns.append((kind, rng.choice(texts)))
    if rng.random() < 0.4:
        turns.append(("small_talk", rng.choice(GOODBYES)))
    return turns


@dataclass
class TurnRecord:
    """One turn as a shopper's client saw it."""

    shopper: int
    kind: str
    message: str
    started: float  # seconds since the soak began
    status: int
    done: str | None
    first_event_s: float | None
    total_s: float
    session_id: str | None
    turn_id: str | None
    text: str
    error: str | None  # why this turn counts as broken: non-200, error event, broken or hung stream, not completed

    @staticmethod
    def of(shopper: int, kind: str, message: str, started: float, total_s: float, turn: Turn) -> TurnRecord:
        return TurnRecord(
            shopper,
            kind,
            message,
            round(started, 3),
            turn.status,
            turn.done,
            turn.first_event_s,
            total_s,
            turn.session_id,
            turn.turn_id,
            turn.text,
            turn_error(turn),
        )


def turn_error(turn: Turn) -> str | None:
    if turn.hung:
        return "hung: no done within the deadline"
    if turn.broken:
        return f"broken: {turn.broken}"
    if turn.status != 200:
        return f"HTTP {turn.status}: {json.dumps(turn.body)[:160]}"
    if errors := turn.named("error"):
        return f"error event: {json.dumps(errors[0])[:160]}"
    if turn.done != "completed":
        return f"done {turn.done}"
    return None


@dataclass
class Conversation:
    """A session as its shopper holds it: the credential that reads it and the turns it saw `done` for."""

    shopper: int
    key: str
    session_id: str
    done_turns: dict[str, str] = field(default_factory=dict)  # turn id -> the text streamed
    stream_done: set[str] = field(default_factory=set)  # turn ids whose `done` the session stream delivered
    stream_error: str | None = None


async def visitor_token(client: httpx.AsyncClient, shopper_id: str | None) -> str:
    """A visitor token from the publishable key, as the widget gets one: signed-in (store-signed id) or anonymous."""
    from assistant.visitors import sign_shopper_id

    body: dict[str, Any] = {}
    if shopper_id is not None:
        body = {"shopper_id": shopper_id, "shopper_signature": sign_shopper_id(IDENTITY_SECRET, shopper_id)}
    resp = await client.post("/v1/visitors", json=body, headers={"X-Widget-Key": PUBLISHABLE, "Origin": PAGE_ORIGIN})
    resp.raise_for_status()
    return str(resp.json()["token"])


class Shopper:
    """One shopper: conversations one after another until `until` (monotonic), recording every turn."""

    def __init__(
        self,
        n: int,
        client: httpx.AsyncClient,
        tally: Tally,
        t0: float,
        *,
        think_s: tuple[float, float] = (0.5, 2.5),
        watch_stream: bool = False,
        deadline_s: float = 60.0,
        max_conversations: int | None = None,
    ) -> None:
        self.n = n
        self.client = client
        self.tally = tally
        self.t0 = t0
        self.rng = random.Random(1000 + n)
        self.think_s = think_s
        self.watch_stream = watch_stream
        self.deadline_s = deadline_s
        self.max_conversations = max_conversations
        self.turns: list[TurnRecord] = []
        self.conversations: list[Conversation] = []
        self.setup_errors: list[str] = []

    @property
    def kind(self) -> str:
        return "widget" if self.n < 2 else "signed" if self.n % 2 == 0 else "anonymous"

    async def credential(self) -> str:
        if self.n == 0:
            return WIDGET_A
        if self.n == 1:
            return WIDGET_B
        if self.n % 2 == 0:
            if not hasattr(self, "_signed"):
                self._signed = await visitor_token(self.client, f"load-{self.n}")
            return self._signed
        return await visitor_token(self.client, None)  # a new anonymous visitor

    async def run(self, until: float) -> None:
        # Shoppers arrive over the first seconds, not all at once.
        await asyncio.sleep(self.rng.uniform(0, 3))
        while time.monotonic() < until:
            if self.max_conversations is not None and len(self.conversations) >= self.max_conversations:
                return
            try:
                key = await self.credential()
            except httpx.HTTPError as e:
                self.setup_errors.append(f"visitor token: {type(e).__name__}: {e}"[:200])
                await asyncio.sleep(1)
                continue
            await self.converse(key, until)
            await asyncio.sleep(self.rng.uniform(*self.think_s))

    async def converse(self, key: str, until: float) -> None:
        session_id: str | None = None
        conv: Conversation | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            for kind, message in conversation(self.rng):
                if time.monotonic() >= until:
                    break
                start = time.perf_counter()
                turn = await chat_turn(
                    self.client, self.tally, key, message, session_id=session_id, deadline_s=self.deadline_s
                )
                rec = TurnRecord.of(self.n, kind, message, start - self.t0, time.perf_counter() - start, turn)
                self.turns.append(rec)
                if session_id is None and turn.session_id:
                    session_id = turn.session_id
                    conv = Conversation(self.n, key, session_id)
                    self.conversations.append(conv)
                    if self.watch_stream:
                        watcher = asyncio.create_task(self.watch(conv, turn.last_id))
                if conv is not None and turn.done is not None and turn.turn_id:
                    conv.done_turns[turn.turn_id] = turn.text
                if session_id is None:  # the first turn failed before its session: start over next time
                    break
                await asyncio.sleep(self.rng.uniform(*self.think_s))
        finally:
            if watcher is not None and conv is not None:
                # The session stream had the think time to deliver the last `done`; give a straggler a moment.
                for _ in range(20):
                    if set(conv.done_turns) <= conv.stream_done or watcher.done():
                        break
                    await asyncio.sleep(0.1)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def watch(self, conv: Conversation, after: str | None) -> None:
        """The widget's session stream, from the first turn's last event on: notes every `done` it delivers."""
        headers = {"Authorization": f"Bearer {conv.key}", "Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = after
        try:
            async with self.client.stream(
                "GET", f"/v1/sessions/{conv.session_id}/stream", headers=headers, timeout=httpx.Timeout(30, read=None)
            ) as resp:
                if resp.status_code != 200:
                    conv.stream_error = f"session stream HTTP {resp.status_code}"
                    return
                if after:
                    conv.stream_done.add(after.rsplit(":", 1)[0])  # the first turn's done came on the chat stream
                async for ev in sse_events(resp.aiter_lines()):
                    if ev.event == "done":
                        conv.stream_done.add(str(json.loads(ev.data).get("turn_id")))
        except httpx.HTTPError as e:
            conv.stream_error = f"session stream broke: {type(e).__name__}: {e}"[:200]
