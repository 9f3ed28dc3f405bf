"""A day's production figures from the store: the exposures created that day (UTC), the events attributed to them
(the feedback log's rule and window), the day's purchases and the stored user/item attributes (``segment``,
``category``). Each figure is defined in docs/monitoring.md; a figure that cannot be computed (no list shown, no
baseline) is NaN (stored NULL, read as None).

Per day D, with the *baseline* the exposures of the ``BASELINE_DAYS`` days before D:

- ``impressions`` shown positions, ``lists`` exposures, ``users`` exposed users;
- ``click_rate`` attributed clicks per list; ``conversion`` exposed users with an attributed purchase / exposed users;
  ``revenue`` attributed revenue; ``average_basket`` attributed revenue / attributed purchases;
- ``sales_share`` the share of the revenue of all purchases made on D that is attributed to an exposure;
- ``coverage`` stored catalogue items shown on D / stored catalogue items; ``exposure_gini`` Gini of impressions
  over the catalogue and the items shown (unshown items count 0);
- ``long_tail_share`` impressions on items outside the head, the most active items holding ``HEAD_SHARE`` of the
  events of the baseline days; ``new_item_share`` impressions on items that no exposure of the
  ``NEW_ITEM_DAYS`` days before D showed (new to the lists: just added, or back after a month unshown);
- ``fallback_rate`` lists whose context says ``"fallback": true``; ``latency_p50_ms``, ``latency_p99_ms``;
- ``psi_users`` PSI of lists per user and day (log2 buckets), ``psi_items`` PSI of impressions over the baseline's
  popularity deciles (plus one bucket for items absent from it), ``psi_scores`` PSI of the served scores over
  the baseline's score deciles, per model version (`psi_scores`): each against the baseline;
- per user ``segment`` and item ``category``: ``exposure_share`` (impressions) and ``click_rate`` (clicks on the
  group's lists or positions per list of the user group / per list showing the category). Groups seen in the baseline
  but not on D get a share 0, so a category that stops being shown is visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tailored.data.bias import gini
from tailored.errors import ConfigError
from tailored.monitoring.drift import population_stability_index
from tailored.store.attribution import ATTRIBUTION_WINDOW_SECONDS
from tailored.store.database import EventStore
from tailored.store.monitoring import (DAILY_COLUMNS, attribute_values, feedback_window, item_activity,
                                       purchase_events, shown_items, write_daily)

DAY_SECONDS = 86_400
BASELINE_DAYS = 7
NEW_ITEM_DAYS = 28
HEAD_SHARE = 0.8
USER_BUCKETS = 6  # lists per user and day: 1, 2-3, 4-7, 8-15, 16-31, 32+
ITEM_BUCKETS = 10
SCORE_BUCKETS = 10
OVERALL = ""
GROUPS = {"segment": ("user", "user_id"), "category": ("item", "item_id")}
METRICS = ["impressions", "lists", "users", "click_rate", "conversion", "revenue", "average_basket", "sales_share",
           "coverage", "exposure_gini", "long_tail_share", "new_item_share", "fallback_rate", "latency_p50_ms",
           "latency_p99_ms", "psi_users", "psi_items", "psi_scores"]
GROUP_METRICS = ["exposure_share", "click_rate"]
LOG_FIELDS = ["exposure_id", "user_id", "item_id", "created_at", "click", "purchase", "revenue",
              "latency_ms", "fallback"]


def parse_day(text: str, option: str = "--day") -> str:
    """``text`` if it is a date YYYY-MM-DD; a ConfigError naming ``option`` otherwise."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        raise ConfigError(f"{option} {text!r} is not a date: give it as YYYY-MM-DD (UTC).") from None


def day_start(day: str) -> float:
    """The unix time of 00:00 UTC of ``day``."""
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()


