"""Location: items with a place (shops, restaurants, agencies, job offers) rank by how far they are from the request.

Items carry ``lat``/``lon`` attributes (degrees); the request gives ``--context lat=.. --context lon=..``. The
great-circle (haversine) distance ``d`` in km lowers each user's standardised score by ``strength * d / decay_km``
(the log of a distance decay ``exp(-strength * d / decay_km)``, as `tailored.rank.lift` applies lifts): an item
``decay_km`` further away needs one more standard deviation of relevance to keep its place. ``radius_km`` (a
parameter, or ``--context radius_km=..`` for one request) removes the items beyond it. Items without coordinates
(online products) are neither moved nor removed; a request without a location leaves every score as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.rank.base import Catalogue, Request, register_stage
from tailored.rank.lift import bounded

EARTH_RADIUS_KM = 6371.0088


def haversine_km(latitude: float, longitude: float, latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many (degrees)."""
    phi1, phi2 = np.radians(latitude), np.radians(latitudes)
    half_dphi, half_dlambda = (phi2 - phi1) / 2, np.radians(longitudes - longitude) / 2
    a = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@register_stage("location")
@dataclass(eq=False)
class LocationAdjuster:
    """Distance decay (and an optional radius filter) from the request's location to the items'."""

    decay_km: float = 5.0
    strength: float = 1.0
    radius_km: float | None = None
    latitude_column: str = "lat"
    longitude_column: str = "lon"

    def fit(self, dataset: Dataset) -> Self:
        return self

    def distances(self, request: Request) -> np.ndarray | None:
        """Km from the request to each item (NaN for items without coordinates); None without a request location."""
        context = request.context
        if context.latitude is None or context.longitude is None:
            return None
        key = f"location {self.latitude_column} {self.longitude_column} {len(request.catalogue)}"
        if key not in request.tally:  # parsed once per recommendation run
            request.tally[key] = self._coordinates(request.catalogue)
        latitudes, longitudes = request.tally[key]
        return haversine_km(context.latitude, context.longitude, latitudes, longitudes)

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        distances = self.distances(request)
        if distances is None:
            return scores
        placed = np.isfinite(distances)
        scores = bounded(scores) - (self.strength * np.nan_to_num(distances) / self.decay_km).astype(np.float32)
        radius = request.context.radius_km or self.radius_km or np.inf
        scores[:, placed & (np.nan_to_num(distances) > radius)] = -np.inf
        return scores

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        distances = self.distances(request)
        reasons = np.full(items.shape, "", dtype=object)
        if distances is None:
            return reasons
        listed = np.where(items >= 0, distances[np.maximum(items, 0)], np.nan)
        placed = np.isfinite(listed)
        reasons[placed] = [f"{distance:.1f} km away" for distance in listed[placed]]
        return reasons

    def _coordinates(self, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
        columns = [catalogue.column(name) for name in (self.latitude_column, self.longitude_column)]
        if any(column is None for column in columns):
            available = [] if catalogue.attributes is None else list(catalogue.attributes.columns)
            raise ConfigError(f"The location stage needs item columns '{self.latitude_column}' and "
                              f"'{self.longitude_column}' (degrees); the items have {available}. Train with an items "
                              "file holding them, or set latitude_column/longitude_column.")
        latitudes, longitudes = (pd.to_numeric(column, errors="coerce").to_numpy(np.float64) for column in columns)
        padded = np.full((2, len(catalogue)), np.nan)
        padded[0, : len(latitudes)], padded[1, : len(longitudes)] = latitudes, longitudes
        padded[:, (np.abs(padded[0]) > 90) | (np.abs(padded[1]) > 180)] = np.nan
        return padded[0], padded[1]
