"""Catalog loading: mappings for both shared catalogs and row-level error reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.catalog import MAX_ROW_BYTES, CatalogError, FieldMapping, load_catalog
from tests.conftest import SHARED_DATA

SHARED = SHARED_DATA


def test_retail_demo_store_mapping_loads_every_product() -> None:
    result = load_catalog(SHARED / "retail-demo-store" / "products.yaml", "retail-demo-store")
    assert result.skipped == 0
    assert result.loaded == 2465
    p = result.products[0]
    assert p.title == "Adventure-Ready Expedition Backpack"
    assert p.category_path == ["accessories", "backpack"]
    assert p.price == 129.99 and p.stock == 15 and p.in_stock
    assert p.attributes["gender_affinity"] == "F"


def test_esci_mapping_splits_bullets_and_keeps_missing_price_empty() -> None:
    result = load_catalog(SHARED / "esci-subset" / "products.jsonl", "esci")
    assert result.loaded == 6764 and result.skipped == 0
    kindle = next(p for p in result.products if p.id == "B07CXG6C9W")
    assert kindle.brand == "Amazon" and kindle.color == "Black"
    assert kindle.price is None and kindle.stock is None and not kindle.in_stock
    assert len(kindle.bullet_points) == 5
    assert kindle.rating == 4.6 and kindle.rating_count == 124969


def test_bad_jsonl_rows_are_reported_with_file_and_row(tmp_path: Path) -> None:
    good = {"id": "a1", "title": "Good row", "price": 10}
    lines = [
        json.dumps(good).encode(),
        json.dumps({"title": "no id"}).encode(),
        json.dumps({"id": "a2", "title": "bad price", "price": "cheap"}).encode(),
        b'{"id": "a3", "title": "caf\xe9 latin-1"}',
        json.dumps({"id": "a4", "title": "x" * 5000}).encode(),
        b"{not json",
        json.dumps({"id": "a5", "title": "huge", "description": "y" * (MAX_ROW_BYTES + 10)}).encode(),
        json.dumps({"id": "a1", "title": "duplicate"}).encode(),
        json.dumps({"id": "a6", "title": "negative", "price": -3}).encode(),
        json.dumps({"id": "a7", "title": "Second good row", "stock": "4"}).encode(),
    ]
    path = tmp_path / "cat.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load_catalog(path)
    assert [p.id for p in result.products] == ["a1", "a7"]
    assert result.products[1].stock == 4
    assert result.rows == 10 and result.skipped == 8
    by_row = {e.row: e.reason for e in result.errors}
    assert "missing id" in by_row[2]
    assert "price" in by_row[3]
    assert "UTF-8" in by_row[4]
    assert "title" in by_row[5]
    assert "invalid JSON" in by_row[6]
    assert "byte" in by_row[7] and "limit" in by_row[7]
    assert "duplicate" in by_row[8]
    assert "price" in by_row[9]
    assert all(e.file == str(path) for e in result.errors)
    assert str(result.errors[0]).startswith(f"{path}:2:")


def test_csv_with_mapping_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_bytes(
        b"sku,name,cost,qty,dept\n"
        b"s1,Lamp,19.99,3,home>lighting\n"
        b",No id,1,1,home\n"
        b"s3,Bad qty,5,many,home\n"
        b"s4,Caf\xe9,5,1,home\n"
        b"s5,Chair,49,0,home>furniture\n"
    )
    mapping = FieldMapping(
        fields={"id": "sku", "title": "name", "price": "cost", "stock": "qty"}, category_keys=["dept"]
    )
    result = load_catalog(path, mapping)
    assert [p.id for p in result.products] == ["s1", "s5"]
    assert result.products[0].category_path == ["home", "lighting"]
    assert result.products[1].in_stock is False
    assert {e.row for e in result.errors} == {3, 4, 5}


def test_yaml_rows_report_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "cat.yaml"
    path.write_text(
        "- id: y1\n  name: Good\n  price: 3\n"
        "- name: Missing id\n  price: 4\n"
        "- id: y3\n  name: Bad stock\n  current_stock: -2\n"
    )
    result = load_catalog(path, "retail-demo-store")
    assert [p.id for p in result.products] == ["y1"]
    assert [(e.row, "missing id" in e.reason) for e in result.errors] == [(4, True), (6, False)]
    assert "current_stock" in result.errors[1].reason


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cat.txt", "x", "extension"),
        ("cat.yaml", "id: 1\nname: not a list\n", "list"),
        ("cat.yaml", "- [unclosed\n", "YAML"),
    ],
)
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_missing_file_and_unknown_mapping(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.jsonl")
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(CatalogError, match="unknown mapping"):
        load_catalog(tmp_path / "a.jsonl", "shopify")