def day_of(seconds: float) -> str:
    """The UTC day (YYYY-MM-DD) of a unix time."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat()


def daily_figures(store: EventStore, days: Sequence[str],
                  window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """The figures of ``days`` (YYYY-MM-DD, UTC) as `DAILY_COLUMNS` rows: every `METRICS` overall (kind and key
    ""), `GROUP_METRICS` per segment and category."""
    days = sorted({parse_day(day) for day in days})
    if not days:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    low, high = day_start(days[0]) - BASELINE_DAYS * DAY_SECONDS, day_start(days[-1]) + DAY_SECONDS
    log = exposure_log(store, low, high, window)
    scores = store.served_scores(low, high)
    catalogue = store.item_ids()
    groups = {kind: attribute_values(store, table, kind, log[column].unique())
              for kind, (table, column) in GROUPS.items()}
    parts = []
    for day in days:
        start = day_start(day)
        today = log[(log["created_at"] >= start) & (log["created_at"] < start + DAY_SECONDS)]
        baseline = log[(log["created_at"] >= start - BASELINE_DAYS * DAY_SECONDS) & (log["created_at"] < start)]
        activity = item_activity(store, start - BASELINE_DAYS * DAY_SECONDS, start)
        earlier = shown_items(store, start - NEW_ITEM_DAYS * DAY_SECONDS, start)
        figures = day_metrics(today, baseline, earlier, catalogue, activity)
        figures["sales_share"] = sales_share(store, start, start + DAY_SECONDS, window)
        figures["psi_scores"] = psi_scores(_within(scores, start - BASELINE_DAYS * DAY_SECONDS, start),
                                           _within(scores, start, start + DAY_SECONDS))
        overall = pd.DataFrame({"day": day, "metric": METRICS, "kind": OVERALL, "key": OVERALL,
                                "value": [figures[name] for name in METRICS]})
        parts += [overall] + [group_metrics(today, baseline, GROUPS[kind][1], values).assign(day=day, kind=kind)
                              for kind, values in groups.items() if len(values)]
    return pd.concat(parts, ignore_index=True)[DAILY_COLUMNS].astype({"value": float})


def store_days(store: EventStore, days: Sequence[str], window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """Compute the figures of ``days`` and store them, replacing those stored before (idempotent); returns them."""
    rows = daily_figures(store, days, window)
    write_daily(store, [parse_day(day) for day in days], rows)
    return rows


def default_days(now: float) -> list[str]:
    """The days the daily job computes when none is named: yesterday (UTC) and the day before, whose late events
    (attributed up to a day after their list) are then all in."""
    yesterday = dt.datetime.fromtimestamp(now, dt.UTC).date() - dt.timedelta(days=1)
    return [(yesterday - dt.timedelta(days=1)).isoformat(), yesterday.isoformat()]


def exposure_log(store: EventStore, low: float, high: float,
                 window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """The feedback log's rows (`LOG_FIELDS`; ``fallback``: the exposure's context says so) of the exposures created
    in [low, high) (`store.monitoring.feedback_window`: only that time range is read)."""
    log = feedback_window(store, low, high, window, extra=["context", "latency_ms"])
    lists = log.drop_duplicates("exposure_id")
    fallback = pd.Series(lists["context"].str.get("fallback").eq(True).to_numpy() if len(lists) else [],
                         index=lists["exposure_id"].to_numpy(), dtype=bool)
    log["fallback"] = fallback.reindex(log["exposure_id"].to_numpy()).to_numpy(bool)
    return log[LOG_FIELDS].astype({"created_at": float, "click": np.int64, "purchase": np.int64, "revenue": float,
                                   "latency_ms": float, "fallback": bool})


def day_metrics(today: pd.DataFrame, baseline: pd.DataFrame, earlier: pd.Index, catalogue: set[str],
                activity: pd.Series) -> dict[str, float]:
    """The overall figures of a day from its log rows (``today``) against the ``baseline`` rows, the items shown
    in the `NEW_ITEM_DAYS` before it (``earlier``), the stored ``catalogue`` and the baseline's events per item
    (``activity``); ``sales_share`` and ``psi_scores`` are added by the caller (they read the day's purchases and
    the served scores)."""
    impressions = len(today)
    exposures = today.drop_duplicates("exposure_id")
    lists, users = len(exposures), today["user_id"].nunique()
    clicks, purchases, revenue = int(today["click"].sum()), int(today["purchase"].sum()), float(today["revenue"].sum())
    shown = today["item_id"].value_counts()
    latency = exposures["latency_ms"].dropna().to_numpy(float)
    everything = shown.reindex(shown.index.union(pd.Index(sorted(catalogue))), fill_value=0)
    return {
        "impressions": float(impressions), "lists": float(lists), "users": float(users),
        "click_rate": _ratio(clicks, lists),
        "conversion": _ratio(today.loc[today["purchase"] > 0, "user_id"].nunique(), users),
        "revenue": revenue, "average_basket": _ratio(revenue, purchases),
        "coverage": _ratio(len(catalogue.intersection(shown.index)), len(catalogue)),
        "exposure_gini": gini(everything.to_numpy()) if impressions else np.nan,
        "long_tail_share": _ratio(int(shown[~shown.index.isin(head_items(activity))].sum()), impressions)
        if len(activity) else np.nan,
        "new_item_share": _ratio(int(shown[~shown.index.isin(earlier)].sum()), impressions),
        "fallback_rate": _ratio(int(exposures["fallback"].sum()), lists),
        "latency_p50_ms": float(np.percentile(latency, 50)) if len(latency) else np.nan,
        "latency_p99_ms": float(np.percentile(latency, 99)) if len(latency) else np.nan,
        "psi_users": _psi(*user_activity(baseline, today)),
        "psi_items": _psi(*item_popularity(baseline, today)),
    }


def head_items(activity: pd.Series) -> pd.Index:
    """The most active items that together hold ``HEAD_SHARE`` of the events (the item crossing it included)."""
    ordered = activity.sort_values(ascending=False, kind="stable")
    before = ordered.cumsum().to_numpy() - ordered.to_numpy()
    return ordered.index[before < HEAD_SHARE * ordered.sum()]


def user_activity(baseline: pd.DataFrame, today: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Users per bucket of lists per user and day (log2 buckets), in the baseline and today."""
    def histogram(rows: pd.DataFrame) -> np.ndarray:
        lists = rows.drop_duplicates("exposure_id").assign(day=lambda r: np.floor(r["created_at"] / DAY_SECONDS))
        per_user = lists.groupby(["user_id", "day"]).size().to_numpy()
        return np.bincount(np.minimum(np.log2(np.maximum(per_user, 1)).astype(int), USER_BUCKETS - 1),
                           minlength=USER_BUCKETS)
    return histogram(baseline), histogram(today)


