"""Orders, carts and handoffs over the record store: one suite, here on SQLite, in tests/integration on Redis and
PostgreSQL. Two store objects on one URL stand for two replicas of the service."""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import StateConflict
from assistant.stores import (
    MAX_QUANTITY,
    Feedback,
    NotAllowed,
    Order,
    OrderItem,
    Record,
    Stores,
    open_stores,
    seed_demo_orders,
)
from assistant.takeover import BOT, Actor, decide
from tests.unit.conftest import SMALL_CATALOG

ANNA = Actor(kind="agent", agent_id="key-anna", name="Anna")

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OpenStores = Callable[[], Stores]


def order(order_id: str, shopper: str, status: str = "placed", age_days: float = 1.0, **kw: Any) -> Order:
    items = kw.pop("items", None) or [
        OrderItem(product_id="p1", title="Red running shoes", unit_price=59.0, quantity=1),
        OrderItem(product_id="p3", title="Leather hiking boots", unit_price=149.0, quantity=2),
    ]
    created = NOW - timedelta(days=age_days)
    if status in ("shipped", "delivered"):
        kw.setdefault("shipped_at", created + timedelta(hours=12))
    if status == "delivered":
        kw.setdefault("delivered_at", created + timedelta(days=2))
    return Order(order_id=order_id, shopper_id=shopper, status=status, items=items, created_at=created, **kw)  # type: ignore[arg-type]


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads released together; their results in order (an exception is re-raised)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:  # re-raised below, in the test's thread
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


