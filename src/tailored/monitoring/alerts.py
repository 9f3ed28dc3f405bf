"""Alert rules on the stored daily figures, written in TOML:

```toml
[[rule]]
name = "click rate"           # unique in the file
metric = "click_rate"         # a daily figure (monitoring.daily.METRICS) or, with kind, exposure_share / click_rate
op = ">="                     # threshold: the figure must satisfy `metric op value`; an alert when it does not
value = 0.05
severity = "critical"         # optional: "warning" (default) or "critical"

[[rule]]
name = "category exposure drop"
metric = "exposure_share"
kind = "category"             # optional: "segment" or "category"; without key, every key of the kind
change = -0.5                 # change: relative change against the mean of the previous baseline_days stored days'
baseline_days = 7             # values (default 7); negative: alert at a fall of that much or more, positive: a rise
```

A figure missing on the day (NULL: nothing to compute it from) or a baseline without values raises nothing."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.config import read_toml
from tailored.errors import ConfigError
from tailored.monitoring.daily import GROUP_METRICS, GROUPS, METRICS, OVERALL, parse_day
from tailored.store.database import EventStore
from tailored.store.monitoring import daily_rows, replace_alerts

SEVERITIES = ("warning", "critical")
OPERATORS = ("<=", ">=")
FIELDS = {"name", "metric", "kind", "key", "op", "value", "change", "baseline_days", "severity"}
DEFAULT_BASELINE_DAYS = 7


@dataclass(frozen=True)
class Rule:
    """One alert rule: a threshold (``op``, ``value``) or a change against the trailing mean (``change``,
    ``baseline_days``) on a figure, overall (``kind`` "") or per group (``key`` None: every key)."""

    name: str
    metric: str
    kind: str = OVERALL
    key: str | None = None
    op: str | None = None
    value: float | None = None
    change: float | None = None
    baseline_days: int = DEFAULT_BASELINE_DAYS
    severity: str = "warning"

    def describe(self, key: str) -> str:
        where = f"{self.metric}" + (f" of {self.kind} {key!r}" if self.kind else "")
        if self.op is not None:
            return f"{where} must be {self.op} {self.value:g}"
        return f"{where} changed by {self.change:+.0%} or more against its {self.baseline_days}-day mean"


def load_rules(path: Path) -> list[Rule]:
    """The rules of a TOML file, each checked; a ConfigError naming the file, the rule and the field otherwise."""
    document = read_toml(path, "Alert rules file")[0]
    unknown = sorted(set(document) - {"rule"})
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {unknown}: rules are [[rule]] tables.")
    entries = document.get("rule", [])
    if not isinstance(entries, list) or not all(isinstance(each, dict) for each in entries):
        raise ConfigError(f"{path}: `rule` must be an array of tables ([[rule]]).")
    rules = [parse_rule(entry, f"{path}: rule {number}") for number, entry in enumerate(entries, 1)]
    names = pd.Series([rule.name for rule in rules])
    if names.duplicated().any():
        raise ConfigError(f"{path}: rule name {names[names.duplicated()].iloc[0]!r} is used twice: names are unique.")
    return rules


def parse_rule(entry: dict[str, Any], where: str) -> Rule:
    """A `Rule` from one [[rule]] table; ``where`` names it in errors."""
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ConfigError(f"{where}: field 'name' must be a non-empty string of at most 100 characters.")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; fields: {', '.join(sorted(FIELDS))}.")
    kind = entry.get("kind", OVERALL)
    if kind != OVERALL and kind not in GROUPS:
        raise ConfigError(f"{where}: field 'kind' must be one of {', '.join(GROUPS)} (or left out), got {kind!r}.")
    known = METRICS if kind == OVERALL else GROUP_METRICS
    if entry.get("metric") not in known:
        raise ConfigError(f"{where}: field 'metric' must be one of {', '.join(known)}"
                          f"{' for kind ' + repr(kind) if kind else ''}, got {entry.get('metric')!r}.")
    key = entry.get("key")
    if key is not None and (not kind or not isinstance(key, str)):
        raise ConfigError(f"{where}: field 'key' is a group name (a string) and needs 'kind'.")
    severity = entry.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: field 'severity' must be one of {', '.join(SEVERITIES)}, got {severity!r}.")
    threshold, change = "op" in entry or "value" in entry, "change" in entry or "baseline_days" in entry
    if threshold == change:
        raise ConfigError(f"{where}: give either 'op' and 'value' (a threshold) or 'change' (and 'baseline_days').")
    common = {"name": name, "metric": entry["metric"], "kind": kind, "key": key, "severity": severity}
    if threshold:
        if entry.get("op") not in OPERATORS:
            raise ConfigError(f"{where}: field 'op' must be \"<=\" or \">=\", got {entry.get('op')!r}.")
        return Rule(**common, op=entry["op"], value=_number(entry.get("value"), "value", where))
    amount = _number(entry.get("change"), "change", where)
    days = entry.get("baseline_days", DEFAULT_BASELINE_DAYS)
    if not amount or amount <= -1:
        raise ConfigError(f"{where}: field 'change' must be a relative change above -1 and not 0, e.g. -0.2 for a "
                          f"20% fall, got {amount}.")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"{where}: field 'baseline_days' must be a whole number of days >= 1, got {days!r}.")
    return Rule(**common, change=amount, baseline_days=days)


def _number(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ConfigError(f"{where}: field {field!r} must be a finite number, got {value!r}.")
    return float(value)


def evaluate(rows: pd.DataFrame, rules: list[Rule], day: str) -> list[dict[str, Any]]:
    """The alerts the ``rules`` raise on ``day`` from daily figure ``rows`` (`store.monitoring.DAILY_COLUMNS`,
    holding the day and the baselines before it)."""
    raised, now = [], time.time()
    for rule in rules:
        mine = rows[(rows["metric"] == rule.metric) & (rows["kind"] == rule.kind)]
        if rule.key is not None:
            mine = mine[mine["key"] == rule.key]
        today = mine[mine["day"] == day].set_index("key")["value"].dropna()
        if rule.op is not None:
            broken = today[today > rule.value] if rule.op == "<=" else today[today < rule.value]
            found = [(key, value, "") for key, value in broken.items()]
        else:
            first = (dt.date.fromisoformat(day) - dt.timedelta(days=rule.baseline_days)).isoformat()
            before = mine[(mine["day"] >= first) & (mine["day"] < day)].groupby("key")["value"].mean()
            mean = before.reindex(today.index)
            relative = (today - mean) / mean.where(mean > 0)
            hit = relative <= rule.change if rule.change < 0 else relative >= rule.change
            found = [(key, today[key], f" ({mean[key]:.4g} -> {today[key]:.4g}, {relative[key]:+.1%})")
                     for key in relative.index[hit.fillna(False).to_numpy(bool)]]
        raised += [{"at": now, "day": day, "rule": rule.name, "severity": rule.severity, "value": float(value),
                    "message": f"{rule.name}: {rule.describe(key)}" + (f", got {value:.4g}" if not note else note)}
                   for key, value, note in found]
    return raised


def evaluate_day(store: EventStore, rules: list[Rule], day: str) -> list[dict[str, Any]]:
    """Evaluate ``rules`` on the stored figures of ``day`` and store the alerts raised (replacing those the same
    rules raised on that day before); returns them."""
    day = parse_day(day)
    longest = max((rule.baseline_days for rule in rules), default=0)
    rows = daily_rows(store, since=(dt.date.fromisoformat(day) - dt.timedelta(days=longest)).isoformat(), until=day)
    raised = evaluate(rows, rules, day)
    replace_alerts(store, day, [rule.name for rule in rules], raised)
    return raised
