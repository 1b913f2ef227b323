"""The app factory: `create_app(settings)`; the lifespan builds Services once and closes them on exit."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from assistant.api import agent, cart, catalog, chat, feedback, health, sessions, visitors, web
from assistant.api.auth import Authenticator, KeyRing
from assistant.api.errors import install_error_handlers
from assistant.api.limits import BodySizeLimit, RateLimiter
from assistant.services import Services, build_services, limit_numeric_threads
from assistant.settings import AssistantSettings
from assistant.visitors import SECRET_FILE, VisitorTokens, load_or_create_secret
from retrieval.catalog import LoadResult

log = logging.getLogger(__name__)


def create_app(
    settings: AssistantSettings | None = None, services: Services | None = None, loaded: LoadResult | None = None
) -> FastAPI:
    """A FastAPI app; pass `services` to run on prebuilt (e.g. fake) parts instead of building them, `loaded` to
    build them over the catalog file already loaded."""
    settings = settings or (services.settings if services is not None else AssistantSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        if services is not None:
            app.state.services = services
        else:
            app.state.services = await (
                build_services(settings) if loaded is None else build_services(settings, catalog=loaded)
            )
        if owned:
            # What start-up built (catalog, indexes, encoders, router) lives as long as the app. Frozen, it is
            # left out of the collector's full passes, which otherwise walk all of it while every thread waits.
            gc.collect()
            gc.freeze()
            limit_numeric_threads(settings.numeric_threads)
        hub = app.state.services.chat.live.hub
        await hub.start()  # live delivery to session streams listens on this app's loop
        try:
            yield
        finally:
            await hub.aclose()
            if owned:
                await app.state.services.close()
                gc.unfreeze()
            app.state.services = None

    app = FastAPI(title="Shopping assistant", version="0.1.0", lifespan=lifespan)
    app.state.services = None
    # Who may call, and how often: HTTP concerns, so they are built here and not in the services.
    agent_origins = frozenset(settings.console_origins)
    app.state.auth = Authenticator(KeyRing(settings.keys), visitor_tokens(settings), agent_origins)
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.browser_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-API-Key", "X-Widget-Key"],
        expose_headers=["Retry-After"],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=larger_bodies(settings))
    for module in (chat, sessions, agent, feedback, catalog, cart, visitors, health, web):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_deployment_limits(FastAPI.openapi(app), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# The largest body an events batch of MAX_EVENTS takes (each event's fields at their maxLength), so a batch the
# schema allows is never refused for its size.
EVENTS_BODY_BYTES = 256 * 1024


def larger_bodies(settings: AssistantSettings) -> dict[str, int]:
    """Paths whose bodies may be larger than SHOP_MAX_BODY_BYTES: the photo search and an events batch."""
    return {
        "/v1/search/image": max(settings.max_image_bytes, settings.max_body_bytes),
        "/v1/events": max(EVENTS_BODY_BYTES, settings.max_body_bytes),
    }


def with_deployment_limits(schema: dict[str, Any], settings: AssistantSettings) -> dict[str, Any]:
    """The OpenAPI schema with the limits this deployment's settings set: the message's maxLength
    (SHOP_MAX_MESSAGE_CHARS) and, on each 413, the body limit of its path."""
    message = schema["components"]["schemas"]["ChatRequest"]["properties"]["message"]
    message["maxLength"] = settings.max_message_chars
    larger = larger_bodies(settings)
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            too_large = operation.get("responses", {}).get("413")
            if too_large is not None:
                too_large["description"] = f"body over {larger.get(path, settings.max_body_bytes)} bytes"
    return schema


def visitor_tokens(settings: AssistantSettings) -> VisitorTokens:
    """Visitor tokens signed with SHOP_VISITOR_SECRET, else with the secret kept in the data dir (made once)."""
    if settings.visitor_secret is not None:
        secret = settings.visitor_secret.get_secret_value().encode()
    else:
        secret = load_or_create_secret(settings.data_dir / SECRET_FILE)
    return VisitorTokens(secret, timedelta(days=settings.visitor_token_days))
