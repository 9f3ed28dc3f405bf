"""What is known at request time: who asks (a user, or an anonymous session's recent items), the moment, a place, the
device and channel, and items to leave out. Built once at the edges -- `parse_context` for the command line's
``--context KEY=VALUE``, `context_from` for the service's query parameters or JSON body -- and typed from there on;
an error names the input the way its caller wrote it (``--context lat`` or query parameter ``lat``)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tailored.errors import ConfigError

KEYS = {
    "date": "ISO-8601 date or date-time (default: now)",
    "lat": "latitude in degrees, -90..90",
    "lon": "longitude in degrees, -180..180",
    "radius_km": "only items within this distance of lat/lon",
    "recent": "items just viewed or bought, oldest first, '|'-separated (an anonymous session or live activity)",
    "device": "free attribute (mobile, desktop, ...)",
    "channel": "free attribute (web, app, store, email, ...)",
    "segment": "free attribute (a customer segment)",
}
FIRST_YEAR, LAST_YEAR = 1970, 2200
Naming = Callable[[str], str]
"""How an error names a context key: as a command-line flag or as a query parameter."""


def flag(key: str) -> str:
    return f"--context {key}"


def parameter(key: str) -> str:
    return f"query parameter {key!r}"


@dataclass(frozen=True)
class Context:
    """Request context. ``moment`` is timezone-aware (UTC when a naive date is given). None: the time is not known
    (an offline evaluation): the stages driven by the date -- seasonal, time of day, calendar -- leave the scores as
    they are, and those that need a reference time (rules, recent activity, launch) use now. `parse_context` and
    `context_from` default to now. ``recent``: item ids just viewed or bought, oldest first."""

    moment: dt.datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    radius_km: float | None = None
    device: str | None = None
    channel: str | None = None
    segment: str | None = None
    recent: tuple[str, ...] = ()

    def when(self) -> dt.datetime:
        return self.moment or dt.datetime.now(dt.UTC)



@dataclass(frozen=True)
class Query:
    """One recommendation request: a user id (None for an anonymous session, known by ``context.recent`` alone), the
    context, item ids never to return, and the attributes of a user the model was not trained on (column -> value, as
    a users table holds them: e.g. the service's stored attributes), which the cold-start path ranks them by."""

    user_id: str | None = None
    context: Context = field(default_factory=Context)
    exclude: tuple[str, ...] = ()
    attributes: Mapping[str, Any] | None = None


def parse_context(pairs: Iterable[str]) -> Context:
    """``date=2026-12-15T19:30``, ``lat=48.85``, ``lon=2.35`` and the other `KEYS` as ``KEY=VALUE`` strings (the
    command line); errors name ``--context KEY``."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--context expects KEY=VALUE (e.g. date=2026-12-15T19:30), got {pair!r}.")
        values[key.strip()] = value.strip()
    return context_from(values, flag)


def context_from(values: Mapping[str, str], name: Naming = parameter, recent: Iterable[str] = ()) -> Context:
    """The context of ``values`` (key -> text, the `KEYS`) and ``recent`` item ids (added after those of a ``recent``
    key). An unknown key, an unparsable or out-of-range date or coordinate is a `ConfigError` that names the key with
    ``name`` and says what is valid."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        valid = "; ".join(f"{key}: {meaning}" for key, meaning in KEYS.items())
        raise ConfigError(f"Unknown context key(s) {unknown}. Valid keys -- {valid}.")
    moment = _moment(values["date"], name) if "date" in values else dt.datetime.now(dt.UTC)
    latitude = _degrees(values, "lat", 90.0, name)
    longitude = _degrees(values, "lon", 180.0, name)
    if (latitude is None) != (longitude is None):
        raise ConfigError(f"{name('lat')} and lon go together: give both or neither.")
    radius = None
    if "radius_km" in values:
        radius = _number(values["radius_km"], "radius_km", name)
        if radius <= 0 or latitude is None:
            raise ConfigError(f"{name('radius_km')}={values['radius_km']} needs a positive distance and lat/lon.")
    items = [item for item in values.get("recent", "").split("|") if item] + list(recent)
    return Context(moment, latitude, longitude, radius, values.get("device"), values.get("channel"),
                   values.get("segment"), tuple(items))


def _moment(text: str, name: Naming) -> dt.datetime:
    parsed = pd.to_datetime(text, errors="coerce", utc=True)
    if pd.isna(parsed):
        raise ConfigError(f"{name('date')}={text!r} is not an ISO-8601 date or date-time, e.g. 2026-12-15T19:30.")
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ConfigError(f"{name('date')}={text!r} is out of range: years {FIRST_YEAR} to {LAST_YEAR}.")
    return parsed.to_pydatetime()


def _degrees(values: Mapping[str, str], key: str, limit: float, name: Naming) -> float | None:
    if key not in values:
        return None
    number = _number(values[key], key, name)
    if not -limit <= number <= limit:
        raise ConfigError(f"{name(key)}={number} is out of range: -{limit:g} to {limit:g} degrees.")
    return number


def _number(text: str, key: str, name: Naming) -> float:
    try:
        number = float(text)
    except ValueError as error:
        raise ConfigError(f"{name(key)} must be a number, got {text!r}.") from error
    if not math.isfinite(number):
        raise ConfigError(f"{name(key)} must be a finite number, got {text!r}.")
    return number
