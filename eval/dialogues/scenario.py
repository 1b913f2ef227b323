"""The scenario format: a conversation to hold with the assistant, and what must be true of each turn and of the
state it leaves behind. Scenarios are YAML files in `eval/scenarios/` (a list of scenarios, or a mapping with
`scenarios:`); `eval/dialogues/scenario.schema.json` is this module's JSON schema, for editors.

A suite file may instead say `generate: esci` (with `queries: N`): discovery scenarios made at load time from
the judged ESCI queries in the shared data (`discovery.py`).

Product references in checks name a card shown earlier: `{turn: 1, rank: 2}` is the second card of the first turn.
A message may name the shopper's fixture orders: `{order}` (the first) or `{order:2}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retrieval.product import Product

SCHEMA_PATH = Path(__file__).with_name("scenario.schema.json")
SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
CitationKind = Literal["product", "policy", "order", "ticket"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ref(Strict):
    """The card at `rank` (from 1) of the products shown in `turn` (from 1)."""

    turn: int = Field(ge=1)
    rank: int = Field(ge=1)


class ToolCall(Strict):
    """A tool call to look for; each argument is matched as a value, a list of values (any of), or an operator
    object: {regex: …}, {contains: …}, {gte: …, lte: …}, {absent: true}."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class Trajectory(Strict):
    """The turn's tool calls: `exact` (these, in this order, and no others), `in_order` (these, in this order,
    others between allowed), `any_order` (each of these somewhere), `none` (tools that must not run)."""

    exact: list[ToolCall] | None = None
    in_order: list[ToolCall] | None = None
    any_order: list[ToolCall] | None = None
    none: list[str] | None = None


class CardFilters(Strict):
    """What every card must satisfy: the constraints the shopper asked for."""

    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    color: list[str] | None = None
    brand: list[str] | None = None
    category: list[str] | None = None
    in_stock: bool | None = None

    @field_validator("color", "brand", "category", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class ProductsCheck(Strict):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    filters: CardFilters | None = None
    include: list[Ref] | None = Field(default=None, description="cards shown earlier that must be among these")


class TextCheck(Strict):
    """Regular expressions (case-insensitive) the answer must / must not match."""

    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)

    @field_validator("contains", "not_contains", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("contains", "not_contains")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"not a regular expression: {pattern!r} ({e})") from None
        return v


class ActionCheck(Strict):
    status: Literal["needs_confirmation", "done", "refused"]
    tool: str | None = None


class Latency(Strict):
    """Budgets in milliseconds from sending the message."""

    products_ms: float | None = Field(default=None, gt=0)
    first_token_ms: float | None = Field(default=None, gt=0)
    turn_ms: float | None = Field(default=None, gt=0)


class States(Strict):
    """What the answer states about one card shown in an earlier turn or in this one, checked against the card's
    record (cards come from the catalog): `name` its title; `price` as the store writes it ($1,234.50); `stock` its
    count and "in stock", or "out of stock"; `brand`; `colour`; `rating` (4.6). A field the record lacks fails the
    check: the scenario names a card that has it."""

    ref: Ref
    fields: list[Literal["name", "price", "stock", "brand", "colour", "rating"]] = Field(min_length=1)
    where: Literal["first_sentence", "answer"] = Field(
        default="first_sentence", description="in the answer's first sentence (a direct question) or anywhere"
    )


class Personalized(Strict):
    """The same message from a fresh shopper (no history) is answered too: this shopper's cards must hold a larger
    share of `categories` than the fresh shopper's."""

    categories: list[str] = Field(min_length=1)
    min_gain: float = Field(default=0.0, ge=0, le=1, description="by at least this share")


