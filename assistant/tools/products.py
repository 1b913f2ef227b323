"""Catalog tools: search_products, get_product, compare_products. Every fact comes from the catalog record."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.tools.base import Tool, ToolContext, ToolDeps, ToolError, ToolOutput
from retrieval.cards import SEARCH_FIELDS, ProductCard
from retrieval.filters import FilterParams
from retrieval.personalization import ProfileStore
from retrieval.product import Product
from retrieval.search import SearchEngine, SearchResult

# Catalog bookkeeping, not something a shopper compares on.
HIDDEN_ATTRIBUTES = frozenset({"where_visible", "promoted"})
SIZE_KEYS = ("size", "sizes")


def product_ref(product_id: str) -> str:
    return f"product:{product_id}"


def _normalise_id(pid: str) -> str:
    pid = pid.strip()
    return pid.removeprefix("product:").strip()


def product_detail(p: Product) -> dict[str, Any]:
    """The card's catalog facts plus description, bullet points and attributes."""
    card = ProductCard.of(p).model_dump(exclude=SEARCH_FIELDS)
    card["description"] = p.description
    card["bullet_points"] = list(p.bullet_points)
    card["attributes"] = {k: v for k, v in p.attributes.items() if k not in HIDDEN_ATTRIBUTES}
    return card


def _sizes_of(p: Product) -> set[str] | None:
    for key in SIZE_KEYS:
        value = p.attributes.get(key)
        if value is not None:
            return {s.strip().lower() for s in str(value).replace(";", ",").split(",") if s.strip()}
    return None


class SearchProductsArgs(FilterParams):
    """Arguments of search_products: a query, the filter parameters, a size and how many."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500, description="what the shopper wants, in their words")
    size: str | None = Field(default=None, max_length=40, description="wanted size, e.g. 'M' or '42'")
    limit: int = Field(default=5, ge=1, le=20, description="how many products to return")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @model_validator(mode="after")
    def _consistent(self) -> SearchProductsArgs:
        self.filters()  # contradicting filters are bad arguments (FilterError is a ValueError)
        return self


class GetProductArgs(BaseModel):
    """Arguments of get_product."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=300, description="catalog id of the product")


class CompareProductsArgs(BaseModel):
    """Arguments of compare_products."""

    model_config = ConfigDict(extra="forbid")

    product_ids: list[str] = Field(min_length=2, max_length=4, description="2 to 4 catalog product ids")

    @field_validator("product_ids")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        ids = [_normalise_id(p) for p in v]
        if any(not p for p in ids):
            raise ValueError("product ids must not be blank")
        if len(set(ids)) != len(ids):
            raise ValueError("product ids must be distinct")
        return ids


def search_products(
    engine: SearchEngine, profiles: ProfileStore | None, args: SearchProductsArgs, ctx: ToolContext
) -> ToolOutput:
    """Catalog search with the filters, personalised when the shopper has a profile."""
    profile = profiles.get(ctx.shopper_id) if profiles is not None else None
    if profile is not None and profile.is_empty():
        profile = None
    # A size is only checked where the catalog records sizes, so fetch extra to filter afterwards.
    k = args.limit * 3 if args.size else args.limit
    filters = args.filters()
    results = engine.search(args.query, filters=filters, k=k, mode="full", profile=profile)
    notes: list[str] = []
    if args.size:
        results, note = _apply_size(results, args.size)
        if note:
            notes.append(note)
    results = results[: args.limit]
    cards = [ProductCard.of(r.product, r).model_dump() for r in results]
    data: dict[str, Any] = {
        "query": args.query,
        "filters": filters.model_dump(exclude_none=True),
        "personalized": profile is not None,
        "count": len(cards),
        # Raw query-to-product cosine of the best result: low means the store does not carry what was asked.
        "best_match": round(engine.best_similarity(args.query, [c["id"] for c in cards]), 4),
        "products": cards,
    }
    if notes:
        data["notes"] = notes
    return ToolOutput(data=data, citations=[product_ref(c["id"]) for c in cards])


