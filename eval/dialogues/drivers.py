"""How scenarios reach the assistant: in-process (the service's own turn engine, no HTTP; its stores are read for
the end state) or over HTTP against any running deployment (SSE; the end state read from the tools' results)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from assistant.principal import Principal
from assistant.services import Services
from assistant.sessions.models import StoredEvent
from assistant.stores.demo_orders import order_id_for
from assistant.stores.orders import ORDER, Order, OrderItem
from eval.dialogues.record import Event, State, TurnRecord
from eval.dialogues.scenario import OrderFixture, PriorEvent, Scenario
from eval.sse import sse_events
from retrieval.personalization import Event as BehaviourEvent
from retrieval.personalization import refresh_profile
from retrieval.product import Product

STATE_TOOLS = ("add_to_cart", "remove_from_cart", "view_cart")


class Driver(Protocol):
    name: str

    def skip_reason(self, scenario: Scenario) -> str | None:
        """Why this driver cannot run the scenario (None: it can)."""
        ...

    async def prepare(self, scenario: Scenario, shopper_id: str) -> list[str]:
        """Give the shopper its prior behaviour and fixture orders; the orders' ids."""
        ...

    async def send(self, scenario: Scenario, shopper_id: str, session_id: str | None, message: str) -> TurnRecord: ...

    async def traces(self, scenario: Scenario, session_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each turn's tool trace, by turn id."""
        ...

    async def state(
        self, scenario: Scenario, shopper_id: str, session_id: str | None, order_ids: list[str]
    ) -> State: ...

    def catalog(self, scenario: Scenario) -> dict[str, Product]:
        """The catalog the scenario's answers are checked against."""
        ...

    def model_name(self) -> str | None:
        """The model that phrased the answers, when this driver knows it."""
        ...

    async def aclose(self) -> None: ...


def fixture_orders(
    scenario: Scenario, shopper_id: str, catalog: dict[str, Product], now: datetime, salt: str = ""
) -> list[Order]:
    """The scenario's fixture orders as stored orders: a fixed id where the fixture gives one, else an id drawn from
    the shopper and `salt` (a new one per trial, so no trial sees another's changes)."""
    out = []
    for k, fx in enumerate(scenario.shopper.orders, start=1):
        order_id = fx.id or order_id_for(0, f"{shopper_id}|{salt}", k)
        out.append(_order(fx, order_id, shopper_id, catalog, now))
    return out


def _order(fx: OrderFixture, order_id: str, shopper_id: str, catalog: dict[str, Product], now: datetime) -> Order:
    created = now - timedelta(days=fx.days_ago)
    items = []
    for line in fx.items:
        product = catalog.get(line.product_id)
        if product is None:
            raise ValueError(f"fixture order names product {line.product_id!r}, which the catalog does not hold")
        price = float(product.price or 0.0)
        items.append(OrderItem(product_id=product.id, title=product.title, unit_price=price, quantity=line.quantity))
    shipped = fx.status in ("shipped", "delivered")
    return Order(
        order_id=order_id,
        shopper_id=shopper_id,
        status=fx.status,
        items=items,
        created_at=created,
        shipped_at=created + timedelta(hours=12) if shipped else None,
        delivered_at=min(created + timedelta(days=2), now - timedelta(hours=1)) if fx.status == "delivered" else None,
        cancelled_at=created + timedelta(hours=1) if fx.status == "cancelled" else None,
        tracking="1ZEVAL" + order_id[-6:] if shipped else None,
    )


class InProcessDriver:
    """Turns through `ChatService` in this process, one Services per catalog (built on first use by `build`, with
    the products the run's scenarios add to that catalog)."""

    name = "in-process"

    def __init__(self, build: Callable[[str, list[Product]], Any], scenarios: Sequence[Scenario] = ()) -> None:
        self._build = build  # (catalog name, extra products) -> awaitable Services
        self._additions: dict[str, list[Product]] = {}
        self._trials = 0
        for s in scenarios:
            self._additions.setdefault(s.catalog, []).extend(p.product() for p in s.catalog_additions)
        self._services: dict[str, Services] = {}
        self._catalogs: dict[str, dict[str, Product]] = {}

    async def services(self, scenario: Scenario) -> Services:
        if scenario.catalog not in self._services:
            extra = self._additions.get(scenario.catalog, [])
            self._services[scenario.catalog] = await self._build(scenario.catalog, extra)
        return self._services[scenario.catalog]

    def skip_reason(self, scenario: Scenario) -> str | None:
        return None

    def model_name(self) -> str | None:
        llm = next(iter(self._services.values())).llm if self._services else None
        return getattr(llm, "model", None) if llm is not None else None

    def catalog(self, scenario: Scenario) -> dict[str, Product]:
        services = self._services[scenario.catalog]
        if scenario.catalog not in self._catalogs:
            ids = list(services.engine.lexical.ids)
            self._catalogs[scenario.catalog] = services.engine.get_products(ids)
        return self._catalogs[scenario.catalog]

    async def prepare(self, scenario: Scenario, shopper_id: str) -> list[str]:
        services = await self.services(scenario)
        if scenario.shopper.events:
            await asyncio.to_thread(_record_events, services, shopper_id, scenario.shopper.events)
        stores = services.stores
        assert stores is not None, "in-process services need their stores"
        if scenario.shopper.id is not None:  # a named shopper: each trial starts with an empty cart
            for pid, _ in await asyncio.to_thread(stores.carts.items, shopper_id):
                await asyncio.to_thread(stores.carts.remove, shopper_id, pid)
        if not scenario.shopper.orders:
            return []
        self._trials += 1
        orders = fixture_orders(scenario, shopper_id, self.catalog(scenario), datetime.now(UTC), str(self._trials))
        for order in orders:  # a fixed id is written afresh: an earlier trial may have changed it
            await asyncio.to_thread(stores.records.delete, ORDER, order.order_id)
        await asyncio.to_thread(stores.orders.add, orders)
        return [o.order_id for o in orders]

    async def send(self, scenario: Scenario, shopper_id: str, session_id: str | None, message: str) -> TurnRecord:
        services = await self.services(scenario)
        principal = Principal(key_id=f"eval:{shopper_id}", role="widget", shopper_id=shopper_id)
        record = TurnRecord(message=message, session_id=session_id)
        t0 = time.perf_counter()
        try:
            opened = await services.chat.open(principal, message, session_id, None)
            record.session_id = opened.session.session_id
            await _collect(record, services.chat.stream(principal, opened), t0)
        except Exception as e:  # a refused message (domain error) is a result to check, not a crash
            record.error = f"{type(e).__name__}: {e}"
        record.turn_ms = (time.perf_counter() - t0) * 1000
        return record

    async def traces(self, scenario: Scenario, session_id: str) -> dict[str, list[dict[str, Any]]]:
        services = await self.services(scenario)
        session = await services.sessions.get_session(session_id)
        return {t.turn_id: list(t.tool_trace) for t in session.turns} if session else {}

    async def state(self, scenario: Scenario, shopper_id: str, session_id: str | None, order_ids: list[str]) -> State:
        services = await self.services(scenario)
        stores = services.stores
        assert stores is not None
        state = State(source="stores")
        state.cart = dict(await asyncio.to_thread(stores.carts.items, shopper_id))
        for oid in order_ids:
            order = await asyncio.to_thread(stores.orders.get, oid)
            if order is not None:
                state.orders[oid] = {"status": order.status, "returns": [r.return_id for r in order.returns]}
        if session_id is not None:
            tickets = await asyncio.to_thread(stores.handoffs.for_session, session_id)
            state.handoffs = [t.ticket_id for t in tickets if t.status == "open"]
        return state

    async def aclose(self) -> None:
        for services in self._services.values():
            await services.close()


def _record_events(services: Services, shopper_id: str, events: list[PriorEvent]) -> None:
    profiles = services.catalog.profiles
    if profiles is None:
        raise RuntimeError("this service has no personalization store; a scenario with prior events needs one")
    now = datetime.now(UTC)
    profiles.add_events(
        [
            BehaviourEvent(shopper_id=shopper_id, product_id=e.product_id, kind=e.kind, ts=now - timedelta(minutes=i))
            for i, e in enumerate(reversed(events))
        ]
    )
    refresh_profile(profiles, services.engine, shopper_id)


async def _collect(record: TurnRecord, events: AsyncIterator[StoredEvent], t0: float) -> None:
    async for ev in events:
        record.events.append(Event(ev.event, ev.id, dict(ev.data), (time.perf_counter() - t0) * 1000))
        if ev.event == "session":
            record.session_id, record.turn_id = ev.data.get("session_id"), ev.data.get("turn_id")


class HttpDriver:
    """Turns over `POST /v1/chat` (SSE) against a running deployment, with an agent key that names each
    scenario's shopper and reads the sessions back. Fixture orders cannot be created over HTTP: such scenarios
    are skipped. The end state is read from the tools' results in the session's trace."""

    name = "http"

    def __init__(self, base_url: str, api_key: str, catalogs: dict[str, dict[str, Product]], timeout_s: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.catalogs = catalogs
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0))

    def skip_reason(self, scenario: Scenario) -> str | None:
        if scenario.catalog_additions:
            return "adds products to the catalog, which only an in-process run can do"
        if scenario.shopper.orders:
            return "needs fixture orders, which only an in-process run can create"
        if scenario.catalog not in self.catalogs:
            return f"the {scenario.catalog!r} catalog is not the deployment's (--catalog)"
        return None

    def catalog(self, scenario: Scenario) -> dict[str, Product]:
        return self.catalogs[scenario.catalog]

    def model_name(self) -> str | None:
        return None  # the deployment's: not exposed over the API

    async def prepare(self, scenario: Scenario, shopper_id: str) -> list[str]:
        if scenario.shopper.events:
            body = {
                "events": [
                    {"product_id": e.product_id, "kind": e.kind, "shopper_id": shopper_id}
                    for e in scenario.shopper.events
                ]
            }
            resp = await self.client.post(f"{self.base_url}/v1/events", json=body, headers=self.headers)
            if resp.status_code != 202:
                raise RuntimeError(f"POST /v1/events: HTTP {resp.status_code}: {resp.text[:200]}")
        return []

    async def send(self, scenario: Scenario, shopper_id: str, session_id: str | None, message: str) -> TurnRecord:
        body: dict[str, Any] = {"message": message}
        body.update({"session_id": session_id} if session_id else {"shopper_id": shopper_id})
        record = TurnRecord(message=message, session_id=session_id)
        t0 = time.perf_counter()
        headers = {**self.headers, "Accept": "text/event-stream"}
        try:
            async with self.client.stream("POST", f"{self.base_url}/v1/chat", json=body, headers=headers) as resp:
                if resp.status_code != 200:
                    record.error = f"HTTP {resp.status_code}: {(await resp.aread()).decode(errors='replace')[:200]}"
                else:
                    async for ev in sse_events(resp.aiter_lines()):
                        data = json.loads(ev.data) if ev.data else {}
                        record.events.append(Event(ev.event, ev.id, data, (time.perf_counter() - t0) * 1000))
                        if ev.event == "session":
                            record.session_id, record.turn_id = data.get("session_id"), data.get("turn_id")
        except (httpx.HTTPError, json.JSONDecodeError) as e:
            record.error = f"{type(e).__name__}: {e}"
        record.turn_ms = (time.perf_counter() - t0) * 1000
        return record

    async def traces(self, scenario: Scenario, session_id: str) -> dict[str, list[dict[str, Any]]]:
        resp = await self.client.get(f"{self.base_url}/v1/sessions/{session_id}", headers=self.headers)
        if resp.status_code != 200:
            return {}
        return {t["turn_id"]: list(t.get("tool_trace") or []) for t in resp.json().get("turns") or []}

    async def state(self, scenario: Scenario, shopper_id: str, session_id: str | None, order_ids: list[str]) -> State:
        state = State(source="tool results")
        if session_id is None:
            return state
        traces = await self.traces(scenario, session_id)
        for trace in traces.values():
            for call in trace:
                data = call.get("data") or {}
                if call.get("ok") and call.get("name") in STATE_TOOLS and "cart" in data:
                    state.cart = {i["product_id"]: int(i["quantity"]) for i in data["cart"].get("items", [])}
                if call.get("ok") and call.get("name") == "handoff_to_human" and data.get("ticket_id"):
                    state.handoffs.append(str(data["ticket_id"]))
        return state

    async def aclose(self) -> None:
        await self.client.aclose()


def load_catalog_file(path: Path, fmt: str) -> dict[str, Product]:
    from retrieval.catalog import load_catalog

    return {p.id: p for p in load_catalog(path, fmt).products}
