"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shop_http_requests", "HTTP requests", ["route", "status"], registry=r)
        self.turns_started = Counter("shop_turns_started", "chat turns started", registry=r)
        self.turns_finished = Counter("shop_turns_finished", "chat turns finished", ["status"], registry=r)
        self.llm_errors = Counter("shop_llm_errors", "model calls that failed", registry=r)
        self.time_to_products = Histogram(
            "shop_time_to_products_seconds", "turn start to products event", buckets=LATENCY_BUCKETS, registry=r
        )
        self.time_to_first_token = Histogram(
            "shop_time_to_first_token_seconds", "turn start to first token", buckets=LATENCY_BUCKETS, registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
