"""Catalog search for a caller, and the shopper behaviour (views, clicks, cart adds, purchases) that shapes their
personalization profile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from assistant.errors import InvalidRequest, Unavailable, UnknownProducts
from assistant.principal import Principal
from assistant.schemas import EventIn, ProductCard, SearchQuery, SearchResponse
from retrieval.filters import FilterError
from retrieval.personalization import Event, ProfileStore, refresh_profile
from retrieval.search import SearchEngine


class CatalogService:
    """Searches the catalog and records behaviour; the profile store is optional (no personalization without it)."""

    def __init__(self, engine: SearchEngine, profiles: ProfileStore | None = None) -> None:
        self.engine = engine
        self.profiles = profiles

    async def search(self, principal: Principal, query: SearchQuery) -> SearchResponse:
        """Hybrid search with filters, personalized for a widget's shopper (or the shopper an agent names)."""
        try:
            filters = query.filters()
        except FilterError as e:
            raise InvalidRequest(f"invalid filters: {e}") from None
        shopper = principal.shopper_id if principal.role == "widget" else query.shopper_id
        profile = self.profiles.get(shopper) if self.profiles is not None and shopper else None
        results = await asyncio.to_thread(self.engine.search, query.q, filters, query.k, "full", profile)
        return SearchResponse(query=query.q, products=[ProductCard.of(r.product, r) for r in results])

    async def record(self, principal: Principal, events: list[EventIn]) -> tuple[int, list[str]]:
        """Store the events and rebuild each shopper's profile; (events accepted, shoppers). Nothing is stored when
        any event is refused (another shopper's, an unknown product)."""
        shoppers = [principal.shopper_for(e.shopper_id) for e in events]
        known = self.engine.get_products([e.product_id for e in events])
        unknown = sorted({e.product_id for e in events} - known.keys())
        if unknown:
            raise UnknownProducts(f"unknown product ids: {unknown[:10]}", {"product_ids": unknown})
        if self.profiles is None:
            raise Unavailable("personalization store is not configured")
        now = datetime.now(UTC)
        stored = [
            Event(shopper_id=shopper, product_id=e.product_id, kind=e.kind, ts=e.at or now)
            for shopper, e in zip(shoppers, events, strict=True)
        ]
        await asyncio.to_thread(self.profiles.add_events, stored)
        for shopper in sorted(set(shoppers)):
            await asyncio.to_thread(refresh_profile, self.profiles, self.engine, shopper)
        return len(stored), sorted(set(shoppers))
