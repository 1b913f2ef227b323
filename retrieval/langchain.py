"""LangChain adapters: a retriever over SearchEngine and a `search_products` tool for agents."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from retrieval.filters import FilterError, Filters
from retrieval.personalization import Profile
from retrieval.search import Mode, SearchEngine, SearchResult


def result_metadata(result: SearchResult) -> dict[str, Any]:
    """JSON-serialisable facts about one ranked product (None where the catalog has no value)."""
    p = result.product
    return {
        "id": p.id,
        "title": p.title,
        "price": p.price,
        "currency": p.currency,
        "score": result.score,
        "breakdown": result.breakdown.model_dump(),
        "category_path": list(p.category_path),
        "in_stock": p.in_stock,
    }


class ProductRetriever(BaseRetriever):
    """Products as Documents, best first; page_content is the text the encoder embedded."""

    engine: SearchEngine
    k: int = Field(default=10, ge=1)
    mode: Mode = "full"
    filters: Filters | None = None
    profile: Profile | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        results = self.engine.search(query, filters=self.filters, k=self.k, mode=self.mode, profile=self.profile)
        return [
            Document(page_content=r.product.embedding_text(), metadata=result_metadata(r), id=r.product.id)
            for r in results
        ]


class SearchProductsInput(BaseModel):
    """Arguments of the `search_products` tool."""

    query: str = Field(min_length=1, description="what the shopper is looking for, in their own words")
    min_price: float | None = Field(default=None, ge=0, description="lowest acceptable price")
    max_price: float | None = Field(default=None, ge=0, description="highest acceptable price")
    brand: list[str] | None = Field(default=None, description="acceptable brands (any of)")
    color: list[str] | None = Field(default=None, description="acceptable colors (any of)")
    category: list[str] | None = Field(default=None, description="acceptable categories, any level (any of)")
    in_stock: bool | None = Field(default=None, description="true: only products known to be in stock")
    min_rating: float | None = Field(default=None, ge=0, le=5, description="lowest average rating, 0-5")
    k: int = Field(default=5, ge=1, le=50, description="how many products to return")


def make_search_tool(engine: SearchEngine, profile: Profile | None = None) -> BaseTool:
    """A `search_products` tool; `profile` (the current shopper's) personalises every call.

    Returns a list of {id, title, price, currency, in_stock, score, breakdown}. Filters that
    contradict each other (min_price above max_price) come back to the agent as an error text.
    """

    def search_products(
        query: str,
        min_price: float | None = None,
        max_price: float | None = None,
        brand: list[str] | None = None,
        color: list[str] | None = None,
        category: list[str] | None = None,
        in_stock: bool | None = None,
        min_rating: float | None = None,
        k: int = 5,
    ) -> list[dict[str, Any]]:
        try:
            filters = Filters.build(
                min_price=min_price,
                max_price=max_price,
                brand=brand,
                color=color,
                category=category,
                in_stock=in_stock,
                min_rating=min_rating,
            )
        except FilterError as exc:
            raise ToolException(f"invalid filters: {exc}") from None
        results = engine.search(query, filters=filters, k=k, mode="full", profile=profile)
        keys = ("id", "title", "price", "currency", "in_stock", "score", "breakdown")
        return [{key: result_metadata(r)[key] for key in keys} for r in results]

    return StructuredTool.from_function(
        func=search_products,
        name="search_products",
        description=(
            "Search the store's product catalog. Returns the best matching products with id, title, "
            "price, currency, stock status and a relevance score. Use filters for hard constraints "
            "(price range, brand, color, category, in stock, rating)."
        ),
        args_schema=SearchProductsInput,
        handle_tool_error=True,
    )
