"""Monitoring tables of a store: the daily production figures (``daily_metrics``: one row per day, metric and group,
aggregates without user ids), the training records and the alerts; plus the aggregate reads the daily figures need
(purchase revenue and item activity in a time range, user and item attributes). Recomputing a day replaces its rows
in one write transaction, so the job is idempotent and a reader never sees half a day."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.errors import DataError
from tailored.store import schema
from tailored.store.attribution import (ATTRIBUTED_TYPES, ATTRIBUTION_WINDOW_SECONDS, attribute, check_window,
                                        feedback_log, shown_positions)
from tailored.store.database import EventStore, write_transaction
from tailored.store.reads import EVENT_FIELDS, EXPOSURE_FIELDS

DAILY_COLUMNS = ["day", "metric", "kind", "key", "value"]
ALERT_FIELDS = ("at", "day", "rule", "severity", "message", "value")
ID_CHUNK = 5_000
JSON_FIELDS = ("items", "propensities", "context")


def write_daily(store: EventStore, days: Iterable[str], rows: pd.DataFrame) -> int:
    """Replace the stored figures of ``days`` by ``rows`` (`DAILY_COLUMNS`; NaN stored as NULL) in one transaction;
    returns the rows written."""
    days = sorted(set(days))
    frame = rows[DAILY_COLUMNS].astype({"value": float})
    stray = sorted(set(frame["day"]) - set(days))
    if stray:
        raise DataError(f"Daily rows of days {stray} are outside the days written {days}: write each day's rows with "
                        "its day.")
    now = time.time()
    records = [{"day": day, "metric": metric, "kind": kind, "key": key,
                "value": None if np.isnan(value) else float(value), "computed_at": now}
               for day, metric, kind, key, value in frame.itertuples(index=False, name=None)]
    with write_transaction(store.engine) as connection:
        connection.execute(schema.daily_metrics.delete().where(schema.daily_metrics.c.day.in_(days)))
        if records:
            connection.execute(schema.daily_metrics.insert(), records)
    return len(records)


def daily_rows(store: EventStore, since: str | None = None, until: str | None = None) -> pd.DataFrame:
    """The stored daily figures (`DAILY_COLUMNS`, ``value`` NaN where NULL) of days in [since, until], by day."""
    table = schema.daily_metrics.c
    query = sa.select(table.day, table.metric, table.kind, table.key, table.value)
    if since is not None:
        query = query.where(table.day >= since)
    if until is not None:
        query = query.where(table.day <= until)
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(table.day, table.kind, table.key, table.metric)).all()
    frame = pd.DataFrame(rows, columns=DAILY_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


def add_training(store: EventStore, model: str, fingerprint: str, record: dict[str, Any],
                 at: float | None = None) -> int:
    """Store one training record; returns its id."""
    with write_transaction(store.engine) as connection:
        result = connection.execute(schema.trainings.insert().values(
            at=time.time() if at is None else at, model=model, fingerprint=fingerprint, record=record))
        return int(result.inserted_primary_key[0])


def trainings(store: EventStore, since: float | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """Training records (``id, at, model, fingerprint`` and the record's fields), oldest first."""
    table = schema.trainings.c
    query = sa.select(table.id, table.at, table.model, table.fingerprint, table.record)
    if since is not None:
        query = query.where(table.at >= since)
    if model is not None:
        query = query.where(table.model == model)
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(table.at, table.id)).all()
    return [{"id": row[0], "at": row[1], "model": row[2], "fingerprint": row[3]} | dict(row[4]) for row in rows]


def replace_alerts(store: EventStore, day: str, rules: Iterable[str], raised: list[dict[str, Any]]) -> None:
    """Replace the alerts of ``day`` raised by ``rules`` (re-evaluating a day raises its alerts once; alerts of other
    rules, e.g. the loop's, stay) by ``raised`` (`ALERT_FIELDS`), in one transaction."""
    table = schema.alerts
    with write_transaction(store.engine) as connection:
        connection.execute(table.delete().where((table.c.day == day) & table.c.rule.in_(sorted(set(rules)))))
        if raised:
            connection.execute(table.insert(), [{name: each[name] for name in ALERT_FIELDS} for each in raised])


def add_alert(store: EventStore, day: str, rule: str, severity: str, message: str, value: float | None = None) -> None:
    """Store one alert raised now (by the loop, say: a failed quality check)."""
    with write_transaction(store.engine) as connection:
        connection.execute(schema.alerts.insert().values(at=time.time(), day=day, rule=rule, severity=severity,
                                                         message=message[:500], value=value))


def alerts(store: EventStore, since: str | None = None) -> list[dict[str, Any]]:
    """The stored alerts (`ALERT_FIELDS`) of days from ``since`` (YYYY-MM-DD), by day then rule."""
    table = schema.alerts.c
    query = sa.select(*[table[name] for name in ALERT_FIELDS])
    if since is not None:
        query = query.where(table.day >= since)
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(table.day, table.rule, table.id)).all()
    return [dict(zip(ALERT_FIELDS, row, strict=True)) for row in rows]


