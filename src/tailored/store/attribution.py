"""Attribution: which shown list (exposure) and position an event answers, and the feedback log built from it.

ONE pure, vectorised rule, used by the log export (`EventStore.feedback_log`), by the rebuild of a policy's state
and by the service's online answer (`EventStore.attribute`), so they always agree:

- Only ``click``, ``cart`` and ``purchase`` events attribute (others: ``none``).
- By id: the event carries an ``exposure_id`` that exists, belongs to the same user, shows the event's item, and the
  event came ``0 <= timestamp - created_at <= window`` seconds after it.
- Else by window: the latest exposure of the same user showing the item with ``created_at`` in
  ``[timestamp - window, timestamp]`` (ties: the largest exposure id).
- Else ``none``. An (exposure, item, event type) is credited once: the earliest event (then the smallest event id)
  wins and the later ones are ``duplicate`` (they keep the exposure and position they matched).

Each event also gets its share of the log's reward columns, so that the log row of an (exposure, position) is the sum
of its events' shares: ``click`` 1 for the first credited click, cart or purchase of that slot, ``purchase`` 1 for
its first credited purchase, ``revenue`` that purchase's value (0 without one). Learning online from these shares
and rebuilding from the log therefore give the same sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tailored.errors import ConfigError, DataError

ATTRIBUTION_WINDOW_SECONDS = 86_400
"""How long after an exposure an event can be attributed to it (24 h)."""
ATTRIBUTED_TYPES = ("click", "cart", "purchase")
"""The event types that attribute (views, ratings and the rest are stored, never attributed)."""
CREDITED = ("exposure_id", "window")
"""The values of ``by`` for which an event is credited to its exposure (``none`` and ``duplicate`` are not)."""
LOG_SCHEMA = {"exposure_id": object, "user_id": object, "position": "int64", "item_id": object, "propensity": float,
              "policy": object, "model_version": object, "created_at": float, "click": "int64", "purchase": "int64",
              "revenue": float}
"""The feedback log, one row per shown position (position 1 = top): what `tailored logs export` writes, and its
column types."""
LOG_COLUMNS = list(LOG_SCHEMA)
SHOWN_COLUMNS = ["exposure_id", "user_id", "created_at", "position", "item_id"]
EVENT_COLUMNS = ["event_id", "user_id", "item_id", "type", "timestamp", "exposure_id"]
ATTRIBUTION_COLUMNS = ["exposure_id", "position", "by", "click", "purchase", "revenue"]


def check_window(window: float) -> float:
    """``window`` (seconds) if positive and finite; a ConfigError naming it otherwise."""
    if not 0 < window < np.inf:
        raise ConfigError(f"The attribution window must be a positive number of seconds, got {window}.")
    return float(window)


def shown_positions(exposures: pd.DataFrame) -> pd.DataFrame:
    """One row per shown position of ``exposures`` (rows with ``items`` and ``propensities`` lists of the same
    length, plus any other columns, repeated): ``position`` 1 = top, ``item_id`` and ``propensity``."""
    lengths = exposures["items"].map(len).to_numpy(dtype=np.int64)
    if not np.array_equal(lengths, exposures["propensities"].map(len).to_numpy(dtype=np.int64)):
        raise DataError("An exposure has a different number of items and propensities: its row is corrupt.")
    rows = np.repeat(np.arange(len(exposures)), lengths)
    shown = exposures.drop(columns=["items", "propensities"]).iloc[rows].reset_index(drop=True)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    shown["position"] = np.arange(len(rows), dtype=np.int64) - starts + 1
    shown["item_id"] = np.concatenate([*exposures["items"], []]).astype(str).astype(object)
    shown["propensity"] = np.concatenate([*exposures["propensities"], []]).astype(float)
    return shown


def attribute(shown: pd.DataFrame, events: pd.DataFrame, window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """The attribution of each of ``events`` (`EVENT_COLUMNS`; ``exposure_id`` None when not given, ``value`` used
    for revenue when present) to the exposures ``shown`` (`SHOWN_COLUMNS`: one row per position, `shown_positions`),
    by the rule of this module. Returns `ATTRIBUTION_COLUMNS`, indexed like ``events``: the exposure and position
    matched (missing and 0 for ``none``), ``by`` in exposure_id / window / none / duplicate, and the event's reward
    shares. The result for an event depends only on the exposures within ``window`` before it and on the events
    matching the same exposures, so a subset holding those gives the same answer as the whole log."""
    window = check_window(window)
    _require(shown, SHOWN_COLUMNS, "shown positions")
    _require(events, EVENT_COLUMNS, "events")
    count = len(events)
    found = pd.DataFrame({name: _text(events[name]) for name in ("event_id", "user_id", "item_id", "type")})
    found = found.assign(row=np.arange(count), timestamp=events["timestamp"].to_numpy(float),
                         claimed=_text(events["exposure_id"].astype(object).fillna("")))  # "": none given
    # an item shown twice in one list is credited at its first position
    slots = (pd.DataFrame({name: _text(shown[name]) for name in ("exposure_id", "user_id", "item_id")})
             .assign(created_at=shown["created_at"].to_numpy(float), position=shown["position"].to_numpy(np.int64))
             .sort_values(["exposure_id", "position"], kind="stable")
             .drop_duplicates(["exposure_id", "item_id"]).rename(columns={"exposure_id": "matched"}))
    matched, position = np.full(count, None, dtype=object), np.zeros(count, dtype=np.int64)
    by = np.full(count, "none", dtype=object)
    attributable = found["type"].isin(ATTRIBUTED_TYPES).to_numpy()

    claims = found[attributable & found["claimed"].ne("").to_numpy()]
    by_id = claims.merge(slots, left_on=["claimed", "user_id", "item_id"], right_on=["matched", "user_id", "item_id"])
    age = by_id["timestamp"] - by_id["created_at"]
    by_id = by_id[(age >= 0) & (age <= window)]
    rows = by_id["row"].to_numpy()
    matched[rows], position[rows], by[rows] = by_id["matched"].to_numpy(), by_id["position"].to_numpy(), "exposure_id"

    rest = found[attributable & (by == "none")].sort_values("timestamp", kind="stable")
    latest = pd.merge_asof(rest, slots.sort_values(["created_at", "matched"], kind="stable"), left_on="timestamp",
                           right_on="created_at", by=["user_id", "item_id"], direction="backward", tolerance=window)
    latest = latest[latest["matched"].notna()]
    rows = latest["row"].to_numpy()
    matched[rows], position[rows], by[rows] = latest["matched"].to_numpy(), latest["position"].to_numpy(), "window"

    credited = np.isin(by, CREDITED)
    ranked = found.assign(matched=matched).sort_values(["timestamp", "event_id"], kind="stable")
    ranked = ranked[credited[ranked["row"].to_numpy()]]
    later = ranked["row"].to_numpy()[ranked.duplicated(["matched", "item_id", "type"]).to_numpy()]
    by[later] = "duplicate"
    credited[later] = False
    # the reward shares: the first credited click/cart/purchase of a slot clicks, its first credited purchase buys
    ranked = ranked[credited[ranked["row"].to_numpy()]]
    click = np.zeros(count, dtype=np.int64)
    click[ranked["row"].to_numpy()[~ranked.duplicated(["matched", "item_id"]).to_numpy()]] = 1
    purchase = (credited & (found["type"] == "purchase").to_numpy()).astype(np.int64)
    values = events["value"].to_numpy(float) if "value" in events else np.zeros(count)
    revenue = np.where(purchase == 1, np.nan_to_num(values, nan=0.0), 0.0)
    return pd.DataFrame({"exposure_id": matched, "position": position, "by": by, "click": click, "purchase": purchase,
                         "revenue": revenue}, index=events.index)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(f"The {what} to attribute lack the column(s) {missing}: they need {list(columns)}.")


def _text(column: pd.Series) -> pd.Series:
    """A key column as pandas strings, indexed from 0 (merge keys must have one type on both sides, empty or not)."""
    return column.astype("str").reset_index(drop=True)


def feedback_log(shown: pd.DataFrame, attribution: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The feedback log (`LOG_COLUMNS`, then the ``extra`` columns of ``shown``) of ``shown`` (`shown_positions` of
    exposures with ``policy`` and ``model_version``): each position's reward columns are the sums of the shares of
    the events attributed to it (``attribution``: `attribute`'s result), 0 where none."""
    shares = (attribution[np.isin(attribution["by"], CREDITED)]
              .groupby(["exposure_id", "position"], sort=False)[["click", "purchase", "revenue"]].sum())
    log = shown.merge(shares, left_on=["exposure_id", "position"], right_index=True, how="left")
    log[["click", "purchase"]] = log[["click", "purchase"]].fillna(0).astype(np.int64)
    log["revenue"] = log["revenue"].fillna(0.0).astype(float)
    return log[[*LOG_COLUMNS, *extra]].reset_index(drop=True)