def item_popularity(baseline: pd.DataFrame, today: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Impressions per popularity decile of the baseline (deciles of its impressions, most shown items first), plus
    a last bucket for items it never showed: in the baseline and today."""
    counts = baseline["item_id"].value_counts()
    before = counts.cumsum().to_numpy() - counts.to_numpy()
    decile = pd.Series(np.minimum((ITEM_BUCKETS * before / max(counts.sum(), 1)).astype(int), ITEM_BUCKETS - 1),
                       index=counts.index)
    expected = np.bincount(decile.to_numpy(), weights=counts.to_numpy(), minlength=ITEM_BUCKETS + 1)
    actual = decile.reindex(today["item_id"].to_numpy()).fillna(ITEM_BUCKETS).to_numpy(int)
    return expected, np.bincount(actual, minlength=ITEM_BUCKETS + 1)


def psi_scores(baseline: pd.DataFrame, today: pd.DataFrame) -> float:
    """PSI of today's served scores against the baseline's (`EventStore.served_scores` rows), per model version:
    each version's scores today are bucketed by the deciles of that version's baseline scores (tied deciles merged),
    and the versions' PSIs are averaged with today's impressions as weights. Two models' scores are on different
    scales, so pooling them would read a promotion or a canary as drift; restricting the figure to the busiest version
    would hide the others; the weighted mean is the drift that an impression of today met, on average. Versions absent
    from the baseline (new today) and the lists of the cold-start fallback or the holdout (the non-personalised list's
    scores, whose share ``fallback_rate`` watches) are left out, as are exposures that did not keep their scores
    (logged before revision 0007). NaN when no version of today has baseline scores."""
    baseline, today = baseline[~baseline["fallback"]], today[~today["fallback"]]
    today = today[today["model_version"].isin(baseline["model_version"].unique())]
    if not len(today):
        return np.nan
    before = baseline.groupby("model_version")["score"]
    psi, weight = [], []
    for version, scores in today.groupby("model_version")["score"]:  # one pass per model version (a few a day)
        reference = before.get_group(version).to_numpy(float)
        edges = np.unique(np.quantile(reference, np.arange(1, SCORE_BUCKETS) / SCORE_BUCKETS))
        expected, actual = (np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
                            for values in (reference, scores.to_numpy(float)))
        psi.append(population_stability_index(expected, actual))
        weight.append(len(scores))
    return float(np.average(psi, weights=weight))


def _within(rows: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    """The rows created in [low, high)."""
    return rows[(rows["created_at"] >= low) & (rows["created_at"] < high)]


def group_metrics(today: pd.DataFrame, baseline: pd.DataFrame, column: str, groups: pd.Series) -> pd.DataFrame:
    """``exposure_share`` and ``click_rate`` per group of ``column`` (``groups``: id -> group; ids without one fall
    in "(none)"), for the groups of today's and the baseline's rows (a group absent today: share 0, rate NaN)."""
    def labelled(rows: pd.DataFrame) -> pd.Series:
        return pd.Series(groups.reindex(rows[column].to_numpy()).fillna("(none)").to_numpy(), index=rows.index)

    group = labelled(today)
    keys = pd.Index(sorted(pd.unique(np.concatenate([group.unique(), labelled(baseline).unique()]))), name="key")
    impressions = group.value_counts().reindex(keys, fill_value=0)
    clicks = today["click"].groupby(group).sum().reindex(keys, fill_value=0)
    lists = today["exposure_id"].groupby(group).nunique().reindex(keys, fill_value=0)
    share = impressions / max(len(today), 1) if len(today) else impressions * np.nan
    rate = clicks / lists.where(lists > 0)
    return pd.concat([pd.DataFrame({"metric": "exposure_share", "key": keys, "value": share.to_numpy(float)}),
                      pd.DataFrame({"metric": "click_rate", "key": keys, "value": rate.to_numpy(float)})],
                     ignore_index=True)


def sales_share(store: EventStore, low: float, high: float, window: float = ATTRIBUTION_WINDOW_SECONDS) -> float:
    """The share of the revenue of the purchases timed in [low, high) that is attributed to an exposure (NaN when
    they have no revenue)."""
    purchases = purchase_events(store, low, high)
    total = float(purchases["value"].fillna(0.0).sum())
    if total <= 0:
        return np.nan
    attributed = store.attribute(purchases["event_id"].tolist(), window)
    return float(attributed["revenue"].sum()) / total


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else np.nan


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two histograms; NaN when either is empty (no baseline, nothing shown)."""
    if not np.sum(expected) or not np.sum(actual):
        return np.nan
    return population_stability_index(expected, actual)