class StoresContract:
    """What every backend must do; a subclass provides the `url` fixture."""

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        raise NotImplementedError

    @pytest.fixture
    def open_replica(self, url: str) -> Iterator[OpenStores]:
        """Opens another Stores object on the same backend and namespace (another replica)."""
        namespace = f"t{uuid.uuid4().hex[:12]}"
        opened: list[Stores] = []

        def open_one() -> Stores:
            opened.append(open_stores(url, namespace=namespace))
            return opened[-1]

        yield open_one
        for s in opened:
            s.close()

    @pytest.fixture
    def stores(self, open_replica: OpenStores) -> Stores:
        return open_replica()

    # --- the record store

    def test_insert_stores_each_group_whole_or_not_at_all(self, stores: Stores) -> None:
        rec = stores.records
        a, b, c = (Record("order", k, {"n": i}, owner="u1", sort=i) for i, k in enumerate("abc"))
        seed_b = Record("order-seed", "k-b", {"order_id": "b"})
        assert rec.insert([[a]]) == 1
        # [a, c] is refused whole (a exists), [b, seed] goes in, the repeated [b] finds it.
        assert rec.insert([[a, c], [b, seed_b], [b]]) == 1
        assert set(rec.get("order", ["a", "b", "c", "zz"])) == {"a", "b"}
        assert rec.get("order-seed", ["k-b"])["k-b"].doc == {"order_id": "b"}
        assert rec.insert([[Record("order", "a", {"n": 99}, "u1")]]) == 0
        assert rec.get("order", ["a"])["a"].doc == {"n": 0}  # never overwritten
        assert rec.insert([]) == 0

    def test_update_is_one_read_modify_write(self, stores: Stores) -> None:
        rec = stores.records
        created = rec.update("cart", "k", lambda cur: Record("cart", "k", {"q": 1}, "u1", 5.0) if cur is None else None)
        assert created == Record("cart", "k", {"q": 1}, "u1", 5.0)
        bumped = rec.update("cart", "k", lambda cur: Record("cart", "k", {"q": cur.doc["q"] + 1}, "u1", 5.0))  # type: ignore[union-attr]
        assert bumped is not None and bumped.doc == {"q": 2}
        assert rec.update("cart", "k", lambda cur: None) == bumped  # None: left as it is

        def refuse(cur: Record | None) -> Record | None:
            raise NotAllowed("no")

        with pytest.raises(NotAllowed):
            rec.update("cart", "k", refuse)
        assert rec.get("cart", ["k"])["k"].doc == {"q": 2}
        with pytest.raises(ValueError, match="returned the record"):
            rec.update("cart", "k", lambda cur: Record("cart", "other", {}, "u1"))
        assert rec.update("cart", "absent", lambda cur: None) is None and rec.count("cart") == 1

    def test_listing_is_per_owner_and_kind_ordered_and_limited(self, stores: Stores) -> None:
        rec = stores.records
        rec.insert(
            [
                [Record("order", "o2", {}, "u1", 2.0)],
                [Record("order", "o1", {}, "u1", 1.0)],
                [Record("order", "o3b", {}, "u1", 3.0)],
                [Record("order", "o3a", {}, "u1", 3.0)],  # same sort value: ordered by key
                [Record("order", "x", {}, "u2", 9.0)],
                [Record("cart", "o9", {}, "u1", 9.0)],
            ]
        )
        assert [r.key for r in rec.list("order", "u1")] == ["o1", "o2", "o3a", "o3b"]
        assert [r.key for r in rec.list("order", "u1", newest_first=True)] == ["o3b", "o3a", "o2", "o1"]
        assert [r.key for r in rec.list("order", "u1", newest_first=True, limit=2)] == ["o3b", "o3a"]
        assert rec.list("order", "u1", limit=0) == [] and rec.list("order", "nobody") == []
        assert rec.keys("order") == {"o1", "o2", "o3a", "o3b", "x"} and rec.count("order") == 5
        assert rec.delete("order", "o2") and not rec.delete("order", "o2")
        assert [r.key for r in rec.list("order", "u1")] == ["o1", "o3a", "o3b"] and rec.count("order") == 4
        assert rec.keys("order-seed") == set() and rec.count("handoff") == 0

    def test_a_key_may_hold_any_characters(self, stores: Stores) -> None:
        key = "a:b|c 'd\" %_ é/\\"
        stores.records.insert([[Record("handoff", key, {"x": 1}, owner=key)]])
        assert stores.records.get("handoff", [key])[key].owner == key
        assert [r.key for r in stores.records.list("handoff", key)] == [key]

    # --- orders

    def test_orders_round_trip_newest_first(self, stores: Stores) -> None:
        orders = [order("ORD-AAAAAA", "u1", age_days=3), order("ORD-BBBBBB", "u1", age_days=1)]
        orders.append(order("ORD-CCCCCC", "u2", "delivered", age_days=9, tracking="1Z"))
        assert stores.orders.add(orders) == 3
        assert stores.orders.get("ORD-CCCCCC") == orders[2] and stores.orders.get("ORD-NOSUCH") is None
        assert [o.order_id for o in stores.orders.for_shopper("u1")] == ["ORD-BBBBBB", "ORD-AAAAAA"]
        assert [o.order_id for o in stores.orders.for_shopper("u1", limit=1)] == ["ORD-BBBBBB"]
        assert stores.orders.count() == 3 and stores.orders.order_ids() == {o.order_id for o in orders}

    def test_add_skips_orders_known_by_id_or_seed_key(self, stores: Stores) -> None:
        first = order("ORD-AAAAAA", "u1")
        assert stores.orders.add([first], ["u1#0"]) == 1
        same_key = order("ORD-DDDDDD", "u1")
        same_id = order("ORD-AAAAAA", "u9")
        fresh = order("ORD-EEEEEE", "u1")
        assert stores.orders.add([same_key, same_id, fresh], ["u1#0", "u9#0", None]) == 1
        assert stores.orders.has_seed_keys(["u1#0", "u9#0", "u2#0"]) == {"u1#0"}
        assert stores.orders.get("ORD-AAAAAA") == first and stores.orders.get("ORD-DDDDDD") is None

    def test_cancel_applies_once_and_only_before_shipping(self, stores: Stores) -> None:
        stores.orders.add([order("ORD-AAAAAA", "u1"), order("ORD-SSSSSS", "u1", "shipped")])
        cancelled, changed = stores.orders.cancel("ORD-AAAAAA", NOW)
        assert changed and cancelled.status == "cancelled" and cancelled.cancelled_at == NOW
        again, changed_again = stores.orders.cancel("ORD-AAAAAA", NOW + timedelta(hours=1))
        assert not changed_again and again == cancelled == stores.orders.get("ORD-AAAAAA")
        shipped = stores.orders.get("ORD-SSSSSS")
        with pytest.raises(NotAllowed, match="already shipped"):
            stores.orders.cancel("ORD-SSSSSS", NOW)
        assert stores.orders.get("ORD-SSSSSS") == shipped
        with pytest.raises(KeyError):
            stores.orders.cancel("ORD-NOSUCH", NOW)

    def test_returns_apply_once_per_item(self, stores: Stores) -> None:
        stores.orders.add([order("ORD-DDDDDD", "u1", "delivered", age_days=5)])
        o, info, changed = stores.orders.start_return("ORD-DDDDDD", ["p3"], "too big", NOW)
        assert changed and info.product_ids == ["p3"] and info.refund_amount == 298.0 and o.status == "delivered"
        _, same, changed = stores.orders.start_return("ORD-DDDDDD", ["p3"], "asked again", NOW)
        assert not changed and same == info
        o, rest, changed = stores.orders.start_return("ORD-DDDDDD", None, "all of it", NOW)
        assert changed and rest.product_ids == ["p1"] and o.status == "returned"
        assert stores.orders.get("ORD-DDDDDD") == o and len(o.returns) == 2

    # --- carts and handoffs

    def test_cart_adds_up_is_capped_and_keeps_the_first_added_order(self, stores: Stores) -> None:
        carts = stores.carts
        assert carts.add("u1", "p3", 2) == 2
        assert carts.add("u1", "p1", 1) == 1
        assert carts.add("u1", "p3", 1) == 3
        assert carts.items("u1") == [("p3", 3), ("p1", 1)]
        assert carts.add("u1", "p1", MAX_QUANTITY) == MAX_QUANTITY
        assert carts.items("u2") == [] and not carts.remove("u2", "p3")
        assert carts.remove("u1", "p3") and carts.items("u1") == [("p1", MAX_QUANTITY)]
        # Ids that would run together in a naive key stay apart.
        carts.add("a|b", "c", 1)
        carts.add("a", "b|c", 2)
        assert carts.items("a|b") == [("c", 1)] and carts.items("a") == [("b|c", 2)]

    def test_one_handoff_ticket_per_turn(self, stores: Stores) -> None:
        first, created = stores.handoffs.open("s1", "t1", "u1", "wants a person", NOW)
        assert created and first.ticket_id.startswith("HO-")
        again, created_again = stores.handoffs.open("s1", "t1", "u1", "asked twice", NOW + timedelta(minutes=1))
        assert not created_again and again == first and again.reason == "wants a person"
        later, _ = stores.handoffs.open("s1", "t2", "u1", "still stuck", NOW + timedelta(minutes=2))
        stores.handoffs.open("s2", "t1", "u1", "other session", NOW)
        assert [t.ticket_id for t in stores.handoffs.for_session("s1")] == [first.ticket_id, later.ticket_id]
        assert stores.handoffs.get(later.ticket_id) == later and stores.handoffs.get("HO-NOSUCH") is None

    def test_feedback_is_one_per_turn_and_a_second_rating_replaces_the_first(self, stores: Stores) -> None:
        def rate(turn: str, rating: str, at: datetime, comment: str | None = None, session: str = "s1") -> Feedback:
            return Feedback(
                session_id=session,
                turn_id=turn,
                rating=rating,  # type: ignore[arg-type]
                comment=comment,
                shopper_id="u1",
                given_by="shopper",
                key_id="key-abc/u1",
                at=at,
            )

        assert not stores.feedback.give(rate("t1", "up", NOW))
        assert not stores.feedback.give(rate("t2", "down", NOW + timedelta(minutes=1), "wrong size"))
        assert stores.feedback.give(rate("t1", "down", NOW + timedelta(minutes=2), "changed my mind"))
        stores.feedback.give(rate("t1", "up", NOW, session="s2"))
        listed = stores.feedback.for_session("s1")
        assert [(f.turn_id, f.rating, f.comment) for f in listed] == [
            ("t2", "down", "wrong size"),
            ("t1", "down", "changed my mind"),
        ]
        assert listed[1].at == NOW + timedelta(minutes=2) and listed[1].key_id == "key-abc/u1"
        assert stores.feedback.get("s1", "t1") == listed[1] and stores.feedback.get("s1", "t9") is None
        assert [f.session_id for f in stores.feedback.for_session("s2")] == ["s2"]

    def test_session_states_are_stored_and_listed_by_state_longest_first(self, stores: Stores) -> None:
        controls = stores.controls
        assert controls.get("s1") is None
        assert controls.ensure("s1", "u1").state == "bot" and controls.get("s1") == controls.ensure("s1", "u1")
        for i, sid in enumerate(["s2", "s3"]):
            before, after = controls.change(
                sid, "u1", lambda c, i=i: decide(c, "handoff", BOT, now=NOW + timedelta(minutes=-i))
            )
            assert (before.state, after.state) == ("bot", "waiting_for_agent")
        assert [c.session_id for c in controls.list(("waiting_for_agent",))] == ["s3", "s2"]
        assert [c.session_id for c in controls.list(("bot", "waiting_for_agent"))] == ["s1", "s3", "s2"]
        with pytest.raises(StateConflict):  # a refused change stores nothing
            controls.change("s1", "u1", lambda c: decide(c, "hand_back", ANNA))
        assert controls.get("s1").state == "bot"  # type: ignore[union-attr]

    # --- two replicas

    def test_two_replicas_taking_one_session_give_it_to_one_agent(self, open_replica: OpenStores) -> None:
        a, b = open_replica(), open_replica()
        a.controls.ensure("s1", "u1")
        agents = [Actor(kind="agent", agent_id=f"key-{i}", name=f"Agent {i}") for i in range(4)]

        def take(i: int) -> str | None:
            try:
                return (a, b)[i % 2].controls.change("s1", "u1", lambda c: decide(c, "take", agents[i]))[1].agent_id
            except StateConflict:
                return None

        won = [w for w in race(4, take) if w is not None]
        assert len(won) == 1 and b.controls.get("s1").agent_id == won[0]  # type: ignore[union-attr]
        assert [c.session_id for c in a.controls.list(("agent",))] == ["s1"] and not a.controls.list(("bot",))

    def test_two_replicas_cancelling_one_order_change_it_once(self, open_replica: OpenStores) -> None:
        a, b = open_replica(), open_replica()
        ids = [f"ORD-RACE{i:02d}" for i in range(8)]
        a.orders.add([order(i, "u1") for i in ids])
        for order_id in ids:
            outcomes = race(4, lambda i, oid=order_id: (a, b)[i % 2].orders.cancel(oid, NOW + timedelta(minutes=i)))
            assert sum(changed for _, changed in outcomes) == 1
            winner = next(o for o, changed in outcomes if changed)
            assert all(o == winner for o, _ in outcomes)  # the losers see the winner's cancellation
            assert b.orders.get(order_id) == winner

    def test_two_replicas_starting_one_return_start_it_once(self, open_replica: OpenStores) -> None:
        a, b = open_replica(), open_replica()
        a.orders.add([order("ORD-RETURN", "u1", "delivered", age_days=5)])
        outcomes = race(4, lambda i: (a, b)[i % 2].orders.start_return("ORD-RETURN", ["p1"], f"reason {i}", NOW))
        assert sum(changed for _, _, changed in outcomes) == 1
        assert len({info.return_id for _, info, _ in outcomes}) == 1
        assert len(a.orders.get("ORD-RETURN").returns) == 1  # type: ignore[union-attr]

    def test_cart_adds_from_two_replicas_add_up(self, open_replica: OpenStores) -> None:
        a, b = open_replica(), open_replica()

        def add_many(i: int) -> None:
            for _ in range(10):
                (a, b)[i % 2].carts.add("u1", "p1", 1)

        race(4, add_many)
        assert a.carts.items("u1") == b.carts.items("u1") == [("p1", 40)]

    def test_two_replicas_seeding_at_once_store_each_order_once(self, open_replica: OpenStores, tmp_path: Path) -> None:
        users = tmp_path / "users.json.gz"
        with gzip.open(users, "wt", encoding="utf-8") as fh:
            json.dump([{"id": str(i), "persona": "footwear_housewares_apparel"} for i in range(40)], fh)
        a, b = open_replica(), open_replica()
        added = race(2, lambda i: seed_demo_orders((a, b)[i].orders, SMALL_CATALOG, users, now=NOW))
        total = a.orders.count()
        assert sum(added) == total > 40 and len(a.orders.order_ids()) == total
        seeds = a.records.get("order-seed", [f"{i}#{k}" for i in range(40) for k in range(4)])
        assert len(seeds) == total and {r.doc["order_id"] for r in seeds.values()} == a.orders.order_ids()
        assert seed_demo_orders(b.orders, SMALL_CATALOG, users) == 0

    # --- the files of earlier versions

    def test_files_of_earlier_versions_are_imported_once(self, url: str, tmp_path: Path) -> None:
        legacy = tmp_path / "data"
        write_legacy_files(legacy)
        namespace = f"t{uuid.uuid4().hex[:12]}"

        def reopen() -> Stores:
            return open_stores(url, namespace=namespace, legacy_dir=legacy)

        with closing(reopen()) as stores:
            assert stores.orders.get("ORD-LEGACY") == LEGACY_ORDER
            assert stores.orders.has_seed_keys(["7#0"]) == {"7#0"}
            assert stores.carts.items("7") == [("p3", 2), ("p1", 1)]
            (ticket,) = stores.handoffs.for_session("s-7")
            assert (ticket.ticket_id, ticket.reason, ticket.created_at) == ("HO-0000ABCD", "a person please", NOW)
            assert sorted(p.name for p in legacy.iterdir()) == [f"{name}.imported" for name in LEGACY_NAMES]
            stores.carts.remove("7", "p3")
            stores.orders.cancel("ORD-LEGACY", NOW)
        with closing(reopen()) as stores:  # the next start imports nothing: what changed since stays changed
            assert stores.carts.items("7") == [("p1", 1)]
            assert stores.orders.get("ORD-LEGACY").status == "cancelled"  # type: ignore[union-attr]
        for f in legacy.iterdir():  # as if a replica sharing data_dir had read the files before the rename
            f.rename(f.with_suffix(""))
        with closing(reopen()) as stores:  # an import never overwrites what is stored
            assert stores.orders.get("ORD-LEGACY").status == "cancelled"  # type: ignore[union-attr]
            assert stores.orders.count() == 1 and len(stores.handoffs.for_session("s-7")) == 1


