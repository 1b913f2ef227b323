"""The vector store against a real Chroma server (`chroma run`), over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.local_servers import HOST, free_port
from eval.local_servers import stop_group as stop_server
from retrieval.catalog import load_catalog
from retrieval.encoders import HashingEncoder
from retrieval.filters import Filters, product_metadata
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.store import VectorStore, _Query, _query_many, make_chroma_client

pytestmark = pytest.mark.integration

SHARED_DATA = Path(os.environ.get("SHOP_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
CATALOG = SHARED_DATA / "retail-demo-store/products.yaml"
N_PRODUCTS = 50
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ChromaServer:
    host: str
    port: int
    path: Path
    log: Path


def _chroma_executable() -> str:
    beside_python = Path(sys.executable).parent / "chroma"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("chroma")
    if found is None:
        pytest.skip("the `chroma` console script is not installed")
    return found


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    root = tmp_path_factory.mktemp("chroma-server")
    data, log = root / "data", root / "server.log"
    port = free_port()
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            [_chroma_executable(), "run", "--path", str(data), "--host", HOST, "--port", str(port)],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: teardown kills the server and its children
        )
    try:
        url = f"http://{HOST}:{port}/api/v2/heartbeat"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with {proc.returncode} before it was ready:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma server not ready on {url} after {STARTUP_TIMEOUT_S:.0f}s:\n{log.read_text()}")
            time.sleep(0.25)
        yield ChromaServer(HOST, port, data, log)
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def products() -> list[Product]:
    if not CATALOG.is_file():
        pytest.skip(f"retail-demo-store catalog not available at {CATALOG}")
    loaded = load_catalog(CATALOG, "retail-demo-store")
    assert loaded.skipped == 0, loaded.errors[:3]
    chosen = sorted(loaded.products, key=lambda p: p.id)[:N_PRODUCTS]
    assert len(chosen) == N_PRODUCTS
    return chosen


def _http_store(server: ChromaServer, name: str) -> VectorStore:
    return VectorStore(make_chroma_client("http", host=server.host, port=server.port), name)


def _indexer(store: VectorStore, lexical_dir: Path) -> Indexer:
    return Indexer(store, HashingEncoder(), lexical_dir, show_progress=False)


def _busiest_category_filter(products: list[Product]) -> tuple[Filters, list[Product]]:
    """A category + max_price filter that matches some, but not all, of `products`."""
    top: dict[str, list[Product]] = {}
    for p in products:
        top.setdefault(p.category_path[0].lower(), []).append(p)
    category, members = max(sorted(top.items()), key=lambda kv: len(kv[1]))
    prices = sorted(p.price for p in members if p.price is not None)
    filters = Filters(category=category, max_price=prices[len(prices) // 2])
    expected = [p for p in products if filters.matches(product_metadata(p))]
    assert 0 < len(expected) < len(products)
    return filters, expected


def test_index_filter_and_reindex_over_http(
    chroma_server: ChromaServer, products: list[Product], tmp_path: Path
) -> None:
    name = f"srv-{uuid.uuid4().hex[:12]}"
    store = _http_store(chroma_server, name)
    first = _indexer(store, tmp_path / "lex").index(products)
    assert first.added == len(products)
    assert first.embedded == len(products)
    assert store.count() == len(products)

    filters, expected = _busiest_category_filter(products)
    expected_ids = {p.id for p in expected}
    # exact_scan_max=0: filtered nearest-neighbour queries go to the server's `where`, not a local scan.
    engine = SearchEngine(store, LexicalIndex.load(tmp_path / "lex"), HashingEncoder(), exact_scan_max=0)
    target = expected[0]
    for mode in ("bm25", "dense", "hybrid", "full"):
        results = engine.search(target.title, filters=filters, k=20, mode=mode)  # type: ignore[arg-type]
        assert results, f"{mode}: no results for a filter that {len(expected)} products match"
        assert target.id in {r.product.id for r in results}, mode
        for r in results:
            assert r.product.id in expected_ids, f"{mode}: {r.product.id} violates {filters}"
            assert r.product.price is not None and r.product.price <= filters.max_price  # type: ignore[operator]
            assert filters.category and r.product.category_path[0].lower() in filters.category
    # The server applies the `where` clause: a dense query for more than exist returns exactly the matches.
    dense = engine.search(target.title, filters=filters, k=N_PRODUCTS, mode="dense")
    assert {r.product.id for r in dense} == expected_ids
    # Concurrent queries batched into one HTTP call per filter: each gets its own nearest product.
    where = filters.to_where()
    asks = [_Query(HashingEncoder().embed_query(p.embedding_text()), 1, w) for p in expected[:3] for w in (None, where)]
    nearest = [[h.id for h in hits] for hits in _query_many(store.text, asks)]
    assert nearest == [[p.id] for p in expected[:3] for _ in (None, where)]

    encoder = HashingEncoder()
    again = Indexer(store, encoder, tmp_path / "lex", show_progress=False).index(products)
    assert again.unchanged == len(products)
    assert again.embedded == 0
    assert again.added == again.updated == again.metadata_only == again.deleted == 0
    assert not again.lexical_rebuilt
    assert encoder.texts_embedded == 0
    assert store.count() == len(products)


def test_second_client_sees_the_same_data(chroma_server: ChromaServer, products: list[Product], tmp_path: Path) -> None:
    name = f"srv-{uuid.uuid4().hex[:12]}"
    writer = _http_store(chroma_server, name)
    _indexer(writer, tmp_path / "lex").index(products)

    reader = _http_store(chroma_server, name)  # a new HttpClient: the data lives in the server
    assert reader.client is not writer.client
    assert reader.count() == len(products)
    assert reader.stored_hashes() == {p.id: (p.content_hash(), p.text_hash()) for p in products}

    # Changes made through one client are visible through the other.
    changed = [*products[:-1], products[-1].model_copy(update={"price": 1.0})]
    report = _indexer(reader, tmp_path / "lex").index(changed)
    assert report.metadata_only == 1 and report.embedded == 0
    assert writer.stored_hashes()[changed[-1].id][0] == changed[-1].content_hash()
    report = _indexer(reader, tmp_path / "lex").index(changed[:-5])
    assert report.deleted == 5
    assert writer.count() == len(products) - 5
