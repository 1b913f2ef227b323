"""`shop-retrieval`: index a catalog, search it, and record shopper events from the command line."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from retrieval.cards import ProductCard
from retrieval.catalog import CatalogError, load_catalog
from retrieval.clip import ImagePathDisabled
from retrieval.factory import Components, build_components
from retrieval.filters import FilterError, FilterParams
from retrieval.personalization import Event, refresh_profile
from retrieval.personas import load_users, synthesize_events
from retrieval.search import SearchEngine, SearchResult
from retrieval.settings import RetrievalSettings
from retrieval.validation import errors_text

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
MAX_ERRORS_SHOWN = 20


class MappingName(StrEnum):
    auto = "auto"
    retail_demo_store = "retail-demo-store"
    esci = "esci"
    identity = "identity"


class ModeName(StrEnum):
    full = "full"
    hybrid = "hybrid"
    dense = "dense"
    bm25 = "bm25"


class KindName(StrEnum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _components() -> Iterator[Components]:
    """Settings from SHOP_* variables, then the components; closed when the command ends."""
    try:
        settings = RetrievalSettings()
    except ValidationError as exc:
        _fail(f"invalid setting {errors_text(exc, prefix='SHOP_')}")
    try:
        components = build_components(settings)
    except (OSError, RuntimeError, ValueError) as exc:
        _fail(f"cannot open the retrieval components: {exc}")
    try:
        yield components
    finally:
        components.close()


def _engine(comp: Components) -> SearchEngine:
    try:
        return comp.engine()
    except FileNotFoundError:
        _fail(f"no search index in {comp.settings.lexical_dir}: run `shop-retrieval index` first")


def detect_mapping(path: Path) -> str:
    """esci for JSONL rows with an `asin`, retail-demo-store for its products.yaml, else identity."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            with path.open("rb") as fh:
                first = next((line for line in fh if line.strip()), b"")
            row = json.loads(first) if first else {}
            return "esci" if isinstance(row, dict) and "asin" in row else "identity"
        if suffix in (".yaml", ".yml"):
            with path.open("rb") as fh:
                head = fh.read(64 * 1024)
            if path.name == "products.yaml" or b"current_stock:" in head:
                return "retail-demo-store"
    except (OSError, ValueError, RecursionError):
        pass  # load_catalog reports unreadable files and rows properly
    return "identity"


@app.command()
def index(
    catalog: Path = typer.Argument(..., help="catalog file: .jsonl, .csv or .yaml"),
    mapping: MappingName = typer.Option(MappingName.auto, help="source field mapping"),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="delete stored products missing from the catalog"),
) -> None:
    """Load CATALOG and bring the index up to date with it (only changed products are re-embedded)."""
    name = detect_mapping(catalog) if mapping is MappingName.auto else mapping.value
    try:
        loaded = load_catalog(catalog, name)
    except (CatalogError, OSError) as exc:
        _fail(str(exc))
    for err in loaded.errors[:MAX_ERRORS_SHOWN]:
        typer.echo(str(err), err=True)
    if loaded.skipped > MAX_ERRORS_SHOWN:
        typer.echo(f"... and {loaded.skipped - MAX_ERRORS_SHOWN} more", err=True)
    if not loaded.products:
        _fail(f"{catalog}: no product could be loaded (mapping {name}); the index was left as it was")
    with _components() as comp:
        report = comp.indexer().index(loaded.products, prune=prune)
    rows: list[tuple[str, object]] = [("mapping", name), ("rows read", loaded.rows), ("loaded", loaded.loaded)]
    rows.append(("skipped", loaded.skipped))
    labels = ("added", "updated", "metadata-only", "unchanged", "deleted", "embedded", "images indexed")
    rows += [(label, getattr(report, label.replace("-", "_").replace(" ", "_"))) for label in labels]
    rows.append(("seconds", f"{report.seconds:.1f}"))
    for label, value in rows:
        typer.echo(f"{label:<16}{value}")
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


ROW_FIELDS = {"id", "title", "price", "currency", "category_path", "in_stock", "score", "breakdown"}


def _result_row(rank: int, r: SearchResult) -> dict[str, Any]:
    return {"rank": rank} | ProductCard.of(r.product, r).model_dump(include=ROW_FIELDS)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_table(rows: list[dict[str, Any]]) -> None:
    headers = [
        "#",
        "id",
        "title",
        "price",
        "category",
        "final",
        "lex",
        "dense",
        "tmatch",
        "image",
        "pers",
        "qual",
        "div",
    ]
    keys = ["lexical", "dense", "title", "image", "personal", "quality", "diversity"]
    body = []
    for row in rows:
        b = row["breakdown"]
        price = f"{row['price']:.2f}" if row["price"] is not None else "-"
        body.append(
            [str(row["rank"]), _short(row["id"], 10), _short(row["title"], 48), price]
            + [_short(" > ".join(row["category_path"]) or "-", 24), f"{row['score']:.3f}"]
            + [f"{b[k] + 0.0:.3f}" if b[k] is not None else "-" for k in keys]
        )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text when rich is absent
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
        for line in [headers, *body]:
            typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: don't squeeze the table to 80 columns
    table = Table(show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, justify="left" if h in ("id", "title", "category") else "right", no_wrap=h != "title")
    for line in body:
        table.add_row(*line)
    console.print(table)


