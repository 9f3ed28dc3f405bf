"""The monitoring snapshot: every stored daily figure, group figure, training record and alert since a time, as one
JSON-able dict of plain numbers and strings (None, never NaN) that the dashboard and the static report render. It
reads stored rows only (the daily job computes them), so it is fast whatever the size of the log."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from tailored.monitoring.daily import METRICS, OVERALL, day_of
from tailored.store.database import EventStore
from tailored.store.monitoring import alerts, daily_rows, trainings

INTEGER_METRICS = ("impressions", "lists", "users")
TRAINING_FIELDS = ("quality", "bias", "evaluation", "segments", "diff")


def snapshot(store: EventStore, since: float | None = None) -> dict[str, Any]:
    """``generated_at``, ``daily`` (one dict per stored day: every `METRICS` figure), ``groups`` (per day, segment and
    category: exposure share and click rate), ``trainings`` and ``alerts`` from ``since`` (unix seconds; all when
    None), oldest first."""
    first_day = None if since is None else day_of(since)
    rows = daily_rows(store, since=first_day)
    overall = rows[rows["kind"] == OVERALL]
    daily = []
    for day, figures in overall.groupby("day", sort=True):
        values = dict(zip(figures["metric"], figures["value"], strict=True))
        daily.append({"day": day} | {name: _number(values.get(name), name in INTEGER_METRICS) for name in METRICS})
    grouped = rows[rows["kind"] != OVERALL].set_index(["day", "kind", "key", "metric"])["value"].unstack("metric")
    groups = [{"day": day, "kind": kind, "key": key,
               "exposure_share": _number(figures.get("exposure_share")) or 0.0,
               "click_rate": _number(figures.get("click_rate"))}
              for (day, kind, key), figures in grouped.iterrows()] if len(grouped) else []
    records = [{"at": each["at"], "model": each["model"], "fingerprint": each["fingerprint"]}
               | {name: _plain(each.get(name, {})) for name in TRAINING_FIELDS}
               for each in trainings(store, since=since)]
    raised = [{"at": each["at"], "day": each["day"], "rule": each["rule"], "severity": each["severity"],
               "message": each["message"], "value": _number(each["value"])} for each in alerts(store, since=first_day)]
    return {"generated_at": time.time(), "daily": daily, "groups": groups, "trainings": records, "alerts": raised}


def _number(value: Any, integer: bool = False) -> float | int | None:
    """A plain float (int for counts); None for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return int(value) if integer else float(value)


def _plain(value: Any) -> Any:
    """A JSON document with NaN and infinities replaced by None."""
    if isinstance(value, dict):
        return {str(key): _plain(each) for key, each in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(each) for each in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
