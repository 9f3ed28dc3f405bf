"""The numbers of each dashboard page as plain JSON (the pages' twin API, ``/dashboard/api/PAGE``): the monitoring
snapshot's daily figures, groups, trainings and alerts; the registry's versions and stage histories; each
experiment's status. A page renders exactly these numbers, so a test can hold the page to its API."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, UTC
from typing import Any

import sqlalchemy as sa

from tailored.errors import ConfigError
from tailored.jobs.experiments import status_of
from tailored.registry.versions import ModelRegistry
from tailored.store import schema
from tailored.store.database import EventStore
from tailored.store.experiments import experiments

PAGES: dict[str, str] = {"overview": "Overview", "models": "Models", "experiments": "Experiments",
                         "bias": "Bias & fairness", "quality": "Data quality & drift", "alerts": "Alerts"}
"""Page name (its path under /dashboard) -> title, in the navigation's order."""
BUSINESS = ("impressions", "lists", "users", "click_rate", "conversion", "revenue", "average_basket", "sales_share")
EXPOSURE = ("coverage", "exposure_gini", "long_tail_share", "new_item_share", "fallback_rate", "latency_p50_ms",
            "latency_p99_ms")
DRIFT = ("psi_users", "psi_items", "psi_scores")
LOOP_STEPS = 100
"""The improvement loop's latest audited steps shown on the models page."""


def since_timestamp(day: str | None, option: str = "since") -> float | None:
    """``YYYY-MM-DD`` (UTC midnight) as unix seconds; None for None; a ConfigError naming ``option`` otherwise."""
    if day is None or day == "":
        return None
    try:
        return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp()
    except ValueError as error:
        raise ConfigError(f"{option} must be a day YYYY-MM-DD (UTC), got {day!r}.") from error


@dataclass
class Sources:
    """Where the pages' numbers come from: the store, the registry (None: no models page rows), the first day shown
    (unix seconds, None: all). The monitoring snapshot is read once, when a page first needs it."""

    store: EventStore
    registry: ModelRegistry | None = None
    since: float | None = None
    _snapshot: dict[str, Any] | None = field(default=None, repr=False)

    def snapshot(self) -> dict[str, Any]:
        if self._snapshot is None:
            from tailored.monitoring.snapshot import snapshot  # pandas and scipy load with the first page, not the app

            self._snapshot = snapshot(self.store, self.since)
        return self._snapshot


def numbers(page: str, sources: Sources) -> dict[str, Any]:
    """The JSON of ``page`` (one of `PAGES`); a ConfigError naming the known pages otherwise."""
    if page not in PAGES:
        raise ConfigError(f"No dashboard page {page!r}; pages: {', '.join(PAGES)}.")
    found = BUILDERS[page](sources)
    return json.loads(json.dumps(found, default=_plain))


def _plain(value: Any) -> Any:
    """numpy scalars and other stragglers as plain JSON (NaN and infinities as None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float | str | bool) else str(value)


def overview(sources: Sources) -> dict[str, Any]:
    """Per day the business and exposure figures, and their totals over the days shown."""
    days = [{key: row.get(key) for key in ("day", *BUSINESS, *EXPOSURE)} for row in sources.snapshot()["daily"]]
    totals = {key: sum(row[key] or 0 for row in days) for key in ("impressions", "lists", "revenue")}
    return {"days": days, "totals": totals}


def models(sources: Sources) -> dict[str, Any]:
    """The registry's versions (with their stages and metrics), each stage's pointer history (promotions; a
    rollback removes the last entry), the audit trail of promotions and rollbacks (newest first: who, why), the stored
    training records and the improvement loop's latest audited steps
    (`audit_log` rows ``loop:STEP``: canaries started, promotions, rollbacks), newest first."""
    registry = sources.registry
    versions = registry.describe() if registry is not None else []
    stages = {name: json.loads(registry.pointer_file(name).read_text())["stages"]
              if registry.pointer_file(name).exists() else {} for name in registry.names()} if registry else {}
    changes = sorted(({"name": name} | change for name in registry.names() for change in registry.changes(name)),
                     key=lambda change: -change["at"]) if registry else []
    trainings = [{key: row.get(key) for key in ("at", "model", "fingerprint", "evaluation", "diff")}
                 for row in sources.snapshot()["trainings"]]
    log = schema.audit_log.c
    query = sa.select(log.at, log.action, log.subject, log.detail).where(log.action.like("loop:%"))
    if sources.since is not None:
        query = query.where(log.at >= sources.since)
    with sources.store.engine.connect() as connection:
        rows = connection.execute(query.order_by(log.at.desc(), log.id.desc()).limit(LOOP_STEPS)).all()
    loop = [{"at": at, "step": action.removeprefix("loop:"), "model": subject, "detail": detail}
            for at, action, subject, detail in rows]
    return {"registry": str(registry.root) if registry else None, "versions": versions, "stages": stages,
            "changes": changes, "trainings": trainings, "loop": loop}


def experiment_pages(sources: Sources) -> dict[str, Any]:
    """Every experiment, newest first: its surface, state and design, and its status (arms, lifts, decision)."""
    found = []
    for row in reversed(experiments(sources.store)):
        design = row["design"]
        found.append({"name": row["name"], "surface": row["surface"], "status": row["status"],
                      "created_at": row["created_at"], "stopped_at": row["stopped_at"],
                      "stop_reason": row["stop_reason"], "metric": design.get("metric"),
                      "arms": [{"name": arm["name"], "ref": arm["ref"], "share": arm["share"]}
                               for arm in design.get("arms", [])],
                      "result": status_of(sources.store, row["name"])})
    return {"experiments": found}


def bias(sources: Sources) -> dict[str, Any]:
    """Per segment and per category: exposure share and click rate by day (recommendations' bias over time)."""
    groups = sources.snapshot()["groups"]
    series: dict[str, dict[str, Any]] = {}
    for row in groups:
        entry = series.setdefault(f"{row['kind']}:{row['key']}", {"kind": row["kind"], "key": row["key"], "days": []})
        entry["days"].append({"day": row["day"], "exposure_share": row["exposure_share"],
                              "click_rate": row["click_rate"]})
    return {"groups": list(series.values())}


def quality(sources: Sources) -> dict[str, Any]:
    """Each training's data quality report and bias in its data, and the daily drift (PSI) of users, items, scores."""
    snapshot = sources.snapshot()
    trainings = [{key: row.get(key) for key in ("at", "model", "fingerprint", "quality", "bias")}
                 for row in snapshot["trainings"]]
    drift = [{key: row.get(key) for key in ("day", *DRIFT)} for row in snapshot["daily"]]
    return {"trainings": trainings, "drift": drift}


def alerts(sources: Sources) -> dict[str, Any]:
    """The alerts raised, newest first."""
    return {"alerts": sorted(sources.snapshot()["alerts"], key=lambda row: row["at"], reverse=True)}


BUILDERS = {"overview": overview, "models": models, "experiments": experiment_pages, "bias": bias,
            "quality": quality, "alerts": alerts}
