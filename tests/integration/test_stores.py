"""The orders/carts/handoffs suite of tests/unit/test_stores_contract.py against a real Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from assistant.stores import open_stores
from eval.local_servers import HOST, free_port
from tests.unit.test_stores_contract import StoresContract

pytestmark = pytest.mark.integration


class TestServerStores(StoresContract):
    @pytest.fixture(params=["redis", "postgres"])
    def url(self, request: pytest.FixtureRequest) -> str:
        return str(request.getfixturevalue("redis_url" if request.param == "redis" else "postgres_dsn"))


def test_a_server_that_does_not_answer_fails_at_start_naming_the_setting() -> None:
    port = free_port()  # nothing listens there
    for url in (f"redis://{HOST}:{port}/0", f"postgresql://shop@{HOST}:{port}/postgres?connect_timeout=2"):
        with pytest.raises(RuntimeError, match="SHOP_SESSION_STORE_URL=.*does not answer"):
            open_stores(url)
