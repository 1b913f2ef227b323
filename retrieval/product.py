"""The catalog's product record and the hashes that drive incremental indexing."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Bounds that reject absurd rows instead of letting them bloat the index.
MAX_TITLE = 1_000
MAX_TEXT = 50_000
MAX_BULLETS = 100
MAX_PRICE = 10_000_000.0

# A URL scheme at the start of an image value (two letters or more: `C:\img.jpg` is a Windows path, not a scheme).
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]+):", re.IGNORECASE)
_URL_TABS = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL ("java\nscript:" is javascript:)
_URL_EDGES = "".join(map(chr, range(0x21)))  # and these at its ends

ProductId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
AttrValue = str | int | float | bool


class Product(BaseModel):
    """One catalog item, normalised from any source format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProductId
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    bullet_points: list[Annotated[str, StringConstraints(max_length=MAX_TEXT)]] = Field(
        default_factory=list, max_length=MAX_BULLETS
    )
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None
    color: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None
    category_path: list[Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]] = Field(
        default_factory=list, max_length=12
    )
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3, to_upper=True)] = "USD"
    rating: float | None = Field(default=None, ge=0, le=5, allow_inf_nan=False)
    rating_count: int | None = Field(default=None, ge=0)
    stock: int | None = Field(default=None, ge=0, le=1_000_000_000)
    image: Annotated[str, StringConstraints(max_length=2048)] | None = None
    attributes: dict[str, AttrValue] = Field(default_factory=dict, max_length=200)

    @field_validator("brand", "color", "image", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("price", "rating", "rating_count", "stock", mode="before")
    @classmethod
    def _not_a_boolean(cls, v: object) -> object:
        if isinstance(v, bool):  # lax validation would read true as 1
            raise ValueError("expected a number, got a boolean")
        return v

    @field_validator("image", mode="after")
    @classmethod
    def _image_is_http_or_a_path(cls, v: str | None) -> str | None:
        """An image is an http(s) URL or a file path: a `javascript:`, `data:` or `file:` URL is refused, as every
        page that shows the catalog would otherwise have to refuse it."""
        if v is None:
            return v
        scheme = _SCHEME.match(_URL_TABS.sub("", v).strip(_URL_EDGES))
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise ValueError(f"must be an http(s) URL or a file path, not a {scheme.group(1).lower()}: URL")
        return v

    @field_validator("category_path", "bullet_points", mode="after")
    @classmethod
    def _drop_blank(cls, v: list[str]) -> list[str]:
        return [s for s in v if s.strip()]

    @property
    def category(self) -> str | None:
        """The most specific category, or None."""
        return self.category_path[-1] if self.category_path else None

    @property
    def in_stock(self) -> bool:
        """True only when stock is known and positive: unknown stock is never claimed."""
        return self.stock is not None and self.stock > 0

    def embedding_text(self, max_chars: int = 1_000) -> str:
        """The text the text encoder sees: most discriminative fields first."""
        parts = [self.title]
        if self.brand:
            parts.append(f"Brand: {self.brand}")
        if self.color:
            parts.append(f"Color: {self.color}")
        if self.category_path:
            parts.append("Category: " + " > ".join(self.category_path))
        parts.extend(self.bullet_points)
        if self.description:
            parts.append(self.description)
        return "\n".join(parts)[:max_chars]

    def lexical_text(self) -> str:
        """The text BM25 indexes; the title is repeated to weight it above the body."""
        fields = [self.title, self.title, self.brand or "", self.color or "", " ".join(self.category_path)]
        fields.extend(self.bullet_points)
        fields.append(self.description[:4_000])
        return "\n".join(f for f in fields if f)

    def content_hash(self) -> str:
        """Hash of every field: any change to the product changes it."""
        return _sha(self.model_dump_json())

    def text_hash(self) -> str:
        """Hash of the embedding text: only changes here need a new text embedding."""
        return _sha(self.embedding_text())


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def product_from_json(raw: str) -> Product:
    """Rebuild a product stored as JSON (store metadata, caches)."""
    return Product.model_validate(json.loads(raw))
