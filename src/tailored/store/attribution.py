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

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

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


class Matched(NamedTuple):
    """`attribution_of`'s answer, one entry per event: ``slot`` the row of the shown positions the event went to
    (-1 for none), ``by`` (exposure_id / window / none / duplicate) and the event's reward shares."""

    slot: np.ndarray
    by: np.ndarray
    click: np.ndarray
    purchase: np.ndarray
    revenue: np.ndarray


def unrolled(items: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lists of shown ``items``, one entry per shown position: the list's row, the position (1 = top) and the item
    id (text)."""
    lengths = np.fromiter(map(len, items), np.int64, len(items))
    rows = np.repeat(np.arange(len(lengths)), lengths)
    positions = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths) + 1
    return rows, positions, np.array(list(chain.from_iterable(items)), dtype=object).astype(str).astype(object)


def shown_positions(exposures: pd.DataFrame) -> pd.DataFrame:
    """One row per shown position of ``exposures`` (rows with ``items`` and ``propensities`` lists of the same
    length, plus any other columns, repeated): ``position`` 1 = top, ``item_id`` and ``propensity``."""
    items, propensities = exposures["items"].tolist(), exposures["propensities"].tolist()
    if list(map(len, items)) != list(map(len, propensities)):
        raise DataError("An exposure has a different number of items and propensities: its row is corrupt.")
    rows, positions, item_ids = unrolled(items)
    shown = exposures.drop(columns=["items", "propensities"]).iloc[rows].reset_index(drop=True)
    return shown.assign(position=positions, item_id=item_ids,
                        propensity=np.array(list(chain.from_iterable(propensities)), dtype=float))


def attribute(shown: pd.DataFrame, events: pd.DataFrame, window: float = ATTRIBUTION_WINDOW_SECONDS) -> pd.DataFrame:
    """The attribution of each of ``events`` (`EVENT_COLUMNS`; ``exposure_id`` None when not given, ``value`` used
    for revenue when present) to the exposures ``shown`` (`SHOWN_COLUMNS`: one row per position, `shown_positions`),
    by the rule of this module (`attribution_of`). Returns `ATTRIBUTION_COLUMNS`, indexed like ``events``: the
    exposure and position matched (missing and 0 for ``none``), ``by`` in exposure_id / window / none / duplicate,
    and the event's reward shares."""
    _require(shown, SHOWN_COLUMNS, "shown positions")
    _require(events, EVENT_COLUMNS, "events")
    found = attribution_of(shown, events, window)
    hit = found.slot >= 0
    exposure, position = np.full(len(hit), None, dtype=object), np.zeros(len(hit), dtype=np.int64)
    exposure[hit] = _text(shown["exposure_id"])[found.slot[hit]]
    position[hit] = np.asarray(shown["position"], dtype=np.int64)[found.slot[hit]]
    return pd.DataFrame({"exposure_id": exposure, "position": position, "by": found.by, "click": found.click,
                         "purchase": found.purchase, "revenue": found.revenue}, index=events.index)


def attribution_of(shown: Mapping[str, Any], events: Mapping[str, Any],
                   window: float = ATTRIBUTION_WINDOW_SECONDS) -> Matched:
    """THE rule of this module, on columns (a DataFrame or a dict of sequences): ``shown`` has `SHOWN_COLUMNS` (one
    row per position), ``events`` `EVENT_COLUMNS` (``exposure_id`` None or "" when not given; ``value``, when
    present, is a purchase's revenue). Plain numpy on integer codes, so a batch of a few events costs about a
    millisecond and a large log stays vectorised. The result for an event depends only on the exposures within
    ``window`` before it and on the events matching the same exposures, so a subset holding those gives the same
    answer as the whole log."""
    window = check_window(window)
    count = len(events["event_id"])
    claimed = np.asarray(events["exposure_id"], dtype=object)
    given = ~pd.isna(claimed)
    given[given] = _text(claimed[given]) != ""
    # exposure and event ids are coded in sorted order: ties go to the largest exposure id, the smallest event id
    exposure, claim = _codes(shown["exposure_id"], np.where(given, claimed, ""), sort=True)
    user, event_user = _codes(shown["user_id"], events["user_id"])
    item, event_item = _codes(shown["item_id"], events["item_id"])
    kinds = _text(events["type"])
    created, timestamp = np.asarray(shown["created_at"], float), np.asarray(events["timestamp"], float)
    # a slot is an (exposure, item): an item shown twice in one list is credited at its first position
    items = int(max(item.max(initial=0), event_item.max(initial=0))) + 1
    pair = exposure * items + item
    order = np.lexsort((np.asarray(shown["position"], np.int64), exposure))
    slots = np.sort(order[np.unique(pair[order], return_index=True)[1]])
    slot = np.full(count, -1, dtype=np.int64)
    by = np.full(count, "none", dtype=object)
    attributable = np.isin(kinds, ATTRIBUTED_TYPES)

    # by id: the claimed exposure shows the item to the same user, at most a window before the event
    claims = np.flatnonzero(attributable & given)
    hits = _find(pair[slots], claim[claims] * items + event_item[claims])
    claims, hits = claims[hits >= 0], slots[hits[hits >= 0]]
    age = timestamp[claims] - created[hits]
    keep = (user[hits] == event_user[claims]) & (age >= 0) & (age <= window)
    slot[claims[keep]], by[claims[keep]] = hits[keep], "exposure_id"

    # by window: the same user's latest slot of the item created in [t - window, t] (an as-of join on sorted keys)
    rest = np.flatnonzero(attributable & (slot < 0))
    group = np.concatenate([user[slots] * items + item[slots], event_user[rest] * items + event_item[rest]])
    times = np.concatenate([created[slots], timestamp[rest]])
    is_slot = np.arange(len(group)) < len(slots)  # at equal times, slots come first, then by exposure id
    order = np.lexsort((np.concatenate([exposure[slots], np.zeros(len(rest), np.int64)]), ~is_slot, times, group))
    latest = np.maximum.accumulate(np.where(is_slot[order], np.arange(len(order)), -1)) if len(order) else order
    at = np.flatnonzero(~is_slot[order])
    before = latest[at]
    ok = before >= 0
    before, at = order[before[ok]], order[at[ok]]
    ok = (group[before] == group[at]) & (times[at] - times[before] <= window)
    events_found = rest[at[ok] - len(slots)]
    slot[events_found], by[events_found] = slots[before[ok]], "window"

    # an (exposure, item, type) is credited once: the earliest event (then the smallest event id, then the first row)
    _, kind = np.unique(kinds, return_inverse=True)
    event_rank = pd.factorize(_text(events["event_id"]), sort=True)[0]
    ranked = np.flatnonzero(slot >= 0)
    ranked = ranked[np.lexsort((event_rank[ranked], timestamp[ranked]))]
    first = np.zeros(len(ranked), dtype=bool)
    first[np.unique(slot[ranked] * (kind.max(initial=0) + 1) + kind[ranked], return_index=True)[1]] = True
    by[ranked[~first]] = "duplicate"
    # the reward shares: the first credited click/cart/purchase of a slot clicks, its first credited purchase buys
    ranked = ranked[first]
    click = np.zeros(count, dtype=np.int64)
    click[ranked[np.unique(slot[ranked], return_index=True)[1]]] = 1
    purchase = (np.isin(by, CREDITED) & (kinds == "purchase")).astype(np.int64)
    values = np.asarray(events["value"], dtype=float) if "value" in events else np.zeros(count)
    revenue = np.where(purchase == 1, np.nan_to_num(values, nan=0.0), 0.0)
    return Matched(slot, by, click, purchase, revenue)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(f"The {what} to attribute lack the column(s) {missing}: they need {list(columns)}.")


def _text(values: Any) -> np.ndarray:
    """Key values as text objects (ids compare as text on both sides, whatever their type); texts already are."""
    values = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty"):
        return values
    return values.astype(str).astype(object)


def _codes(left: Any, right: Any, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of two columns of keys, equal where the texts are equal (in text order with ``sort``)."""
    left, right = _text(left), _text(right)
    codes = pd.factorize(np.concatenate([left, right]), sort=sort)[0]
    return codes[:len(left)], codes[len(left):]


def _find(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` is in ``keys`` (unique), -1 where absent."""
    if not len(keys):
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    at = order[np.minimum(np.searchsorted(keys, wanted, sorter=order), len(keys) - 1)]
    return np.where(keys[at] == wanted, at, -1)


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