LEGACY_NAMES = ("cart.sqlite", "handoffs.sqlite", "orders.sqlite")
LEGACY_ORDER = order("ORD-LEGACY", "7")


def write_legacy_files(data_dir: Path) -> None:
    """data_dir/orders.sqlite, cart.sqlite and handoffs.sqlite as the earlier versions wrote them."""
    data_dir.mkdir(parents=True)
    o = LEGACY_ORDER
    files = {
        "orders.sqlite": (
            "CREATE TABLE orders (order_id TEXT PRIMARY KEY, shopper_id TEXT NOT NULL, status TEXT NOT NULL, "
            "created_at TEXT NOT NULL, seed_key TEXT UNIQUE, body TEXT NOT NULL)",
            [
                (
                    "INSERT INTO orders VALUES (?, ?, ?, ?, '7#0', ?)",
                    (o.order_id, "7", o.status, o.created_at.isoformat(), o.model_dump_json()),
                )
            ],
        ),
        "cart.sqlite": (
            "CREATE TABLE cart (shopper_id TEXT NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL, "
            "added_at TEXT NOT NULL, PRIMARY KEY (shopper_id, product_id))",
            [
                ("INSERT INTO cart VALUES ('7', 'p1', 1, ?)", ((NOW - timedelta(hours=1)).isoformat(),)),
                ("INSERT INTO cart VALUES ('7', 'p3', 2, ?)", ((NOW - timedelta(hours=2)).isoformat(),)),
            ],
        ),
        "handoffs.sqlite": (
            "CREATE TABLE handoffs (ticket_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, turn_id TEXT NOT NULL, "
            "shopper_id TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, "
            "UNIQUE (session_id, turn_id))",
            [
                (
                    "INSERT INTO handoffs VALUES ('HO-0000ABCD', 's-7', 't-1', '7', 'a person please', 'open', ?)",
                    (NOW.isoformat(),),
                )
            ],
        ),
    }
    for name, (schema, rows) in files.items():
        with closing(sqlite3.connect(data_dir / name)) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(schema)
            for statement, params in rows:
                db.execute(statement, params)


class TestSqliteStores(StoresContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'sessions.sqlite'}"


def test_a_bad_url_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHOP_SESSION_STORE_URL.*unknown scheme 'mysql'"):
        open_stores("mysql://db/shop")
    with pytest.raises(ValueError, match="SHOP_SESSION_STORE_URL"):
        open_stores("sqlite://relative")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RuntimeError, match="SHOP_SESSION_STORE_URL"):
        open_stores(f"sqlite:///{blocker / 'sessions.sqlite'}")


def test_stores_share_the_sessions_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    stores = open_stores(f"sqlite:///{path}")
    try:
        stores.orders.add([order("ORD-AAAAAA", "u1")])
    finally:
        stores.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT kind, key FROM shop_records").fetchall() == [("order", "ORD-AAAAAA")]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