def get_product(engine: SearchEngine, args: GetProductArgs, ctx: ToolContext) -> ToolOutput:
    """One product's full catalog record."""
    pid = _normalise_id(args.product_id)
    product = engine.get_products([pid]).get(pid)
    if product is None:
        raise ToolError("That product isn't in our catalog any more.", {"product_id": pid})
    return ToolOutput(data={"product": product_detail(product)}, citations=[product_ref(pid)])


def compare_products(engine: SearchEngine, args: CompareProductsArgs, ctx: ToolContext) -> ToolOutput:
    """A side-by-side table of 2-4 catalog products."""
    found = engine.get_products(args.product_ids)
    missing = [pid for pid in args.product_ids if pid not in found]
    if missing:
        some = "That product isn't" if len(missing) == 1 else "Some of those products aren't"
        raise ToolError(f"{some} in our catalog any more.", {"missing": missing})
    products = [found[pid] for pid in args.product_ids]
    table = compare_table(products)
    return ToolOutput(data=table, citations=[product_ref(p.id) for p in products])


def tools(deps: ToolDeps) -> list[Tool]:
    """The catalog tools over deps.engine (none without one); deps.profiles personalise search."""
    if deps.engine is None:
        return []
    engine = deps.engine
    return [
        Tool(
            "search_products",
            "Search the store catalog. Returns product cards (id, title, price, currency, stock, brand, color, "
            "category, rating, image) ranked for this shopper. Put hard constraints in the filters.",
            SearchProductsArgs,
            partial(search_products, engine, deps.profiles),
        ),
        Tool(
            "get_product",
            "Full catalog record of one product by id: price, stock, description, attributes.",
            GetProductArgs,
            partial(get_product, engine),
        ),
        Tool(
            "compare_products",
            "Side-by-side table of 2-4 products (price, rating, stock, brand, color, category, attributes) "
            "with the differing fields flagged.",
            CompareProductsArgs,
            partial(compare_products, engine),
        ),
    ]


def _apply_size(results: list[SearchResult], size: str) -> tuple[list[SearchResult], str | None]:
    """Drop products whose recorded sizes exclude `size`; products without size data stay, flagged."""
    wanted = size.strip().lower()
    kept: list[SearchResult] = []
    unknown = 0
    for r in results:
        sizes = _sizes_of(r.product)
        if sizes is None:
            unknown += 1
            kept.append(r)
        elif wanted in sizes:
            kept.append(r)
    note = None
    if unknown:
        note = f"the catalog records no sizes for {unknown} of these products: size {size!r} is not confirmed"
    return kept, note


def compare_table(products: list[Product]) -> dict[str, Any]:
    """Rows of catalog fields across products; `differs` flags rows whose values are not all equal."""
    cards = [ProductCard.of(p) for p in products]
    fields = ["price", "currency", "rating", "rating_count", "stock", "in_stock", "brand", "color", "category"]
    attr_keys = sorted({k for p in products for k in p.attributes if k not in HIDDEN_ATTRIBUTES})
    rows: list[dict[str, Any]] = []
    for f in fields:
        rows.append(_row(f, [getattr(c, f) for c in cards], [p.id for p in products]))
    for key in attr_keys:
        rows.append(_row(f"attributes.{key}", [p.attributes.get(key) for p in products], [p.id for p in products]))
    return {
        "products": [c.model_dump(include={"id", "title", "image"}) for c in cards],
        "rows": rows,
        "differences": [r["field"] for r in rows if r["differs"]],
    }


def _row(field: str, values: list[Any], ids: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"field": field, "values": values, "differs": len({repr(v) for v in values}) > 1}
    known = [(v, pid) for v, pid in zip(values, ids, strict=True) if isinstance(v, int | float)]
    if row["differs"] and len(known) >= 2 and field in ("price", "rating"):
        # Lowest price wins; highest rating wins.
        pick = min(known) if field == "price" else max(known)
        row["best"] = pick[1]
    return row
