"""Catalog loaders for JSONL, CSV and YAML with a field mapping and row-level error reports."""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from retrieval.product import Product

MAX_ROW_BYTES = 256 * 1024
MAX_DEPTH = 32  # how deeply one row's values may nest
# How many values one row may hold, a YAML alias counted each time it is used: an alias bomb ("billion laughs") is a
# few hundred bytes on disk and billions of values once walked.
MAX_VALUES = 100_000
# What YAML allows in a stream (YAML 1.1, 5.1); anything else would fail the whole file.
_NOT_YAML_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by errors="surrogateescape"
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
    if not path.exists():
        raise CatalogError(f"{path}: catalog file not found")
    if not path.is_file():
        raise CatalogError(f"{path}: not a file")
    fmt = fmt or detect_format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror or exc}") from exc
    data = data.removeprefix(codecs.BOM_UTF8)  # a BOM is an editor's mark, not part of the first row
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
        except RecursionError:
            yield i, _Bad(f"nested more than {MAX_DEPTH} levels deep")


def _iter_csv(data: bytes, path: Path) -> Iterator[tuple[int, Any]]:
    """Rows numbered as records (row 1 is the header): a row that is not valid CSV (strict quoting, which also finds
    a file cut inside a quoted field) or is too big is reported as that row, and reading goes on."""
    # surrogateescape keeps undecodable bytes visible per row instead of failing the file.
    text = data.decode("utf-8", errors="surrogateescape")
    # A field may be as long as the file: an oversized field is that row's problem, not an error of the whole file.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CatalogError(f"{path}:1: the header row is not valid CSV: {exc}") from exc
    if header is None:
        return
    row_no = 1
    while True:
        row_no += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield row_no, _Bad(f"not valid CSV: {exc}")
            continue
        if not values:
            continue  # a blank line
        if len(values) > len(header):
            yield row_no, _Bad(f"{len(values) - len(header)} more values than header columns")
            continue
        size = sum(len(v.encode("utf-8", errors="surrogateescape")) for v in values)
        if size > MAX_ROW_BYTES:
            yield row_no, _Bad(f"row is {size} bytes, over the {MAX_ROW_BYTES}-byte limit")
            continue
        yield row_no, dict(zip(header, [*values, *[None] * (len(header) - len(values))], strict=True))


def _iter_yaml(data: bytes, path: Path) -> Iterator[tuple[int, Any]]:
    """Items numbered by the line they start on. Bytes that are not UTF-8 and characters YAML does not allow would
    fail the whole file: each is replaced before parsing and the item it falls in is reported instead."""
    text = data.decode("utf-8", errors="surrogateescape")
    bad: list[tuple[int, str]] = []

    def replace(m: re.Match[str]) -> str:
        ch = m.group()
        reason = "not valid UTF-8" if _UNDECODED.match(ch) else f"control character U+{ord(ch):04X}"
        bad.append((m.start(), reason))
        return "\ufffd"  # one character for one: the parser's character offsets still match `bad`

    text = _NOT_YAML_TEXT.sub(replace, text)
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        raise CatalogError(_yaml_problem(path, exc)) from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise CatalogError(f"{path}: not valid YAML: nested too deeply") from None
    if root is None:
        return
    if not isinstance(root, yaml.SequenceNode):
        raise CatalogError(f"{path}: expected a YAML list of products at the top level")
    bad_at = [at for at, _ in bad]
    for item in root.value:
        line = item.start_mark.line + 1
        start, end = item.start_mark.index, item.end_mark.index
        k = bisect_left(bad_at, start)
        if k < len(bad) and bad_at[k] < end:
            yield line, _Bad(bad[k][1])
            continue
        if end - start > MAX_ROW_BYTES:
            yield line, _Bad(f"item is {end - start} characters, over the {MAX_ROW_BYTES}-character limit")
            continue
        try:
            yield line, _YamlLoader("").construct_document(item)
        except yaml.MarkedYAMLError as exc:
            yield line, _Bad(f"invalid YAML item: {exc.problem}")
        except yaml.YAMLError as exc:
            yield line, _Bad(f"invalid YAML item: {exc}")
        except RecursionError:
            yield line, _Bad(f"nested more than {MAX_DEPTH} levels deep")


def _yaml_problem(path: Path, exc: yaml.MarkedYAMLError) -> str:
    """`FILE:LINE: not valid YAML: problem (context from line N)`, without the parser's "<unicode string>"."""
    where = f"{path}:{exc.problem_mark.line + 1}" if exc.problem_mark else str(path)
    context = ""
    if exc.context:
        context = f" ({exc.context}" + (f" at line {exc.context_mark.line + 1}" if exc.context_mark else "") + ")"
    return f"{where}: not valid YAML: {exc.problem or 'unreadable'}{context}"


_ROW_READERS = {"jsonl": _iter_jsonl, "csv": _iter_csv, "yaml": _iter_yaml}


def _shape_problem(raw: Any) -> str | None:
    """What makes a row's values unsafe to read further, or None: too deep, too many values (aliases counted each
    time they are used, so walking stops early on an alias bomb), bytes that were not UTF-8, a NUL character. Named
    by the row's field it was found in."""
    top = raw.items() if isinstance(raw, dict) else [("row", raw)]
    stack: list[tuple[Any, int, str]] = [(v, 1, str(k)) for k, v in top]
    seen = 0
    while stack:
        value, depth, name = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return f"{name}: more than {MAX_VALUES} values (YAML aliases counted each time they are used)"
        if depth > MAX_DEPTH:
            return f"{name}: nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, str):
            if _UNDECODED.search(value):
                return f"{name}: not valid UTF-8"
            if "\x00" in value:
                return f"{name}: contains a NUL character (U+0000)"
        elif isinstance(value, list):
            stack.extend((v, depth + 1, name) for v in value)
        elif isinstance(value, dict):
            for k, v in value.items():
                stack.append((k, depth + 1, name))
                stack.append((v, depth + 1, name))
    return None


def _as_list(value: Any, sep: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(sep) if s.strip()]
    if isinstance(value, list):
        if any(isinstance(v, list | dict) for v in value):
            raise _RowProblem("expected a list of strings, got a nested list or object")
        return [str(v) for v in value if v is not None and str(v).strip()]
    raise _RowProblem(f"expected a string or list, got {type(value).__name__}")


def _empty_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip() == "" else value


def _to_product(raw: Any, mapping: FieldMapping) -> Product:
    if isinstance(raw, _Bad):
        raise _RowProblem(raw.reason)
    if not isinstance(raw, dict):
        raise _RowProblem(f"expected an object, got {type(raw).__name__}")
    problem = _shape_problem(raw)
    if problem is not None:
        raise _RowProblem(problem)
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
        if isinstance(v, float) and not math.isfinite(v):
            raise _RowProblem(f"attribute {k!r} must be a finite number, got {v}")
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
        parts.append(f"{source}: {str(err['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)
