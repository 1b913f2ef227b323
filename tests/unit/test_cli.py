"""`shop-retrieval` commands end to end on a tmp data dir, with the hashing encoder."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import retrieval.cli as cli
from retrieval import factory
from retrieval.encoders import HashingEncoder

CATALOG = """\
- id: p-backpack
  name: Trailblazer Hiking Backpack
  category: outdoors
  style: backpack
  description: A light daypack for hiking trips.
  price: 79.99
  current_stock: 5
- id: p-tent
  name: Summit Two Person Tent
  category: outdoors
  style: camping
  description: A tent for hiking and camping.
  price: 189.0
  current_stock: 2
- id: p-bad
  name: Broken Row Lamp
  category: homedecor
  price: -5
- id: p-lamp
  name: Brass Reading Lamp
  category: homedecor
  style: lighting
  description: Warm light for reading.
  price: 45.0
  current_stock: 0
"""


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SHOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(cli, "build_components", lambda s: factory.build_components(s, text_encoder=HashingEncoder()))
    return CliRunner()


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "products.yaml"
    path.write_text(CATALOG)
    return path


def _field(output: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}\s+(\S+)", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


def test_index_reports_bad_rows_then_is_idempotent(runner: CliRunner, catalog: Path) -> None:
    first = runner.invoke(cli.app, ["index", str(catalog)])
    assert first.exit_code == 0, first.output
    assert _field(first.stdout, "mapping") == "retail-demo-store"
    assert (_field(first.stdout, "rows read"), _field(first.stdout, "loaded")) == ("4", "3")
    assert _field(first.stdout, "skipped") == "1"
    assert _field(first.stdout, "added") == "3"
    assert re.search(rf"{re.escape(str(catalog))}:15: price:", first.stderr), first.stderr

    again = runner.invoke(cli.app, ["index", str(catalog)])
    assert again.exit_code == 0, again.output
    assert _field(again.stdout, "unchanged") == "3"
    assert (_field(again.stdout, "added"), _field(again.stdout, "embedded")) == ("0", "0")


def test_index_missing_file_and_bad_setting_exit_2(runner: CliRunner, catalog: Path, monkeypatch) -> None:
    missing = runner.invoke(cli.app, ["index", "nope.yaml"])
    assert missing.exit_code == 2 and "not found" in missing.stderr
    monkeypatch.setenv("SHOP_CHROMA_PORT", "99999")
    bad = runner.invoke(cli.app, ["index", str(catalog)])
    assert bad.exit_code == 2 and "SHOP_CHROMA_PORT" in bad.stderr
    monkeypatch.delenv("SHOP_CHROMA_PORT")
    monkeypatch.setenv("SHOP_DATA_DIR", " ")
    blank = runner.invoke(cli.app, ["index", str(catalog)])
    assert blank.exit_code == 2 and "SHOP_DATA_DIR is empty" in blank.stderr


def test_index_jsonl_autodetects_esci(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "esci.jsonl"
    rows = [{"asin": "B01", "title": "Steel water bottle", "brand": "Aqua", "price": 20}, {"asin": "B02"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(cli.app, ["index", str(path), "--no-prune"])
    assert result.exit_code == 0, result.output
    assert _field(result.stdout, "mapping") == "esci"
    assert _field(result.stdout, "skipped") == "1" and f"{path}:2:" in result.stderr


def test_search_prints_table_and_json(runner: CliRunner, catalog: Path) -> None:
    assert runner.invoke(cli.app, ["index", str(catalog)]).exit_code == 0
    table = runner.invoke(cli.app, ["search", "hiking backpack", "--max-price", "100"])
    assert table.exit_code == 0, table.output
    assert "Trailblazer Hiking Backpack" in table.stdout
    assert "Summit Two Person Tent" not in table.stdout  # over the max price
    for header in ("final", "lex", "dense", "pers", "qual", "div"):
        assert header in table.stdout

    as_json = runner.invoke(cli.app, ["search", "reading lamp", "--json", "--k", "2", "--mode", "bm25"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert rows[0]["id"] == "p-lamp" and rows[0]["rank"] == 1
    assert set(rows[0]["breakdown"]) >= {"lexical", "dense", "personal", "quality", "diversity"}


def test_search_rejects_min_above_max(runner: CliRunner, catalog: Path) -> None:
    assert runner.invoke(cli.app, ["index", str(catalog)]).exit_code == 0
    result = runner.invoke(cli.app, ["search", "lamp", "--min-price", "50", "--max-price", "10"])
    assert result.exit_code == 2
    assert "min_price 50.0 is above max_price 10.0" in result.stderr


def test_search_before_index_says_index_first(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["search", "lamp"])
    assert result.exit_code == 2
    assert "run `shop-retrieval index` first" in result.stderr


def test_event_builds_profile_used_by_search(runner: CliRunner, catalog: Path) -> None:
    assert runner.invoke(cli.app, ["index", str(catalog)]).exit_code == 0
    unknown = runner.invoke(cli.app, ["event", "s1", "no-such-id", "view"])
    assert unknown.exit_code == 2 and "unknown product" in unknown.stderr
    result = runner.invoke(cli.app, ["event", "s1", "p-lamp", "purchase"])
    assert result.exit_code == 0, result.output
    assert "homedecor 0.50" in result.stdout and "lighting 0.50" in result.stdout
    personal = runner.invoke(cli.app, ["search", "light", "--shopper", "s1", "--json"])
    assert json.loads(personal.stdout)[0]["breakdown"]["personal"] > 0
    stranger = runner.invoke(cli.app, ["search", "light", "--shopper", "nobody"])
    assert stranger.exit_code == 0 and "no profile" in stranger.stderr


def test_persona_events_seed_profiles_once(runner: CliRunner, catalog: Path, tmp_path: Path) -> None:
    assert runner.invoke(cli.app, ["index", str(catalog)]).exit_code == 0
    users = tmp_path / "users.json.gz"
    with gzip.open(users, "wt") as fh:
        json.dump([{"id": "1", "persona": "outdoors_books"}, {"id": "2", "persona": "jewelry_books"}], fh)
    args = ["persona-events", "--users", str(users), "--per-shopper", "4"]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    assert "seeded 4 events for 1 shoppers (1 skipped" in first.stdout
    assert "seeded 0 events for 0 shoppers (2 skipped" in runner.invoke(cli.app, args).stdout


def test_index_a_file_whose_first_row_nests_too_deeply_says_so(runner: CliRunner, tmp_path: Path) -> None:
    """The mapping is guessed from the first row: JSON nested past the parser's recursion limit there must not end
    the command with a traceback."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"id": "d", "title": "Deep", "description": ' + b"[" * 5000 + b"]" * 5000 + b"}\n")
    result = runner.invoke(cli.app, ["index", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"{path}:1: nested more than" in result.output
    assert f"error: {path}: no product could be loaded" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no product could be loaded"), (b'- id: a\n  name: "cut', "not valid YAML"), (b"\x89PNG\r\n", "list")],
)
def test_serve_stops_on_a_catalog_it_cannot_use_with_one_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    """`serve` and `prepare` read the catalog before anything slow (the model server, the index): an empty,
    unparseable or wrong file ends them with one line naming it, exit status 2, no traceback."""
    from assistant.api import cli as assistant_cli

    path = tmp_path / "products.yaml"
    path.write_bytes(content)
    monkeypatch.setenv("SHOP_CATALOG_PATH", str(path))
    monkeypatch.setattr(assistant_cli.uvicorn, "run", lambda *a, **k: pytest.fail("serve went on to start"))
    for command in ("serve", "prepare"):
        result = runner.invoke(assistant_cli.app, [command])
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        assert f"error: catalog: {path}" in result.output and message in result.output
