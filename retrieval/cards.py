"""ProductCard: the one shape of a product as shown (HTTP, SSE, tool data, LangChain, CLI)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from retrieval.product import Product
from retrieval.search import ScoreBreakdown, SearchResult

# The fields a search adds to a card; catalog-only views (tool data, product details) drop them.
SEARCH_FIELDS = {"score", "breakdown"}


class ProductCard(BaseModel):
    """A product as shown; every field comes from the catalog record, score and breakdown from a search."""

    id: str
    title: str
    price: float | None
    currency: str
    stock: int | None
    in_stock: bool
    brand: str | None = None
    color: str | None = None
    category: str | None = None
    category_path: list[str] = Field(default_factory=list)
    rating: float | None = None
    rating_count: int | None = None
    image: str | None = None
    score: float | None = None
    breakdown: ScoreBreakdown | None = None

    @classmethod
    def of(cls, product: Product, result: SearchResult | None = None) -> ProductCard:
        """The card of a catalog record, with the search's score and breakdown when a result is given."""
        return cls(
            id=product.id,
            title=product.title,
            price=product.price,
            currency=product.currency,
            stock=product.stock,
            in_stock=product.in_stock,
            brand=product.brand,
            color=product.color,
            category=product.category,
            category_path=list(product.category_path),
            rating=product.rating,
            rating_count=product.rating_count,
            image=product.image,
            score=result.score if result else None,
            breakdown=result.breakdown if result else None,
        )