def purchase_events(store: EventStore, low: float, high: float) -> pd.DataFrame:
    """``event_id, value`` (NaN: none given) of the purchase events timed in [low, high)."""
    events = schema.events.c
    query = sa.select(events.event_id, events.value).where(
        (events.type == "purchase") & (events.timestamp >= low) & (events.timestamp < high))
    with store.engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=["event_id", "value"])
    frame["value"] = frame["value"].astype(float)
    return frame


def item_activity(store: EventStore, low: float, high: float) -> pd.Series:
    """Stored events per item timed in [low, high) (any type), counted by the database."""
    events = schema.events.c
    query = (sa.select(events.item_id, sa.func.count()).where((events.timestamp >= low) & (events.timestamp < high))
             .group_by(events.item_id))
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.Series(dict(rows), dtype=np.int64, name="events")


def attribute_values(store: EventStore, kind: str, attribute: str, ids: Iterable[str] | None = None) -> pd.Series:
    """The ``attribute`` of stored users (``kind`` "user", keyed by stored id) or items ("item"), as strings, for the
    ``ids`` given (all when None); those without it are left out."""
    table = schema.users if kind == "user" else schema.items
    key = table.c.user_id if kind == "user" else table.c.item_id
    query = sa.select(key, table.c.attributes)
    rows: list[tuple] = []
    with store.engine.connect() as connection:
        if ids is None:
            rows = list(map(tuple, connection.execute(query)))
        else:
            wanted = sorted(set(ids))
            for start in range(0, len(wanted), ID_CHUNK):
                rows += map(tuple, connection.execute(query.where(key.in_(wanted[start:start + ID_CHUNK]))))
    values = pd.Series([attributes for _, attributes in rows], index=[identity for identity, _ in rows], dtype=object)
    found = values.str.get(attribute) if len(values) else values
    return found.dropna().astype(str)



def feedback_window(store: EventStore, low: float, high: float, window: float = ATTRIBUTION_WINDOW_SECONDS,
                    extra: Sequence[str] = ()) -> pd.DataFrame:
    """The feedback log's rows (`EventStore.feedback_log`, with its ``extra`` exposure columns) of the exposures
    created in [low, high), read for that time range only: an event's attribution depends only on the exposures in
    the ``window`` before it and the events matching them, so the exposures created in [low - window, high + window]
    and the click, cart and purchase events timed there give these rows exactly as the whole log does. Erased users'
    rows never appear."""
    window = check_window(window)
    exposures, events = schema.exposures.c, schema.events.c
    columns = [sa.cast(exposures[name], sa.Text) if name in JSON_FIELDS else exposures[name]
               for name in EXPOSURE_FIELDS]
    with store.engine.connect() as connection:
        shown = connection.execute(sa.select(*columns).where(
            exposures.created_at.between(low - window, high + window))).all()
        answers = connection.execute(sa.select(*[events[name] for name in EVENT_FIELDS]).where(
            events.type.in_(ATTRIBUTED_TYPES) & events.timestamp.between(low - window, high + window))).all()
        erased = set(connection.execute(sa.select(schema.erasures.c.subject)).scalars())
    lists = pd.DataFrame(list(map(tuple, shown)), columns=[*EXPOSURE_FIELDS])
    for name in JSON_FIELDS:
        lists[name] = pd.Series(_decoded(lists[name].tolist()), index=lists.index, dtype=object)
    answered = pd.DataFrame(list(map(tuple, answers)), columns=[*EVENT_FIELDS])
    if erased:
        gone = store._among(erased, set(lists["user_id"]) | set(answered["user_id"]))
        lists, answered = lists[~lists["user_id"].isin(gone)], answered[~answered["user_id"].isin(gone)]
    positions = shown_positions(lists.sort_values(["created_at", "exposure_id"], kind="stable"))
    log = feedback_log(positions, attribute(positions, answered, window), extra=extra)
    return log[(log["created_at"] >= low) & (log["created_at"] < high)].reset_index(drop=True)


def shown_items(store: EventStore, low: float, high: float) -> pd.Index:
    """The distinct items of the exposures created in [low, high)."""
    exposures = schema.exposures.c
    with store.engine.connect() as connection:
        lists = connection.execute(sa.select(sa.cast(exposures["items"], sa.Text)).where(
            (exposures.created_at >= low) & (exposures.created_at < high))).scalars().all()
    return pd.Index(pd.unique(np.fromiter(chain.from_iterable(_decoded(lists)), dtype=object)))


def _decoded(texts: list[str]) -> list[Any]:
    """JSON documents decoded in one call (a JSON column's values one by one cost ~10 times more)."""
    return json.loads("[" + ",".join(texts) + "]") if texts else []
