"""Catalog loading: mappings for both shared catalogs and row-level error reports."""

from __future__ import annotations

import codecs
import json
import time
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


def test_hostile_and_malformed_jsonl_rows_are_reported_and_good_rows_kept(tmp_path: Path) -> None:
    """A BOM, CRLF line ends, NaN and boolean prices, javascript: and data: images, deep nesting that would exhaust
    the JSON parser's recursion, a NUL: each bad row reported by row, the good rows (markup in a title is text) kept."""
    hostile = '<script>alert("x")</script> Mug'
    lines = [
        codecs.BOM_UTF8 + json.dumps({"id": "g1", "title": hostile}).encode(),
        b'{"id": "b-nan", "title": "x", "price": NaN}',
        b'{"id": "b-inf", "title": "x", "rating": Infinity}',
        json.dumps({"id": "b-bool", "title": "x", "price": True}).encode(),
        json.dumps({"id": "b-stock", "title": "x", "stock": True}).encode(),
        json.dumps({"id": "b-js", "title": "x", "image": "javascript:alert(1)"}).encode(),
        json.dumps({"id": "b-js2", "title": "x", "image": " JaVa\tScRiPt:alert(1)"}).encode(),
        json.dumps({"id": "b-data", "title": "x", "image": "data:text/html,<b>"}).encode(),
        b'{"id": "b-deep", "title": "x", "description": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"id": "b-deep2", "title": "x", "attributes": ' + b"[" * 40 + b"]" * 40 + b"}",
        json.dumps({"id": "b-nul", "title": "a\u0000b"}).encode(),
        json.dumps({"id": "b-nested", "title": "x", "bullet_points": [["a"]]}).encode(),
        json.dumps({"id": "g2", "title": "Plain", "image": "https://cdn.example/a.jpg", "price": 2}).encode(),
        json.dumps({"id": "g3", "title": "Windows path", "image": "C:\\img\\a.jpg"}).encode(),
    ]
    path = tmp_path / "cat.jsonl"
    path.write_bytes(b"\r\n".join(lines))
    result = load_catalog(path)
    assert [p.id for p in result.products] == ["g1", "g2", "g3"]
    assert result.products[0].title == hostile
    by_row = {e.row: e.reason for e in result.errors}
    assert sorted(by_row) == list(range(2, 13))
    assert "finite" in by_row[2] and "finite" in by_row[3]
    assert "boolean" in by_row[4] and "boolean" in by_row[5]
    assert "javascript" in by_row[6] and "javascript" in by_row[7] and "data" in by_row[8]
    assert "nested" in by_row[9] and "nested" in by_row[10]
    assert "NUL" in by_row[11] and "nested list" in by_row[12]


def test_csv_oversized_fields_bad_quoting_and_a_truncated_row_are_rows_not_crashes(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_bytes(
        codecs.BOM_UTF8 + b"id,title,description,price\r\n"
        b"g1,First,ok,1\r\n"
        b"b-big,Big," + b"x" * 1_000_000 + b",2\r\n"  # over the csv module's 128 KiB field limit
        b'b-quote,"Bad"quoting,,3\r\n'
        b'g2,"Second, with ""quotes""","two\r\nlines",4\r\n'
        b"b-nan,NaN,,nan\r\n"
        b'b-cut,"Cut inside a quo'
    )
    result = load_catalog(path)
    assert [p.id for p in result.products] == ["g1", "g2"]
    assert result.products[1].title == 'Second, with "quotes"'
    by_row = {e.row: e.reason for e in result.errors}
    assert "limit" in by_row[3]
    assert "not valid CSV" in by_row[4]
    assert "finite" in by_row[6]
    assert "not valid CSV" in by_row[7] and "end of data" in by_row[7]


def test_yaml_bad_bytes_control_characters_and_alias_bombs_fail_their_item_only(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 and characters YAML refuses would fail the whole file; an alias bomb ("billion
    laughs") would take hours to walk. Each is its item's problem, found at once."""
    bomb = ["- id: bomb", "  name: Bomb", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        bomb.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb.append("  bullet_points: *i")
    path = tmp_path / "cat.yaml"
    path.write_bytes(
        b"\xef\xbb\xbf- id: g1\r\n  name: First\r\n"
        b"- id: b-latin1\r\n  name: Caf\xe9\r\n"
        b"- id: b-bell\r\n  name: Bell \x07\r\n" + "\n".join(bomb).encode() + b"\n"
        b"- id: b-loop\n  name: Loop\n  description: &r [*r]\n"
        b"- !!python/object/apply:os.system ['echo no']\n"
        b"- id: b-js\n  name: JS\n  image: javascript:alert(1)\n"
        b"- id: g2\n  name: <img src=x onerror=alert(1)> Last\n"
    )
    started = time.monotonic()
    result = load_catalog(path, "retail-demo-store")
    assert time.monotonic() - started < 5
    assert [p.id for p in result.products] == ["g1", "g2"]
    assert result.products[1].title == "<img src=x onerror=alert(1)> Last"
    by_row = {e.row: e.reason for e in result.errors}
    assert "UTF-8" in by_row[3] and "U+0007" in by_row[5]
    assert "more than" in by_row[7]
    assert "nested" in by_row[7 + len(bomb)]
    assert "constructor" in by_row[10 + len(bomb)]
    assert "javascript" in by_row[11 + len(bomb)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'- id: a\n  name: "cut inside a quoted', r"cat\.yaml:2: not valid YAML: found unexpected end of stream"),
        (b"- id: a\n  d: " + b"[" * 3000 + b"]" * 3000 + b"\n", r"cat\.yaml:2: not valid YAML: .*nesting depth"),
        (b"- id: a\n---\n- id: b\n", r"cat\.yaml:2: not valid YAML: but found another document"),
    ],
)
def test_a_yaml_file_that_cannot_be_parsed_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "cat.yaml"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_a_folder_is_not_a_catalog(tmp_path: Path) -> None:
    (tmp_path / "cat.yaml").mkdir()
    with pytest.raises(CatalogError, match="not a file"):
        load_catalog(tmp_path / "cat.yaml")
