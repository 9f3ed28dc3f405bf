"""What is known at request time: the moment, a location, the device and free attributes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from tailored.errors import ConfigError


@dataclass(frozen=True)
class Context:
    """Request context. ``moment`` is timezone-aware (UTC when a naive date is given); None means now."""

    moment: dt.datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def when(self) -> dt.datetime:
        return self.moment or dt.datetime.now(dt.timezone.utc)


def parse_context(pairs: Iterable[str]) -> Context:
    """``date=2026-12-15T19:30``, ``lat=48.85``, ``lon=2.35``, any other ``key=value`` as a free attribute."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--context expects KEY=VALUE (e.g. date=2026-12-15T19:30), got {pair!r}.")
        values[key.strip()] = value.strip()
    moment = None
    if "date" in values:
        parsed = pd.to_datetime(values.pop("date"), errors="coerce", utc=True)
        if pd.isna(parsed):
            raise ConfigError("--context date must be an ISO-8601 date or date-time, e.g. date=2026-12-15T19:30.")
        moment = parsed.to_pydatetime()
    coordinates = {}
    for key in ("lat", "lon"):
        if key in values:
            try:
                coordinates[key] = float(values.pop(key))
            except ValueError as error:
                raise ConfigError(f"--context {key} must be a number in degrees, got {error}.") from error
    return Context(moment, coordinates.get("lat"), coordinates.get("lon"), values)
