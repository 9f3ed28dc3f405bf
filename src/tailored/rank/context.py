"""What is known at request time: the moment, a location, the device and free attributes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from tailored.errors import ConfigError


FREE_KEYS = {
    "recent": "items just viewed or bought, oldest first, '|'-separated (an anonymous session or live activity)",
    "radius_km": "only items within this distance of lat/lon",
    "device": "free attribute (mobile, desktop, ...)",
    "channel": "free attribute (web, app, store, email, ...)",
    "segment": "free attribute (a customer segment)",
}
KEYS = {"date": "ISO-8601 date or date-time (default: now)", "lat": "latitude in degrees, -90..90",
        "lon": "longitude in degrees, -180..180"} | FREE_KEYS
FIRST_YEAR, LAST_YEAR = 1970, 2200


@dataclass(frozen=True)
class Context:
    """Request context. ``moment`` is timezone-aware (UTC when a naive date is given). None: the time is not known
    (an offline evaluation): the stages driven by the date -- seasonal, time of day, calendar -- leave the scores as
    they are, and those that need a reference time (rules, recent activity, launch) use now. `parse_context` (the
    command line) and the service default to now."""

    moment: dt.datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def when(self) -> dt.datetime:
        return self.moment or dt.datetime.now(dt.timezone.utc)

    def recent_items(self) -> list[str]:
        """The ``recent`` item ids, oldest first."""
        return [item for item in self.attributes.get("recent", "").split("|") if item]


def parse_context(pairs: Iterable[str]) -> Context:
    """``date=2026-12-15T19:30``, ``lat=48.85``, ``lon=2.35`` and the free keys of ``FREE_KEYS``; an unknown key,
    an unparsable or out-of-range date or coordinate is a `ConfigError` that says which and what is valid."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--context expects KEY=VALUE (e.g. date=2026-12-15T19:30), got {pair!r}.")
        values[key.strip()] = value.strip()
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        valid = "; ".join(f"{key}: {meaning}" for key, meaning in KEYS.items())
        raise ConfigError(f"Unknown context key(s) {unknown}. Valid keys -- {valid}.")
    moment = _moment(values.pop("date")) if "date" in values else dt.datetime.now(dt.timezone.utc)
    latitude = _degrees(values, "lat", 90.0)
    longitude = _degrees(values, "lon", 180.0)
    if (latitude is None) != (longitude is None):
        raise ConfigError("--context lat and lon go together: give both or neither.")
    if "radius_km" in values:
        radius = _number(values["radius_km"], "radius_km")
        if radius <= 0 or latitude is None:
            raise ConfigError(f"--context radius_km={values['radius_km']} needs a positive distance and lat/lon.")
    return Context(moment, latitude, longitude, values)


def _moment(text: str) -> dt.datetime:
    parsed = pd.to_datetime(text, errors="coerce", utc=True)
    if pd.isna(parsed):
        raise ConfigError(f"--context date={text!r} is not an ISO-8601 date or date-time, e.g. date=2026-12-15T19:30.")
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ConfigError(f"--context date={text!r} is out of range: years {FIRST_YEAR} to {LAST_YEAR}.")
    return parsed.to_pydatetime()


def _degrees(values: dict[str, str], key: str, limit: float) -> float | None:
    if key not in values:
        return None
    number = _number(values.pop(key), key)
    if not -limit <= number <= limit:
        raise ConfigError(f"--context {key}={number} is out of range: -{limit:g} to {limit:g} degrees.")
    return number


def _number(text: str, key: str) -> float:
    try:
        number = float(text)
    except ValueError as error:
        raise ConfigError(f"--context {key} must be a number, got {text!r}.") from error
    if not math.isfinite(number):
        raise ConfigError(f"--context {key} must be a finite number, got {text!r}.")
    return number
