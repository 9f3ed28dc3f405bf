"""A small drifting world's history in a store, and a loop config over it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.loop.config import CanarySection, DataSection, GateSection, LoopConfig, ModelSection, RegistrySection
from tailored.loop.config import TestSection
from tailored.simulation.world import START, World, WorldSpec
from tailored.store.database import Event, EventStore

DAYS = 20


def clicks() -> pd.DataFrame:
    """The history's clicks of a small drift world, spread over the ``DAYS`` before START."""
    frame = World(WorldSpec(scenario="drift", users=300, items=150, categories=10, seed=3)).training_clicks()
    return frame.assign(**{TIMESTAMP: START + (frame[TIMESTAMP] - START) * DAYS})


def store_clicks(store: EventStore, frame: pd.DataFrame, prefix: str) -> None:
    stamps = frame[TIMESTAMP].to_numpy(np.float64)
    store.append_events([Event(f"{prefix}{n}", user, item, "click", 1.0, float(stamps[n]))
                         for n, (user, item) in enumerate(zip(frame[USER_ID], frame[ITEM_ID], strict=True))])


@pytest.fixture
def world_clicks() -> pd.DataFrame:
    return clicks()


@pytest.fixture
def config(tmp_path: Path) -> LoopConfig:
    url = f"sqlite:///{tmp_path / 'loop.db'}"
    EventStore(url)
    return LoopConfig(data=DataSection(db=url, event_types=["click"], window_days=7.0),
                      model=ModelSection("als", {"factors": 8, "exclude_seen": False}),
                      registry=RegistrySection(str(tmp_path / "registry"), "shop"),
                      test=TestSection(days=1.0, users=200), gate=GateSection(min_gain=-1.0, guardrails=[]),
                      canary=CanarySection(share=50, min_users=50, max_cycles=3), source="test loop")


def with_gate(config: LoopConfig, min_gain: float) -> LoopConfig:
    return replace(config, gate=replace(config.gate, min_gain=min_gain))
