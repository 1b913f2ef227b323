"""LangChain adapters: a retriever over SearchEngine and a `search_products` tool for agents."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import Field

from retrieval.cards import ProductCard
from retrieval.filters import FilterError, FilterParams, Filters
from retrieval.personalization import Profile
from retrieval.search import Mode, SearchEngine

# The card fields each adapter returns (JSON-serialisable; None where the catalog has no value).
DOCUMENT_FIELDS = {"id", "title", "price", "currency", "score", "breakdown", "category_path", "in_stock"}
TOOL_FIELDS = {"id", "title", "price", "currency", "in_stock", "score", "breakdown"}


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
            Document(
                page_content=r.product.embedding_text(),
                metadata=ProductCard.of(r.product, r).model_dump(include=DOCUMENT_FIELDS),
                id=r.product.id,
            )
            for r in results
        ]


class SearchProductsInput(FilterParams):
    """Arguments of the `search_products` tool: a query, the filter parameters, how many."""

    query: str = Field(min_length=1, description="what the shopper is looking for, in their own words")
    k: int = Field(default=5, ge=1, le=50, description="how many products to return")


def make_search_tool(engine: SearchEngine, profile: Profile | None = None) -> BaseTool:
    """A `search_products` tool; `profile` (the current shopper's) personalises every call.

    Returns a list of {id, title, price, currency, in_stock, score, breakdown}. Filters that
    contradict each other (min_price above max_price) come back to the agent as an error text.
    """

    def search_products(query: str, k: int = 5, **filter_params: Any) -> list[dict[str, Any]]:
        # LangChain has validated the arguments against SearchProductsInput and passes those that were given.
        try:
            filters = FilterParams(**filter_params).filters()
        except FilterError as exc:
            raise ToolException(f"invalid filters: {exc}") from None
        results = engine.search(query, filters=filters, k=k, mode="full", profile=profile)
        return [ProductCard.of(r.product, r).model_dump(include=TOOL_FIELDS) for r in results]

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
