"""Prometheus metrics of one app: requests and latency per route, fallback answers, events ingested, model version,
and the latest stored day's production figures (`tailored monitor daily`: click rate, conversion, coverage, bias per
segment and category...) and alerts."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric

DAILY_CACHE_SECONDS = 60.0
"""How long the latest day's figures are kept before the store is read again."""
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

    def follow_daily(self, read: Callable[[], tuple[pd.DataFrame, list[dict]]]) -> None:
        """Export the latest stored day's figures and alerts, as ``read`` gives them (daily rows, alerts)."""
        self.registry.register(DailyFigures(read))


class DailyFigures:
    """``tailored_daily{metric, kind, key}``: each figure of the latest stored day (kind ``all`` for the overall
    ones, ``segment`` / ``category`` per group), ``tailored_daily_age_days``: how old that day is, and
    ``tailored_alerts{severity}``: the alerts raised on it. Read from the store at most every
    `DAILY_CACHE_SECONDS`; nothing while the store cannot be read."""

    def __init__(self, read: Callable[[], tuple[pd.DataFrame, list[dict]]]) -> None:
        self.read, self.lock = read, threading.Lock()
        self.cached: tuple[float, list[Metric]] = (-math.inf, [])

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            if time.monotonic() - self.cached[0] > DAILY_CACHE_SECONDS:
                try:
                    self.cached = (time.monotonic(), self._families(*self.read()))
                except Exception:  # noqa: BLE001  (the request metrics must still be served)
                    self.cached = (time.monotonic(), [])
            yield from self.cached[1]

    @staticmethod
    def _families(rows: pd.DataFrame, alerts: list[dict]) -> list[Metric]:
        if rows.empty:
            return []
        day = rows["day"].max()
        latest = rows[(rows["day"] == day) & rows["value"].notna()]
        figures = GaugeMetricFamily("tailored_daily", "The latest stored day's production figures",
                                    labels=["metric", "kind", "key"])
        for metric, kind, key, value in latest[["metric", "kind", "key", "value"]].itertuples(index=False):
            figures.add_metric([metric, kind, key], float(value))
        age = GaugeMetricFamily("tailored_daily_age_days", "Days between today (UTC) and the latest stored day")
        age.add_metric([], float((pd.Timestamp.now("UTC").normalize().tz_localize(None) - pd.Timestamp(day)).days))
        raised = GaugeMetricFamily("tailored_alerts", "Alerts raised on the latest stored day", labels=["severity"])
        for severity in ("warning", "critical"):
            raised.add_metric([severity], float(sum(alert["day"] == day and alert["severity"] == severity
                                                    for alert in alerts)))
        return [figures, age, raised]