class Expect(Strict):
    """What must be true of one turn; every check is optional."""

    intent: list[str] | None = Field(default=None, description="one of these intents")
    slots: dict[str, Any] | None = Field(default=None, description="a subset of the turn's slots")
    references: list[Ref] | None = Field(default=None, description="the products the message referred to")
    tools: Trajectory | None = None
    products: ProductsCheck | None = None
    text: TextCheck | None = None
    states: list[States] | None = Field(
        default=None, description="values the answer states about shown cards, as their records hold them"
    )
    citations: list[CitationKind] | None = Field(
        default=None, description="kinds of citation the answer carries; [] means none at all"
    )
    action: ActionCheck | None = None
    no_action: bool | None = Field(default=None, description="no action event (nothing asked to confirm, nothing done)")
    handoff: bool | None = None
    not_carried: bool | None = Field(default=None, description="the answer says the store doesn't carry it")
    no_products: bool | None = Field(default=None, description="no product cards at all")
    status: Literal["completed", "failed"] = "completed"
    latency: Latency | None = None
    personalized: Personalized | None = None

    @field_validator("intent", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class Turn(Strict):
    say: str = Field(min_length=1, max_length=2000)
    expect: Expect = Field(default_factory=Expect)


class OrderLine(Strict):
    product_id: str
    quantity: int = Field(default=1, ge=1, le=99)


class OrderFixture(Strict):
    """An order the shopper has before the conversation (in-process runs create it, afresh for every trial).
    Placed `days_ago`; a shipped one shipped 12 hours later; a delivered one arrived two days after it was placed
    (at most an hour ago), so `days_ago: 45` is past the 30-day return window."""

    id: str | None = Field(
        default=None, pattern=r"^ORD-[A-Z0-9]{6}$", description="a fixed order id (default: a new one per trial)"
    )
    status: Literal["placed", "shipped", "delivered", "cancelled"]
    days_ago: float = Field(default=3.0, ge=0)
    items: list[OrderLine] = Field(min_length=1)


class PriorEvent(Strict):
    product_id: str
    kind: Literal["view", "click", "add_to_cart", "purchase"]


class Shopper(Strict):
    """Who is chatting: a fresh shopper by default (its own id per trial), or a named one (its demo orders and
    profile apply; in-process its cart is emptied before each trial); behaviour before the chat (personalization)
    and orders (fixtures)."""

    id: str | None = Field(default=None, description="a fixed shopper id (its demo orders and profile apply)")
    events: list[PriorEvent] = Field(default_factory=list)
    orders: list[OrderFixture] = Field(default_factory=list)


class CartLine(Strict):
    product_id: str | None = None
    ref: Ref | None = None
    quantity: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> CartLine:
        if (self.product_id is None) == (self.ref is None):
            raise ValueError("a cart line names product_id or ref, not both")
        return self


class CartState(Strict):
    items: list[CartLine] = Field(default_factory=list)
    exact: bool = Field(default=False, description="true: nothing else in the cart")


class OrderState(Strict):
    order: int = Field(ge=1, description="the shopper's fixture order, from 1")
    status: Literal["placed", "shipped", "delivered", "cancelled", "returned"] | None = None
    return_started: bool | None = None


class Final(Strict):
    """The state the conversation must leave, compared with the stores (τ-bench style), not with the wording."""

    cart: CartState | None = None
    orders: list[OrderState] = Field(default_factory=list)
    handoff_open: bool | None = None


class Goal(Strict):
    """A shopper with a goal instead of fixed turns: the simulator writes their messages."""

    reason: str = Field(description="why the shopper writes, in their words")
    task: Literal["find", "track_order", "cancel_order", "return_order", "policy", "human"]
    opening: str | None = Field(
        default=None, description="the first message as written ({order} names the order); default: drawn, seeded"
    )
    known: dict[str, Any] = Field(default_factory=dict, description="what the shopper can say when asked")
    confirm: Literal["yes", "no", "change_mind"] = "yes"
    max_turns: int = Field(default=6, ge=1, le=20)


class ExtraProduct(Strict):
    """A product the scenario adds to its catalog for the run (e.g. one whose description carries an injection)."""

    id: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1)
    description: str = ""
    category: str = "misc"
    price: float | None = Field(default=None, ge=0)
    stock: int | None = Field(default=None, ge=0)

    def product(self) -> Product:
        return Product(
            id=self.id,
            title=self.title,
            description=self.description,
            category_path=[self.category],
            price=self.price,
            stock=self.stock,
        )


