"""Prometheus metrics of one app: requests and latency per route, fallback answers, events ingested, model version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tailored_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("tailored_request_seconds", "Request latency", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.fallbacks = Counter("tailored_fallback_recommendations", "Lists served by the cold-start fallback",
                                 registry=self.registry)
        self.events = Counter("tailored_events_ingested", "Events stored", registry=self.registry)
        self.cache_hits = Counter("tailored_list_cache_hits", "Lists served from the hot-user cache",
                                  registry=self.registry)
        self.shed = Counter("tailored_shed_requests", "Requests refused with 503 because too many were in progress",
                            registry=self.registry)
        self.model_version = Info("tailored_model", "The served model", registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