@app.command()
def search(
    query: str = typer.Argument("", help="what to look for (may be empty with --image)"),
    k: int = typer.Option(10, "--k", "-k", min=1, max=200, help="number of results"),
    mode: ModeName = typer.Option(ModeName.full, help="ranking pipeline"),
    # The FilterParams fields, one option each (a test checks the names match).
    min_price: float | None = typer.Option(None, help="lowest price"),
    max_price: float | None = typer.Option(None, help="highest price"),
    brand: list[str] | None = typer.Option(None, help="brand (repeatable)"),
    color: list[str] | None = typer.Option(None, help="color (repeatable)"),
    category: list[str] | None = typer.Option(None, help="category at any level (repeatable)"),
    in_stock: bool = typer.Option(False, "--in-stock", help="only products known to be in stock"),
    min_rating: float | None = typer.Option(None, help="lowest average rating (0-5)"),
    shopper: str | None = typer.Option(None, help="shopper id whose profile personalises the ranking"),
    image: Path | None = typer.Option(None, help="photo to search with (needs SHOP_CLIP_MODEL_PATH)"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
) -> None:
    """Rank products for QUERY with filters and an optional shopper profile."""
    try:
        params = FilterParams(
            min_price=min_price,
            max_price=max_price,
            brand=brand or None,
            color=color or None,
            category=category or None,
            in_stock=True if in_stock else None,  # --in-stock or no stock filter; never "only out of stock"
            min_rating=min_rating,
        )
        filters = params.filters()
    except ValidationError as exc:
        _fail(f"invalid filters: {errors_text(exc)}")
    except FilterError as exc:
        _fail(f"invalid filters: {exc}")
    if image is not None and not image.is_file():
        _fail(f"image not found: {image}")
    with _components() as comp:
        engine = _engine(comp)
        profile = None
        if shopper:
            profile = comp.profiles.get(shopper)
            if profile is None:
                typer.echo(f"note: no profile for shopper {shopper!r}; results are not personalised", err=True)
        try:
            results = engine.search(query, filters=filters, k=k, mode=mode.value, profile=profile, image=image)
        except (ImagePathDisabled, ValueError) as exc:
            _fail(str(exc))
    rows = [_result_row(i, r) for i, r in enumerate(results, start=1)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        typer.echo("no products match", err=True)
    else:
        _print_table(rows)


def _print_affinities(label: str, weights: dict[str, float], top: int = 5) -> None:
    shown = ", ".join(f"{name} {w:.2f}" for name, w in list(weights.items())[:top])
    typer.echo(f"{label:<12}{shown or '-'}")


@app.command()
def event(
    shopper_id: str = typer.Argument(..., help="shopper id"),
    product_id: str = typer.Argument(..., help="product id (must be indexed)"),
    kind: KindName = typer.Argument(..., help="interaction"),
) -> None:
    """Record one shopper interaction and rebuild that shopper's profile."""
    try:
        ev = Event(shopper_id=shopper_id, product_id=product_id, kind=kind.value)
    except ValidationError as exc:
        _fail(f"invalid event: {errors_text(exc)}")
    with _components() as comp:
        engine = _engine(comp)
        if product_id not in engine.get_products([product_id]):
            _fail(f"unknown product {product_id!r}: it is not in the index")
        comp.profiles.add_events([ev])
        profile = refresh_profile(comp.profiles, engine, shopper_id)
    typer.echo(f"recorded {kind.value} of {product_id} by {shopper_id} ({profile.events} events in profile)")
    _print_affinities("categories", profile.categories)
    _print_affinities("brands", profile.brands)
    _print_affinities("price bands", profile.price_bands)


@app.command("persona-events")
def persona_events(
    users: Path = typer.Option(Path("../shared/data/retail-demo-store/users.json.gz"), help="users.json(.gz)"),
    limit: int = typer.Option(50, min=0, help="how many shoppers (in file order)"),
    per_shopper: int = typer.Option(12, min=1, max=500, help="events per shopper"),
    seed: int = typer.Option(0, help="random seed; the same seed gives the same events"),
) -> None:
    """Seed demo events for Retail Demo Store shoppers from their `persona`, then build their profiles.

    Shoppers that already have events are skipped, so running this twice does not double them.
    """
    try:
        people = load_users(users)[:limit]
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    with _components() as comp:
        engine = _engine(comp)
        products = list(engine.get_products(engine.lexical.ids).values())
        if not products:
            _fail("the index is empty: run `shop-retrieval index` first")
        seeded = skipped = total = 0
        for user in people:
            shopper_id = str(user.get("id") or "")
            if not shopper_id or comp.profiles.events(shopper_id):
                skipped += 1
                continue
            events = synthesize_events(user, products, random.Random(f"{seed}:{shopper_id}"), n=per_shopper)
            if not events:
                skipped += 1
                continue
            comp.profiles.add_events(events)
            refresh_profile(comp.profiles, engine, shopper_id)
            seeded += 1
            total += len(events)
    typer.echo(f"seeded {total} events for {seeded} shoppers ({skipped} skipped: no persona match or already seeded)")
