"""Catalog search for a caller, and the shopper behaviour (views, clicks, cart adds, purchases) that shapes their
personalization profile."""

from __future__ import annotations

import asyncio
import io
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

from assistant.errors import (
    FeatureOff,
    InvalidImage,
    InvalidRequest,
    StoreUnavailable,
    Unavailable,
    UnknownProducts,
)
from assistant.principal import Principal
from assistant.schemas import EventIn, ProductCard, SearchQuery, SearchResponse
from retrieval.filters import FilterError
from retrieval.personalization import Event, ProfileStore, refresh_profile
from retrieval.search import SearchEngine, SearchResult
from retrieval.store import VectorStoreUnavailable


def check_image(photo: bytes) -> None:
    """InvalidImage unless `photo` is an image Pillow can read (and not a decompression bomb)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(photo)) as img:
                img.verify()
    except Exception as e:  # Pillow raises many kinds for a bad file
        raise InvalidImage(f"the upload is not an image that can be read ({type(e).__name__})") from None


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
        if not query.q.strip():  # the schema's pattern says so too; the engine cannot search for nothing
            raise InvalidRequest("q: give some text to search for, not only spaces")
        shopper = principal.shopper_id if principal.role == "widget" else query.shopper_id
        profile = self.profiles.get(shopper) if self.profiles is not None and shopper else None
        try:
            results = await asyncio.to_thread(self.engine.search, query.q, filters, query.k, "full", profile)
        except VectorStoreUnavailable as e:
            raise StoreUnavailable(f"the product index is unavailable ({e}); try again shortly") from None
        return SearchResponse(query=query.q, products=[ProductCard.of(r.product, r) for r in results])

    async def search_photo(self, photo: bytes, k: int) -> SearchResponse:
        """Products whose pictures look like the photo (CLIP image similarity); FeatureOff without a CLIP checkpoint
        or indexed product images, InvalidImage for an upload that is not a readable image."""
        if not await asyncio.to_thread(lambda: self.engine.image_enabled):
            raise FeatureOff(
                "photo search is not configured: set SHOP_CLIP_MODEL_PATH (and SHOP_IMAGE_ROOT) and index the catalog"
            )
        await asyncio.to_thread(check_image, photo)
        results = await asyncio.to_thread(self._search_photo, photo, k)
        return SearchResponse(query="", products=[ProductCard.of(r.product, r) for r in results])

    def _search_photo(self, photo: bytes, k: int) -> list[SearchResult]:
        # The encoder reads images from files; the upload lives in a private temporary directory for the call.
        with tempfile.TemporaryDirectory(prefix="shop-photo-") as tmp:
            path = Path(tmp) / "photo"
            path.write_bytes(photo)
            return self.engine.search("", k=k, mode="dense", image=path)

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
