"""Catalog bad input: malformed and hostile catalog files through the entry points a store uses, and hostile titles
in the demo store, the widget and the agent console in Chromium.

Every file is built at run time in the scratch dir from the Retail Demo Store catalog (never committed):

- `shop-retrieval index FILE` over one mixed file per format (JSON Lines, CSV, YAML): good rows (some with markup
  and script in their titles, a BOM, CRLF line ends, blank lines) among bad ones (wrong types: price "abc",
  negative, NaN, true, a list for a title; missing id or title; a 100k-character title and a 1 MB description;
  `javascript:` and `data:` image URLs; a duplicate id; bytes that are not UTF-8; a NUL; deep nesting; a YAML
  python tag, an alias bomb, a recursive alias; a truncated last row). Each bad row must be reported as
  `file:row: reason` with the expected reason, and the index must hold exactly the good rows' ids (nothing good
  dropped, nothing bad indexed, the first of a duplicate kept).
- Whole-file problems (empty files, a truncated or too deeply nested YAML file, a mapping at the top, two YAML
  documents, an image or gzip under a catalog's name, the wrong extension, a folder, a missing file, a file whose
  every row is bad) through `shop-retrieval index` and three of them through `serve`: exit status 2 and one
  `error:` line naming the file, no traceback, the index left alone.
- `serve` (service "catalog-web", the demo keys on) over the whole demo catalog with hostile titles, a hostile
  category and hostile descriptions, bad rows among them: each bad row in its start-up log, every good id indexed.
  Then in headless Chromium, used by roles and labels: the demo store's category menu and a search for the
  hostile products, a product's details, the widget's chat asked for them, and the agent console (signed in with
  the demo agent key, the session opened, its trace). No dialog may open, no injected element or handler may exist
  in the DOM (the widget's shadow root included), the hostile text must read literally, and no request may go to
  an injected URL. Screenshots go to REPORT/catalog/.

The quick run tries 7 of the 14 whole-file cases through `shop-retrieval index` and 2 of the 3 through `serve`, the
full run all of them; the rest is the same (quick: 46-56 s on 2 busy cores, the full run a few seconds more).
Chromium or Playwright missing is reported as broken (CI installs them: scripts/services.sh install).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from assistant.settings import SHARED_DATA
from eval.local_servers import HOST, free_port, stop_group
from retrieval.lexical import LexicalIndex

if TYPE_CHECKING:
    from eval.reliability.cli import Context

PART = "catalog"
DEMO = SHARED_DATA / "retail-demo-store" / "products.yaml"
IMAGES = SHARED_DATA / "images"
CHROMIUM = Path("/usr/bin/chromium")
DEMO_AGENT_KEY = "demo-agent-key"
CLI_TIMEOUT_S = 120.0

# Good products' hostile text: it must be indexed, found and shown as the text it is. "zephyr" finds them.
HOSTILE_TITLES = [
    '<script>alert("rel-t1")</script> Zephyr trail mug',
    "<img src=/injected-t2.png onerror=alert('rel-t2')> Zephyr lantern",
    '"><svg onload=alert("rel-t3")> Zephyr blanket',
    "<a href=\"javascript:alert('rel-t4')\">Zephyr scarf</a> <iframe src=javascript:alert(5)></iframe>",
]
HOSTILE_DESCRIPTION = (
    "<img src=https://evil.invalid/d.png onerror=alert('rel-d1')> [click](javascript:alert('rel-d2')) "
    "</textarea><script>alert('rel-d3')</script> A warm zephyr for cold evenings."
)
# A top-level category (the store's menu): markup, an attribute break-out and the page's own template marker.
HOSTILE_CATEGORY = "{{widget_key}} \"onfocus=alert('rel-c') <b"
CATEGORY_PRODUCT = "Zephyr category socks"  # the good product in that category
# The whole-file cases of the quick run (the full run tries every one), and those also tried through `serve`.
QUICK_WHOLE = (
    "empty.yaml",
    "all-bad.jsonl",
    "truncated.yaml",
    "too-deep.yaml",
    "photo.yaml",
    "catalog.json",
    "folder.yaml",
)
SERVE_WHOLE = ("truncated.yaml", "photo.yaml")
INJECTED = re.compile(r"injected|evil\.invalid|^javascript:", re.IGNORECASE)


@dataclass
class Mixed:
    """A catalog file with good and bad rows: the ids the index must hold, the bad rows' numbers and a word of the
    reason each must be reported with."""

    path: Path
    good: list[str] = field(default_factory=list)
    bad: dict[int, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # good id -> title, where it must be exact


def demo_items() -> list[dict[str, Any]]:
    items = yaml.load(DEMO.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return [i for i in items if isinstance(i, dict)]


def identity_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "title": item["name"],
        "description": item.get("description", ""),
        "price": item.get("price"),
        "stock": item.get("current_stock"),
        "category_path": [item.get("category"), item.get("style")],
        "image": item.get("image"),
    }


# A quoted multi-line field for CSV, in every format's second row: the three files' good rows then embed the same
# texts, and the second and third `shop-retrieval index` find them all in the first one's embedding cache.
MULTILINE = 'Two lines,\r\nwith "quotes", commas\r\nand a CRLF inside'


def hostile(rows: list[dict[str, Any]], title_key: str) -> None:
    for row, title in zip(rows, HOSTILE_TITLES, strict=False):
        row[title_key] = title
        row["description"] = HOSTILE_DESCRIPTION
    rows[len(HOSTILE_TITLES)]["description"] = MULTILINE


# --- the mixed files


def jsonl_file(path: Path, items: list[dict[str, Any]]) -> Mixed:
    good = [identity_row(i) for i in items]
    hostile(good, "title")
    m = Mixed(path)
    lines: list[bytes] = []

    def add(raw: bytes, reason: str | None = None, row: dict[str, Any] | None = None) -> None:
        lines.append(raw)
        if reason is None and row is not None:
            m.good.append(str(row["id"]))
            m.titles[str(row["id"])] = str(row["title"]).strip()
        elif reason is not None:
            m.bad[len(lines)] = reason

    def bad(reason: str, **fields: Any) -> None:
        add(json.dumps({"id": f"bad-{len(lines) + 1}", "title": "Bad row", **fields}).encode(), reason)

    dump = lambda r: json.dumps(r, ensure_ascii=False).encode()  # noqa: E731
    add(codecs.BOM_UTF8 + dump(good[0]), row=good[0])  # a BOM before the first row
    bad("price", price="abc")
    bad("price", price=-5)
    add(b'{"id": "bad-nan", "title": "NaN price", "price": NaN}', "finite")
    add(b'{"id": "bad-inf", "title": "Infinite price", "price": Infinity}', "finite")
    bad("boolean", price=True)
    bad("title", title=["a", "list"])
    add(dump(good[1]), row=good[1])
    lines.append(b"")  # a blank line: skipped, still counted
    add(json.dumps({"title": "No id"}).encode(), "missing id")
    add(json.dumps({"id": "bad-no-title", "price": 3}).encode(), "title")
    bad("title", title="T" * 100_000)
    bad("limit", description="D" * 1_000_000)
    bad("javascript", image="javascript:alert('rel-i1')")
    bad("javascript", image=" JaVa\tScRiPt:alert('rel-i2')")
    bad("data", image="data:text/html,<script>alert('rel-i3')</script>")
    for row in good[2:]:
        add(dump(row), row=row)
    add(dump({**good[0], "title": "Duplicate of the first row"}), "duplicate")
    add(b'{"id": "bad-latin1", "title": "Caf\xe9 cr\xe8me"}', "UTF-8")
    add(b'{"id": "bad-deep", "title": "Deep", "description": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested")
    bad("NUL", title="Nul\u0000byte")
    add(b'["a", "list", "row"]', "expected an object")
    bad("stock", stock="many")
    add(b'{"id": "bad-cut", "title": "Truncated ro', "invalid JSON")  # the file ends mid-row
    path.write_bytes(b"\r\n".join(lines))  # CRLF line ends
    return m


def csv_file(path: Path, items: list[dict[str, Any]]) -> Mixed:
    good = [identity_row(i) | {"category_path": f"{i.get('category')}>{i.get('style')}"} for i in items]
    hostile(good, "title")
    header = ["id", "title", "description", "price", "stock", "category_path", "image"]
    m = Mixed(path)
    records: list[bytes] = []

    def text(values: list[Any]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
        return out.getvalue().encode()

    def add(raw: bytes, reason: str | None = None, row: dict[str, Any] | None = None) -> None:
        records.append(raw)
        number = len(records)  # the header is record 1
        if reason is not None:
            m.bad[number] = reason
        elif row is not None:
            m.good.append(str(row["id"]))
            m.titles[str(row["id"])] = str(row["title"]).strip()

    def bad(reason: str, **fields: Any) -> None:
        row = {"id": f"bad-{len(records) + 1}", "title": "Bad row", **fields}
        add(text([row.get(h) for h in header]), reason)

    records.append(codecs.BOM_UTF8 + text(header))
    add(text([good[0][h] for h in header]), row=good[0])
    bad("price", price="abc")
    bad("price", price="-5")
    bad("finite", price="nan")
    bad("finite", price="inf")
    bad("missing id", id="")
    bad("title", title="")
    add(text([good[1][h] for h in header]), row=good[1])
    bad("title", title="T" * 100_000)
    bad("limit", description="D" * 1_000_000)  # over the csv module's default field limit too
    add(b"bad-latin1,Caf\xe9 cr\xe8me,,3,1,,\r\n", "UTF-8")
    add(b"bad-wide,Too wide,,3,1,,,extra,values\r\n", "more values")
    bad("javascript", image="javascript:alert('rel-i1')")
    for row in good[2:]:
        add(text([row[h] for h in header]), row=row)
    add(text([good[0]["id"], "Duplicate of the first row", "", 1, 1, "", ""]), "duplicate")
    bad("NUL", title="Nul\u0000byte")
    add(b'bad-quote,"Bad"quoting,,3,1,,\r\n', "not valid CSV")
    bad("stock", stock="many")
    add(b'bad-cut,"Truncated in its quot', "not valid CSV")  # the file ends inside a quoted field
    path.write_bytes(b"".join(records))
    return m


def lol_block(item_id: str) -> bytes:
    """An item whose field expands to 9**9 values through aliases ("billion laughs")."""
    lines = [
        f"- id: {item_id}",
        "  name: Alias bomb",
        '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    lines.append(f"  description: *{prev}")
    return ("\n".join(lines) + "\n").encode()


def yaml_blocks(items: list[dict[str, Any]], *, hostile_category: bool) -> tuple[list[bytes], list[tuple[bytes, str]]]:
    """Good items' YAML blocks (the first ones hostile) and bad items' blocks with the reason word each."""
    good = [dict(i) for i in items]
    hostile(good, "name")
    if hostile_category:
        good[len(HOSTILE_TITLES)]["name"] = CATEGORY_PRODUCT
        good[len(HOSTILE_TITLES)]["category"] = HOSTILE_CATEGORY
    dump = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    blocks = [yaml.dump([g], Dumper=dump, allow_unicode=True, width=1_000_000, sort_keys=False).encode() for g in good]

    def item(reason: str, **fields: Any) -> tuple[bytes, str]:
        row = {"id": f"bad-{reason.replace(' ', '-')}-{len(bad)}", "name": "Bad item", "price": 3, **fields}
        return yaml.dump([row], Dumper=dump, allow_unicode=True, width=1_000_000).encode(), reason

    bad: list[tuple[bytes, str]] = []
    bad.append(item("price", price="abc"))
    bad.append(item("price", price=-5))
    bad.append((b"- id: bad-nan\n  name: NaN price\n  price: .nan\n", "finite"))
    bad.append(item("boolean", price=True))
    bad.append(item("name", name=["a", "list"]))
    bad.append((b"- name: No id\n  price: 4\n", "missing id"))
    bad.append((b"- id: bad-no-name\n  price: 4\n", "name"))
    bad.append(item("name", name="T" * 100_000))
    bad.append(item("limit", description="D" * 1_000_000))
    bad.append(item("javascript", image="javascript:alert('rel-i1')"))
    bad.append((f"- id: {good[0]['id']}\n  name: Duplicate of the first item\n".encode(), "duplicate"))
    bad.append((b"- id: bad-latin1\n  name: Caf\xe9 cr\xe8me\n", "UTF-8"))
    bad.append((b"- id: bad-bell\n  name: Bell \x07 character\n", "U+0007"))
    bad.append((b"- !!python/object/apply:os.system ['echo rel-catalog-pwned']\n", "constructor"))
    bad.append((b"- id: bad-tag\n  name: !!python/name:os.system\n", "constructor"))
    bad.append((lol_block("bad-lol"), "more than"))
    bad.append((b"- id: bad-deep\n  name: Deep\n  description: " + b"[" * 200 + b"]" * 200 + b"\n", "nested"))
    bad.append((b"- id: bad-loop\n  name: Loop\n  description: &r [*r]\n", "nested"))
    bad.append((b"- just a string\n", "expected an object"))
    return blocks, bad


def yaml_file(path: Path, items: list[dict[str, Any]], *, hostile_category: bool = False, every: int = 1) -> Mixed:
    """Good blocks with the bad ones spread among them (one after every `every` good ones), a BOM, CRLF line ends."""
    blocks, bad = yaml_blocks(items, hostile_category=hostile_category)
    m = Mixed(path)
    out: list[bytes] = []
    line = 1
    for index, (it, block) in enumerate(zip(items, blocks, strict=True)):
        m.good.append(str(it["id"]))
        if index < len(HOSTILE_TITLES):
            m.titles[str(it["id"])] = HOSTILE_TITLES[index]
        out.append(block)
        line += block.count(b"\n")
        if (index + 1) % every == 0 and bad:
            bad_block, reason = bad.pop(0)
            m.bad[line] = reason
            out.append(bad_block)
            line += bad_block.count(b"\n")
    for bad_block, reason in bad:  # more bad items than room among the good ones: at the end
        m.bad[line] = reason
        out.append(bad_block)
        line += bad_block.count(b"\n")
    path.write_bytes(codecs.BOM_UTF8 + b"".join(out).replace(b"\n", b"\r\n"))
    return m


# --- whole-file problems


def whole_file_cases(root: Path, items: list[dict[str, Any]]) -> dict[str, Path]:
    """Files that cannot be used as a whole: name -> path (the path need not exist)."""
    root.mkdir(parents=True, exist_ok=True)
    one = json.dumps(identity_row(items[0])).encode()
    dump = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    quoted = yaml.dump(items[:20], Dumper=dump, default_style='"', width=1_000_000).encode()
    image = next(IMAGES.rglob("*.jpg"), None)
    files: dict[str, bytes | None] = {
        "empty.jsonl": b"",
        "empty.yaml": b"",
        "header-only.csv": b"id,title,price\r\n",
        "all-bad.jsonl": b'{"title": "no id"}\n{"id": "x", "price": "abc"}\n{not json\n',
        "truncated.yaml": quoted[: quoted.index(b'"description": "', len(quoted) // 2) + 30],  # cut inside a string
        "too-deep.yaml": b"- id: deep\n  name: Deep\n  description: " + b"[" * 3000 + b"]" * 3000 + b"\n",
        "mapping.yaml": b"products:\n  - id: a\n    name: A\n",
        "two-documents.yaml": b"- id: a\n  name: A\n---\n- id: b\n  name: B\n",
        "photo.yaml": image.read_bytes() if image else bytes(range(256)) * 64,  # an image under a catalog's name
        "archive.jsonl": gzip.compress(one + b"\n", mtime=0),
        "catalog.json": b"[" + one + b"]",
        "catalog.txt": one,
        "folder.yaml": None,  # a directory
    }
    paths = {}
    for name, data in files.items():
        path = root / name
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
        paths[name] = path
    paths["missing.yaml"] = root / "missing.yaml"
    return paths


# --- running the entry points


@dataclass
class Ran:
    rc: int
    out: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out or "─ Traceback" in self.out


def run_cmd(args: list[str], env: dict[str, str], timeout_s: float = CLI_TIMEOUT_S) -> Ran:
    """Run a command in its own process group (stopped by that group's id if it outlives `timeout_s`)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return Ran(proc.returncode, out.decode("utf-8", "replace"), time.monotonic() - t0)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        out, _ = proc.communicate()
        return Ran(
            124, out.decode("utf-8", "replace") + f"\n(timed out after {timeout_s:.0f} s)", time.monotonic() - t0
        )


def shop_retrieval() -> list[str]:
    script = Path(sys.executable).parent / "shop-retrieval"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from retrieval.cli import app; app()"]


def cli_env(ctx: Context, data_dir: Path, cache: Path | None = None) -> dict[str, str]:
    """SHOP_DATA_DIR for one `shop-retrieval` run: the converted encoder linked (only read) and an embedding cache
    copied (the seed's, or `cache`), which spares embedding the texts it holds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if (ctx.seed / "models").exists() and not (data_dir / "models").exists():
        (data_dir / "models").symlink_to((ctx.seed / "models").resolve())
    cache = cache if cache is not None and cache.is_file() else ctx.seed / "embedding-cache.sqlite"
    if cache.is_file():
        shutil.copy2(cache, data_dir / "embedding-cache.sqlite")
    return {**os.environ, "SHOP_DATA_DIR": str(data_dir)}


def reported(out: str, path: Path, row: int) -> str | None:
    """The reason the output gives for `path:row`, or None."""
    prefix = f"{path}:{row}: "
    return next((line[line.index(prefix) + len(prefix) :] for line in out.splitlines() if prefix in line), None)


def check_mixed(m: Mixed, ran: Ran, indexed: dict[str, str], what: str) -> list[str]:
    """What went wrong with one mixed file: crash, a bad row unreported or misreported, a good row reported or
    missing from the index, a bad row indexed, a title changed."""
    problems: list[str] = []
    name = m.path.name
    if ran.traceback or ran.rc != 0:
        problems.append(f"{what} {name}: exit {ran.rc}{' with a traceback' if ran.traceback else ''}: {ran.out[-300:]}")
    for row, word in m.bad.items():
        reason = reported(ran.out, m.path, row)
        if reason is None:
            problems.append(f"{what} {name}:{row}: bad row not reported (expected '{word}')")
        elif word.lower() not in reason.lower():
            problems.append(f"{what} {name}:{row}: reason {reason[:120]!r} does not say '{word}'")
    for line in ran.out.splitlines():
        hit = re.search(re.escape(str(m.path)) + r":(\d+): ", line)
        if hit and int(hit.group(1)) not in m.bad:
            problems.append(f"{what} {name}: a good row was reported bad: {line[:160]}")
    dropped = [i for i in m.good if i not in indexed]
    extra = [i for i in indexed if i not in set(m.good)]
    if dropped:
        problems.append(f"{what} {name}: {len(dropped)} good rows not indexed (first {dropped[:3]})")
    if extra:
        problems.append(f"{what} {name}: {len(extra)} ids indexed that no good row has ({extra[:3]})")
    for pid, title in m.titles.items():
        if pid in indexed and indexed[pid] != title:
            problems.append(f"{what} {name}: {pid} indexed as {indexed[pid][:60]!r}, not {title[:60]!r}")
    return problems


def indexed_titles(data_dir: Path) -> dict[str, str]:
    try:
        lex = LexicalIndex.load(data_dir / "lexical" / "catalog")
    except FileNotFoundError:
        return {}
    return {pid: p.title for pid, p in lex.get_products(lex.ids).items()}


def check_whole_file(ran: Ran, path: Path, data_dir: Path | None, what: str) -> str | None:
    errors = [line for line in ran.out.splitlines() if line.startswith("error:")]
    if ran.rc != 2:
        return f"{what} {path.name}: exit {ran.rc}, not 2: {ran.out[-200:]}"
    if ran.traceback:
        return f"{what} {path.name}: a traceback: {ran.out[-200:]}"
    if len(errors) != 1 or str(path) not in errors[0]:
        return f"{what} {path.name}: no one error line naming the file: {errors or ran.out[-200:]}"
    if data_dir is not None and (data_dir / "lexical").exists():
        return f"{what} {path.name}: the index was written"
    return None


def cli_part(ctx: Context, items: list[dict[str, Any]]) -> None:
    root = ctx.workdir / "catalog-files"
    root.mkdir(parents=True, exist_ok=True)
    sample = items[10:22]
    mixed = [
        jsonl_file(root / "mixed.jsonl", sample),
        csv_file(root / "mixed.csv", sample),
        yaml_file(root / "products-mixed.yaml", sample),
    ]
    problems: list[str] = []
    tried = 0
    cache: Path | None = None
    for m in mixed:
        data_dir = ctx.workdir / "catalog-cli" / m.path.name / "data"
        env = cli_env(ctx, data_dir, cache)
        ran = run_cmd([*shop_retrieval(), "index", str(m.path)], env)
        cache = data_dir / "embedding-cache.sqlite"
        tried += len(m.good) + len(m.bad)
        problems += check_mixed(m, ran, indexed_titles(data_dir), "shop-retrieval index")
        print(f"[reliability] catalog: index {m.path.name}: exit {ran.rc} in {ran.seconds:.1f} s", file=sys.stderr)
    ctx.tally.check(
        PART,
        "bad rows reported file:row, good rows all indexed (shop-retrieval index; jsonl, csv, yaml)",
        tried,
        len(problems),
        f"{sum(len(m.bad) for m in mixed)} bad and {sum(len(m.good) for m in mixed)} good rows in 3 files",
        problems,
    )

    cases = whole_file_cases(root / "whole", items)
    if ctx.quick:
        cases = {k: v for k, v in cases.items() if k in QUICK_WHOLE}

    def one(name: str, path: Path) -> str | None:
        data_dir = ctx.workdir / "catalog-cli" / f"whole-{name}"
        data_dir.mkdir(parents=True, exist_ok=True)
        ran = run_cmd([*shop_retrieval(), "index", str(path)], {**os.environ, "SHOP_DATA_DIR": str(data_dir)}, 60)
        return check_whole_file(ran, path, data_dir, "shop-retrieval index")

    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(lambda kv: one(*kv), cases.items()) if p]
    ctx.tally.check(
        PART,
        "whole-file problems: exit 2, one error line naming the file (shop-retrieval index)",
        len(cases),
        len(problems),
        ", ".join(cases),
        problems,
    )


def serve_failures(ctx: Context) -> None:
    """`serve` over a file it cannot use stops at once with one line naming it (before the model or the index)."""
    from eval.reliability.stack import service_env

    root = ctx.workdir / "catalog-files" / "whole"
    problems = []
    names = SERVE_WHOLE if ctx.quick else ("empty.yaml", *SERVE_WHOLE)
    for name in names:
        data_dir = ctx.workdir / "catalog-serve-fail" / name / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = service_env(data_dir, ctx.stub.base_url, SHOP_CATALOG_PATH=str(root / name))
        env["SHOP_CATALOG_FORMAT"] = "retail-demo-store"
        args = [sys.executable, "-m", "assistant.api.cli", "serve", "--host", HOST, "--port", str(free_port())]
        ran = run_cmd(args, env, 60)
        problem = check_whole_file(ran, root / name, data_dir, "serve")
        if problem:
            problems.append(problem)
    ctx.tally.check(PART, "whole-file problems: serve exits 2 naming the file", len(names), len(problems), "", problems)


# --- the browser


SCAN_JS = """
() => {
  const URL_ATTRS = new Set(
    ["src", "href", "srcset", "action", "formaction", "data", "poster", "xlink:href", "background"]
  );
  const found = [];
  const walk = (root, where) => {
    for (const el of root.querySelectorAll("*")) {
      for (const a of el.getAttributeNames()) {
        const v = el.getAttribute(a) || "";
        if (a.startsWith("on")) found.push(`${where}: <${el.localName} ${a}>`);
        if (URL_ATTRS.has(a) && /^\\s*javascript:|injected|evil\\.invalid/i.test(v))
          found.push(`${where}: <${el.localName} ${a}=${v.slice(0, 40)}>`);
      }
      const tag = el.localName;
      if (tag === "script" && !el.src) found.push(`${where}: inline <script>`);
      if (["iframe", "object", "embed", "frame"].includes(tag)) found.push(`${where}: <${tag}>`);
      if (el.shadowRoot) walk(el.shadowRoot, `${where} > ${tag} shadow root`);
    }
  };
  walk(document, "document");
  return found;
}
"""


async def browser_part(ctx: Context, base_url: str, titles: list[str], category: str) -> None:
    name = "hostile catalog text shown as text in the store, widget and console (Chromium)"
    try:
        from playwright.async_api import async_playwright
        from playwright.async_api import expect as pw_expect
    except ImportError:
        ctx.tally.check(PART, name, 1, 1, "playwright not installed: pip install -e '.[dev]'")
        return
    if not await asyncio.to_thread(CHROMIUM.is_file):
        ctx.tally.check(PART, name, 1, 1, f"no Chromium at {CHROMIUM}: scripts/services.sh install")
        return
    shots = ctx.report_dir / "catalog"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    tried = 0

    def check(ok: bool, what: str) -> None:
        nonlocal tried
        tried += 1
        if not ok:
            problems.append(what)

    pw_expect.set_options(timeout=15_000)

    async def visible(locator: Any, what: str) -> None:
        try:
            await pw_expect(locator).to_be_visible()
            check(True, what)
        except AssertionError as e:
            check(False, f"{what}: {' '.join(str(e).split())[:300]}")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            dialogs: list[str] = []
            requests: list[str] = []
            errors: list[str] = []

            def watch(page: Any) -> None:
                page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
                page.on("request", lambda r: requests.append(r.url) if INJECTED.search(r.url) else None)
                page.on("pageerror", lambda e: errors.append(str(e)))

            page = await context.new_page()
            watch(page)
            await page.goto(base_url)
            # The category menu: the hostile category as its literal text.
            form = page.get_by_role("search", name="Products")
            options = await form.get_by_label("Category").locator("option").all_inner_texts()
            check(category.capitalize() in options, f"category menu: {category!r} not an option as text ({options})")
            # Search the store like a shopper, then open a product's details.
            await form.get_by_label("Search products").fill("zephyr")
            await form.get_by_role("button", name="Search").click()
            grid = page.get_by_role("list", name=re.compile("Results for"))
            for title in titles:
                await visible(grid.get_by_role("heading", name=title, exact=True), f"store grid: {title!r}")
            tile = grid.get_by_role("listitem").filter(has=page.get_by_role("heading", name=titles[1], exact=True))
            if await tile.count():
                await tile.first.get_by_role("button", name="View details").click()
                details = page.get_by_role("dialog", name=titles[1], exact=True)
                await visible(details, "product details dialog named by the hostile title")
                await page.screenshot(path=shots / "store-details.png")
                await details.get_by_role("button", name="Close").click()
            await page.screenshot(path=shots / "store-search.png", full_page=True)
            # The widget: ask the chat for the hostile products.
            await page.get_by_role("button", name="Open chat").click()
            panel = page.get_by_role("dialog", name="Shopping assistant")
            box = panel.get_by_role("textbox", name="Message")
            await box.fill("zephyr lantern")
            await box.press("Enter")
            log = panel.get_by_role("log", name="Conversation")
            await visible(log.get_by_role("group", name="Rate this answer"), "widget: the answer completed")
            cards = log.get_by_role("list", name="Products")
            await visible(cards.get_by_role("heading", name=titles[1], exact=True), f"widget card: {titles[1]!r}")
            shown = await cards.get_by_role("heading").all_inner_texts()
            odd = [t for t in shown if "zephyr" in t.lower() and t not in [*titles, CATEGORY_PRODUCT]]
            check(not odd, f"widget cards show altered hostile titles: {odd}")
            await page.screenshot(path=shots / "widget.png")
            found = await page.evaluate(SCAN_JS)
            check(not found, f"store page and widget: injected markup in the DOM: {found[:5]}")

            # The agent console: sign in, open the session, its trace.
            console = await context.new_page()
            watch(console)
            await console.goto(f"{base_url}/console")
            await console.get_by_label("Agent key").fill(DEMO_AGENT_KEY)
            await console.get_by_label("Your name").fill("Rel")
            await console.get_by_role("button", name="Sign in").click()
            queue = console.get_by_role("list", name="Sessions")
            await queue.get_by_role("button", name=re.compile("Shopper")).first.click()
            convo = console.get_by_role("region", name=re.compile("Conversation with shopper"))
            transcript = convo.get_by_role("log", name="Transcript")
            await transcript.get_by_role("button", name="Trace of turn 1").click()
            trace = console.get_by_role("region", name="Trace of turn 1")
            table = trace.get_by_role("region", name="Products shown").get_by_role("table").first
            row = table.get_by_role("rowheader").filter(has_text=titles[1]).first
            await visible(row, "console trace: the hostile title")
            cells = await table.get_by_role("rowheader").all_inner_texts()
            check(any(titles[1] in c for c in cells), f"console trace: {titles[1]!r} not literal in {cells[:6]}")
            await console.screenshot(path=shots / "console-trace.png", full_page=True)
            found = await console.evaluate(SCAN_JS)
            check(not found, f"console: injected markup in the DOM: {found[:5]}")
            await asyncio.sleep(0.5)  # a late handler or image load would show now
            check(not dialogs, f"dialogs opened: {dialogs[:3]}")
            check(not requests, f"requests to injected URLs: {requests[:3]}")
            check(not errors, f"page errors: {errors[:3]}")
        except Exception as e:  # a step that could not be done is a finding with what it was
            check(False, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        finally:
            await browser.close()
    ctx.tally.check(PART, name, tried, len(problems), f"screenshots in {shots}", problems)


async def run(ctx: Context) -> None:
    items = demo_items()
    await asyncio.to_thread(cli_part, ctx, items)
    await asyncio.to_thread(serve_failures, ctx)

    # serve over the whole demo catalog with hostile good products and bad items among them.
    path = ctx.workdir / "catalog-files" / "products.yaml"
    web = await asyncio.to_thread(yaml_file, path, items, hostile_category=True, every=100)
    overrides = {"SHOP_CATALOG_PATH": str(path), "SHOP_API_KEYS": "", "SHOP_DEMO_KEYS": "true"}
    with ctx.service("catalog-web", **overrides) as svc:
        out = svc.log.read_text(errors="replace")
        indexed = await asyncio.to_thread(indexed_titles, svc.data_dir)
        ran = Ran(0, out, 0.0)
        problems = check_mixed(web, ran, indexed, "serve")
        ctx.tally.check(
            PART,
            "bad rows reported file:line at start-up, good rows all indexed (serve)",
            len(web.good) + len(web.bad),
            len(problems),
            f"{len(web.bad)} bad among {len(web.good)} good items",
            problems,
        )
        await browser_part(ctx, svc.base_url, HOSTILE_TITLES, HOSTILE_CATEGORY)
