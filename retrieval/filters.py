"""Search filters, translated into a Chroma `where` clause and into a numpy mask for BM25."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from retrieval.product import Product
from retrieval.validation import errors_text

MAX_CATEGORY_DEPTH = 6


class FilterError(ValueError):
    """Filters out of range or contradicting each other; the message names each problem."""


class Filters(BaseModel):
    """Constraints every returned product must meet; unset fields constrain nothing."""

    model_config = ConfigDict(extra="forbid")

    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    brand: list[str] | None = None
    color: list[str] | None = None
    category: list[str] | None = None
    in_stock: bool | None = None
    min_rating: float | None = Field(default=None, ge=0, le=5)

    @field_validator("brand", "color", "category", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            v = [s.strip().lower() for s in v if isinstance(s, str) and s.strip()]
            return v or None
        return v

    @model_validator(mode="after")
    def _check_range(self) -> Filters:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")
        return self

    @classmethod
    def build(cls, **fields: object) -> Filters:
        """Filters from loose parameters (query string, tool call, command line); FilterError when invalid."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise FilterError(errors_text(exc)) from None

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())

    def to_where(self) -> dict[str, Any] | None:
        """A Chroma metadata filter equivalent to `matches`."""
        clauses: list[dict[str, Any]] = []
        if self.min_price is not None:
            clauses.append({"price": {"$gte": self.min_price}})
        if self.max_price is not None:
            clauses.append({"price": {"$lte": self.max_price}})
        if self.brand:
            clauses.append({"brand_lc": {"$in": self.brand}})
        if self.color:
            clauses.append({"color_lc": {"$in": self.color}})
        if self.category:
            levels = [{f"cat_{i}": {"$in": self.category}} for i in range(MAX_CATEGORY_DEPTH)]
            clauses.append({"$or": levels})
        if self.in_stock is not None:
            clauses.append({"in_stock": {"$eq": self.in_stock}})
        if self.min_rating is not None:
            clauses.append({"rating": {"$gte": self.min_rating}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, meta: dict[str, Any]) -> bool:
        """Whether one product's metadata (as from `product_metadata`) passes."""
        price, rating = meta.get("price"), meta.get("rating")
        if self.min_price is not None and (price is None or price < self.min_price):
            return False
        if self.max_price is not None and (price is None or price > self.max_price):
            return False
        if self.brand and meta.get("brand_lc") not in self.brand:
            return False
        if self.color and meta.get("color_lc") not in self.color:
            return False
        if self.category and not any(meta.get(f"cat_{i}") in self.category for i in range(MAX_CATEGORY_DEPTH)):
            return False
        if self.in_stock is not None and bool(meta.get("in_stock")) != self.in_stock:
            return False
        return not (self.min_rating is not None and (rating is None or rating < self.min_rating))


def _one_or_many(v: object) -> object:
    """A single string is a list of one."""
    return [v] if isinstance(v, str) else v


OneOrMany = Annotated[list[str] | None, BeforeValidator(_one_or_many)]


class FilterParams(BaseModel):
    """The filter parameters every adapter takes: HTTP query, LangChain tool, assistant tool, CLI."""

    # Finite numbers only: JSON has no inf or nan, and a schema's `number` means neither.
    min_price: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="lowest acceptable price")
    max_price: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="highest acceptable price")
    brand: OneOrMany = Field(default=None, description="acceptable brands (any of)")
    color: OneOrMany = Field(default=None, description="acceptable colors (any of)")
    category: OneOrMany = Field(default=None, description="acceptable categories, any level (any of)")
    in_stock: bool | None = Field(default=None, description="true: only products known to be in stock")
    min_rating: float | None = Field(
        default=None, ge=0, le=5, allow_inf_nan=False, description="lowest average rating, 0-5"
    )

    def filters(self) -> Filters:
        """These parameters as Filters, checked together (min_price above max_price); FilterError when invalid."""
        # Validation checks each field alone; a contradiction is found here, so every adapter words it the same.
        # Only FilterParams' own fields: subclasses (an endpoint's query, a tool's arguments) add others.
        return Filters.build(**self.model_dump(include=set(FilterParams.model_fields)))


def product_metadata(product: Product) -> dict[str, Any]:
    """Flat, filterable metadata; absent values are omitted so a range filter excludes them."""
    meta: dict[str, Any] = {"in_stock": product.in_stock, "title": product.title}
    if product.price is not None:
        meta["price"] = float(product.price)
    if product.rating is not None:
        meta["rating"] = float(product.rating)
    if product.rating_count is not None:
        meta["rating_count"] = int(product.rating_count)
    if product.stock is not None:
        meta["stock"] = int(product.stock)
    if product.brand:
        meta["brand_lc"] = product.brand.lower()
    if product.color:
        meta["color_lc"] = product.color.lower()
    for i, cat in enumerate(product.category_path[:MAX_CATEGORY_DEPTH]):
        meta[f"cat_{i}"] = cat.lower()
    return meta