class Scenario(Strict):
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    catalog: Literal["demo", "esci"] = "demo"
    shopper: Shopper = Field(default_factory=Shopper)
    turns: list[Turn] = Field(default_factory=list)
    goal: Goal | None = None
    final: Final | None = None
    catalog_additions: list[ExtraProduct] = Field(
        default_factory=list, description="products added to the catalog for the run (in-process runs only)"
    )
    # Discovery scenarios (generated from judged queries): graded relevance of product ids.
    qrels: dict[str, int] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError("a name is 1-80 characters of a-z 0-9 . _ -, starting with a letter or digit")
        return v

    @model_validator(mode="after")
    def _turns_or_goal(self) -> Scenario:
        if bool(self.turns) == (self.goal is not None):
            raise ValueError("a scenario has either turns or a goal")
        for n, turn in enumerate(self.turns, start=1):
            refs = list(turn.expect.references or []) + list(
                (turn.expect.products.include or []) if turn.expect.products else []
            )
            for ref in refs:
                if ref.turn >= n:
                    raise ValueError(f"turn {n} refers to turn {ref.turn}: only earlier turns' cards can be named")
            for state in turn.expect.states or []:
                if state.ref.turn > n:
                    raise ValueError(f"turn {n} states a card of turn {state.ref.turn}: it has not been shown yet")
        for m in re.finditer(r"\{order(?::(\d+))?\}", " ".join(t.say for t in self.turns)):
            k = int(m.group(1) or 1)
            if k > len(self.shopper.orders):
                raise ValueError(f"{m.group(0)} names order {k}; the shopper has {len(self.shopper.orders)}")
        for state in self.final.orders if self.final else []:
            if state.order > len(self.shopper.orders):
                raise ValueError(f"final.orders names order {state.order}; the shopper has {len(self.shopper.orders)}")
        return self


class ScenarioError(ValueError):
    """A scenario file that does not load; the message names the file and the problem."""


def load_file(path: Path) -> list[Scenario]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: {e}") from None
    if isinstance(raw, dict) and raw.get("generate") == "esci":
        from eval.dialogues.discovery import esci_scenarios  # scenarios made from the judged ESCI queries

        return esci_scenarios(limit=raw.get("queries"))
    items = raw.get("scenarios") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise ScenarioError(f"{path}: expected a list of scenarios (or a mapping with 'scenarios:')")
    out = []
    for i, item in enumerate(items, start=1):
        try:
            out.append(Scenario.model_validate(item))
        except ValidationError as e:
            name = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}" for err in e.errors()
            )
            raise ScenarioError(f"{path}: scenario {name}: {problems}") from None
    return out


def load_suites(names: list[str], root: Path = SCENARIOS_DIR) -> list[Scenario]:
    """Scenarios of the named suites: a file path, or a name in `root` (`core` → core.yaml, core-*.yaml)."""
    scenarios: list[Scenario] = []
    for name in names:
        path = Path(name)
        files = (
            [path]
            if path.suffix in (".yaml", ".yml")
            else sorted(root.glob(f"{name}.yaml")) + sorted(root.glob(f"{name}-*.yaml"))
        )
        if not files or not all(f.is_file() for f in files):
            known = sorted({f.stem.split("-")[0] for f in root.glob("*.yaml")})
            raise ScenarioError(f"no suite {name!r}: give a .yaml file or one of {', '.join(known)}")
        for f in files:
            scenarios.extend(load_file(f))
    seen: dict[str, int] = {}
    for s in scenarios:
        seen[s.name] = seen.get(s.name, 0) + 1
    twice = sorted(n for n, c in seen.items() if c > 1)
    if twice:
        raise ScenarioError(f"scenario names must be unique; repeated: {', '.join(twice)}")
    return scenarios


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Dialogue evaluation scenario"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
