"""Catalog loaders for JSONL, CSV and YAML with a field mapping and row-level error reports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from retrieval.product import Product

MAX_ROW_BYTES = 256 * 1024
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Format = Literal["jsonl", "csv", "yaml"]


class FieldMapping(BaseModel):
    """How source columns become Product fields.

    `fields` maps a Product field to a source key. `category_keys` lists source keys whose
    values (a string or a list of strings) are concatenated into the category path.
    `attribute_keys` are copied into `attributes`. String lists may arrive as one string
    split on `list_separator`.
    """

    name: str = "custom"
    fields: dict[str, str] = Field(default_factory=dict)
    category_keys: list[str] = Field(default_factory=list)
    attribute_keys: list[str] = Field(default_factory=list)
    list_separator: str = "\n"
    currency: str = "USD"


RETAIL_DEMO_STORE = FieldMapping(
    name="retail-demo-store",
    fields={
        "id": "id",
        "title": "name",
        "description": "description",
        "price": "price",
        "stock": "current_stock",
        "image": "image",
    },
    category_keys=["category", "style"],
    attribute_keys=["gender_affinity", "where_visible", "promoted"],
)

ESCI = FieldMapping(
    name="esci",
    fields={
        "id": "asin",
        "title": "title",
        "description": "description",
        "bullet_points": "bullet_points",
        "brand": "brand",
        "color": "color",
        "price": "price",
        "rating": "rating",
        "rating_count": "rating_count",
        "image": "image",
    },
    category_keys=["category"],
    attribute_keys=["is_book"],
)

MAPPINGS: dict[str, FieldMapping] = {m.name: m for m in (RETAIL_DEMO_STORE, ESCI)}
IDENTITY = FieldMapping(
    name="identity",
    fields={f: f for f in Product.model_fields if f not in ("category_path", "attributes")},
    category_keys=["category_path"],
)
MAPPINGS[IDENTITY.name] = IDENTITY


@dataclass(frozen=True)
class RowError:
    """A row that could not be loaded, located by file and 1-based row number."""

    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.reason}"


@dataclass
class LoadResult:
    """Loaded products and every row that was skipped, with why."""

    products: list[Product] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0

    @property
    def loaded(self) -> int:
        return len(self.products)

    @property
    def skipped(self) -> int:
        return len(self.errors)


class CatalogError(ValueError):
    """The catalog file as a whole cannot be read."""


def detect_format(path: Path) -> Format:
    """Format from the file extension."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise CatalogError(f"{path}: cannot tell the catalog format from extension {suffix!r}; use .jsonl, .csv or .yaml")


def load_catalog(path: str | Path, mapping: FieldMapping | str = "identity", fmt: Format | None = None) -> LoadResult:
    """Load a catalog file; bad rows are reported in the result, good rows still load."""
    path = Path(path)
    if isinstance(mapping, str):
        if mapping not in MAPPINGS:
            raise CatalogError(f"unknown mapping {mapping!r}; known: {', '.join(sorted(MAPPINGS))}")
        mapping = MAPPINGS[mapping]
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    fmt = fmt or detect_format(path)
    data = path.read_bytes()
    result = LoadResult()
    seen: set[str] = set()
    for row_no, raw in _ROW_READERS[fmt](data, path):
        result.rows += 1
        try:
            product = _to_product(raw, mapping)
        except _RowProblem as exc:
            result.errors.append(RowError(str(path), row_no, str(exc)))
            continue
        if product.id in seen:
            result.errors.append(RowError(str(path), row_no, f"duplicate id {product.id!r}; first row kept"))
            continue
        seen.add(product.id)
        result.products.append(product)
    return result


class _RowProblem(Exception):
    pass


class _Bad:
    """A row that failed before parsing (bad bytes, bad JSON, too big)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _iter_jsonl(data: bytes, path: Path) -> Iterator[tuple[int, Any]]:
    for i, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_BYTES:
            yield i, _Bad(f"row is {len(line)} bytes, over the {MAX_ROW_BYTES}-byte limit")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield i, _Bad(f"not valid UTF-8 at byte {exc.start}")
            continue
        try:
            yield i, json.loads(text)
        except json.JSONDecodeError as exc:
            yield i, _Bad(f"invalid JSON: {exc.msg} at column {exc.colno}")


def _iter_csv(data: bytes, path: Path) -> Iterator[tuple[int, Any]]:
    # surrogateescape keeps undecodable bytes visible per row instead of failing the file.
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    for i, row in enumerate(reader, start=2):  # row 1 is the header
        if None in row:
            yield i, _Bad(f"{len(row[None])} more values than header columns")  # type: ignore[index]
            continue
        yield i, row


def _iter_yaml(data: bytes, path: Path) -> Iterator[tuple[int, Any]]:
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if root is None:
        return
    if not isinstance(root, yaml.SequenceNode):
        raise CatalogError(f"{path}: expected a YAML list of products at the top level")
    for item in root.value:
        line = item.start_mark.line + 1
        try:
            yield line, _YamlLoader("").construct_document(item)
        except yaml.YAMLError as exc:
            yield line, _Bad(f"invalid YAML item: {exc}")


_ROW_READERS = {"jsonl": _iter_jsonl, "csv": _iter_csv, "yaml": _iter_yaml}


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return any("\udc80" <= ch <= "\udcff" for ch in value)
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    return False


def _as_list(value: Any, sep: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(sep) if s.strip()]
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v).strip()]
    raise _RowProblem(f"expected a string or list, got {type(value).__name__}")


def _empty_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() == "" else value


def _to_product(raw: Any, mapping: FieldMapping) -> Product:
    if isinstance(raw, _Bad):
        raise _RowProblem(raw.reason)
    if not isinstance(raw, dict):
        raise _RowProblem(f"expected an object, got {type(raw).__name__}")
    if _has_surrogates(raw):
        raise _RowProblem("not valid UTF-8")
    id_key = mapping.fields.get("id", "id")
    if raw.get(id_key) in (None, ""):
        raise _RowProblem(f"missing id (source field {id_key!r})")
    values: dict[str, Any] = {}
    for target, source in mapping.fields.items():
        if source in raw:
            values[target] = _empty_to_none(raw[source])
    if isinstance(values.get("id"), int | float) and not isinstance(values.get("id"), bool):
        values["id"] = str(values["id"])
    if "bullet_points" in values:
        values["bullet_points"] = _as_list(values["bullet_points"], mapping.list_separator)
    path: list[str] = []
    for key in mapping.category_keys:
        path.extend(_as_list(_empty_to_none(raw.get(key)), ">"))
    values["category_path"] = path
    attrs = {k: raw[k] for k in mapping.attribute_keys if raw.get(k) not in (None, "")}
    for k, v in attrs.items():
        if not isinstance(v, str | int | float | bool):
            raise _RowProblem(f"attribute {k!r} must be a scalar, got {type(v).__name__}")
    values["attributes"] = attrs
    values.setdefault("currency", mapping.currency)
    values = {k: v for k, v in values.items() if v is not None}
    try:
        return Product.model_validate(values)
    except ValidationError as exc:
        raise _RowProblem(_describe(exc, mapping)) from None


def _describe(exc: ValidationError, mapping: FieldMapping) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = err["loc"][0] if err["loc"] else "row"
        source = mapping.fields.get(str(loc), str(loc))
        parts.append(f"{source}: {err['msg']}")
    return "; ".join(parts)
