"""The stage catalogue (`tailored.config.Registry`): stages by name, and errors that name the valid ones."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from tailored.config import Registry
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.rank import STAGES, SeasonalAdjuster, TimeOfDayAdjuster, create_stage


def test_a_registered_class_is_found_by_name_and_knows_its_name() -> None:
    registry = Registry("stage", "tailored.rank")

    @registry.register("noop")
    @dataclass
    class Noop:
        strength: float = 1.0

    assert registry["noop"] is Noop and Noop.stage == "noop"  # type: ignore[attr-defined]
    assert registry.names() == ["noop"] and "noop" in registry and "other" not in registry
    with pytest.raises(ConfigError, match=r"^Unknown stage 'other'\. Valid stages: noop\.$"):
        registry["other"]


def test_the_stage_catalogue_builds_the_presets_from_text_parameters() -> None:
    assert {"seasonal", "time-of-day", "season-cap"} <= set(STAGES.names())
    seasonal = create_stage("seasonal", {"smoothing_weeks": "2", "prior": "none"})
    assert type(seasonal) is SeasonalAdjuster and (seasonal.smoothing_weeks, seasonal.prior) == (2, None)
    assert type(create_stage("time-of-day")) is TimeOfDayAdjuster
    with pytest.raises(ConfigError, match="Unknown stage 'weather'. Valid stages: calendar, diversity"):
        create_stage("weather")
    with pytest.raises(ConfigError, match=r"valid: \['min_gain', 'min_history_days', 'prior', 'smoothing_hours'"):
        create_stage("time-of-day", {"smoothing_weeks": 1})


@pytest.mark.parametrize(("name", "params", "key"), [("seasonal", {"smoothing_weeks": -1}, "smoothing"),
                                                   ("time-of-day", {"strength": -2}, "strength")])
def test_a_preset_refuses_invalid_parameters_naming_its_stage(name: str, params: dict, key: str) -> None:
    frame = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [0]})
    with pytest.raises(ConfigError, match=rf"Stage '{name}' parameter {key} = -\S+ is invalid"):
        create_stage(name, params).fit(Dataset.from_frame(frame))
