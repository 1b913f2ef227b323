"""FilterParams and ProductCard: one filter-parameter model and one card shape behind every adapter."""

from __future__ import annotations

import pytest
import typer
from fastapi import FastAPI
from pydantic import ValidationError

from assistant.api import catalog as catalog_api
from assistant.schemas import ProductCard as SchemaCard
from assistant.tools.products import SearchProductsArgs
from retrieval import cli
from retrieval.cards import ProductCard
from retrieval.filters import FilterError, FilterParams, Filters
from retrieval.langchain import SearchProductsInput, make_search_tool
from retrieval.search import ScoreBreakdown, SearchEngine, SearchResult
from tests.unit.conftest import SMALL_CATALOG

FILTER_FIELDS = set(FilterParams.model_fields)


def test_filter_params_accept_one_string_or_a_list() -> None:
    params = FilterParams(brand="Swift", color=["Red", "Blue"], min_price=10)
    assert params.brand == ["Swift"] and params.color == ["Red", "Blue"]
    assert params.filters() == Filters(brand=["swift"], color=["red", "blue"], min_price=10)
    assert FilterParams().filters().is_empty()


def test_filter_params_check_fields_alone_and_contradictions_in_filters() -> None:
    with pytest.raises(ValidationError, match="min_rating"):
        FilterParams(min_rating=7)
    contradiction = FilterParams(min_price=9, max_price=1)  # each field is valid on its own
    with pytest.raises(FilterError) as err:
        contradiction.filters()
    assert str(err.value) == "min_price 9.0 is above max_price 1.0"


def test_the_four_adapters_take_the_same_filter_parameters(engine: SearchEngine) -> None:
    # HTTP: GET /v1/search documents each filter as a query parameter with FilterParams' description.
    app = FastAPI()
    app.include_router(catalog_api.router)
    params = app.openapi()["paths"]["/v1/search"]["get"]["parameters"]
    http = {p["name"]: p.get("description") for p in params if p["in"] == "query"}
    assert FILTER_FIELDS <= set(http)
    assert all(http[name] == FilterParams.model_fields[name].description for name in FILTER_FIELDS)
    # LangChain tool and the assistant's search_products tool: the same names in their argument schemas.
    assert issubclass(SearchProductsInput, FilterParams) and FILTER_FIELDS <= set(make_search_tool(engine).args)
    tool_schema = SearchProductsArgs.model_json_schema()  # what the tool's spec shows the model
    assert issubclass(SearchProductsArgs, FilterParams) and FILTER_FIELDS <= set(tool_schema["properties"])
    # CLI: `shop-retrieval search` has one option per filter parameter.
    command = typer.main.get_group(cli.app).commands["search"]
    assert FILTER_FIELDS <= {p.name for p in command.params}


def test_product_card_of_a_product_and_a_search_result() -> None:
    assert SchemaCard is ProductCard  # the service's card is the library's card
    product = SMALL_CATALOG[0]
    card = ProductCard.of(product)
    assert (card.id, card.price, card.stock, card.in_stock, card.category) == ("p1", 59.0, 3, True, "sneakers")
    assert card.category_path == ["footwear", "sneakers"] and card.rating_count == 120
    assert card.score is None and card.breakdown is None
    ranked = ProductCard.of(product, SearchResult(product=product, score=0.8, breakdown=ScoreBreakdown(final=0.8)))
    assert ranked.score == 0.8 and ranked.breakdown is not None and ranked.breakdown.final == 0.8
    assert ranked.model_dump(exclude={"score", "breakdown"}) == card.model_dump(exclude={"score", "breakdown"})
