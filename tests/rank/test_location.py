from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank import Catalogue, LocationAdjuster
from tailored.query import parse_context
from tailored.rank.base import bare_request
from tailored.rank.location import haversine_km

PARIS, LYON = (48.8566, 2.3522), (45.7640, 4.8357)


def test_haversine_matches_a_known_distance() -> None:
    assert haversine_km(*PARIS, np.array([LYON[0]]), np.array([LYON[1]]))[0] == pytest.approx(391.5, abs=1.0)
    assert haversine_km(0.0, 0.0, np.array([0.0]), np.array([1.0]))[0] == pytest.approx(111.195, abs=0.01)


def shops() -> Catalogue:
    # at the point, 111 km east, online
    attributes = pd.DataFrame({"lat": [0.0, 0.0, np.nan], "lon": [0.0, 1.0, np.nan]})
    return Catalogue(np.array(["here", "far", "online"]), attributes)


def test_distance_decay_lowers_far_items_by_distance_over_decay() -> None:
    scores = np.array([[1.0, 2.0, 3.0]], np.float32)  # z-scores: -1.2247, 0, 1.2247
    request = bare_request(1, shops(), parse_context(["lat=0", "lon=0"]))
    adjusted = LocationAdjuster(decay_km=100.0).adjust(scores, request)
    z = 3 * np.tanh((scores[0] - 2.0) / math.sqrt(2 / 3) / 3)  # standardised, softly bounded
    np.testing.assert_allclose(adjusted[0], [z[0], z[1] - 1.11195, z[2]], atol=1e-4)


def test_radius_filters_placed_items_only_and_no_location_changes_nothing() -> None:
    scores = np.array([[1.0, 2.0, 3.0]], np.float32)
    request = bare_request(1, shops(), parse_context(["lat=0", "lon=0", "radius_km=50"]))
    adjusted = LocationAdjuster().adjust(scores, request)
    assert np.isfinite(adjusted[0, [0, 2]]).all() and adjusted[0, 1] == -np.inf
    assert LocationAdjuster().adjust(scores, bare_request(1, shops())) is scores
    reasons = LocationAdjuster().explain(np.array([[1, 2, -1]]), request)
    assert reasons.tolist() == [["111.2 km away", "", ""]]


def test_missing_coordinate_columns_are_named() -> None:
    request = bare_request(1, Catalogue(np.array(["a"]), pd.DataFrame({"city": ["Paris"]})),
                           parse_context(["lat=0", "lon=0"]))
    with pytest.raises(ConfigError, match=r"needs item columns 'lat' and 'lon'.*\['city'\]"):
        LocationAdjuster().adjust(np.zeros((1, 1), np.float32), request)


def test_in_a_pipeline_the_nearest_shops_come_first() -> None:
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item_id": [f"shop{i}" for i in range(10)], "lat": 48.0 + np.arange(10) * 0.1, "lon": 2.0})
    frame = pd.DataFrame({"user_id": rng.integers(0, 30, 300).astype(str),
                          "item_id": rng.choice(items["item_id"], 300)})
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[LocationAdjuster(decay_km=1.0)])
    recommender.fit(Dataset.from_frame(frame, items=items))
    near_north = recommender.recommend(["0"], 3, context=parse_context(["lat=48.9", "lon=2.0"]), explain=True)
    assert near_north["item_id"].tolist() == ["shop9", "shop8", "shop7"]
    assert near_north["reasons"].iloc[0].endswith("0.0 km away")
