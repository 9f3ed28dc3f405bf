"""The Recommender's settings are declared once (`RecommenderSettings`): their help and tuning range, the parameters
`build_recommender` accepts, and what a model directory's manifest records."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from tailored.data.dataset import Dataset
from tailored.data.transforms import WEIGHTINGS
from tailored.errors import ConfigError
from tailored.models.base import Choice
from tailored.pipeline.recommender import RECOMMENDER_PARAMS, Recommender, build_recommender
from tailored.pipeline.settings import RecommenderSettings, settings_help, settings_of, settings_space
from tailored.registry.model_dir import load_model, save_model
from tests.models.test_contract import planted_groups

NAMES = ["weighting", "confidence_alpha", "decay_half_life_days", "session_prior", "exclude_seen", "fallback",
         "batch_size", "candidate_pool"]


def test_each_setting_is_declared_once_with_its_help_and_type() -> None:
    assert [field.name for field in dataclasses.fields(RecommenderSettings)] == NAMES
    assert list(RECOMMENDER_PARAMS) == NAMES and RECOMMENDER_PARAMS["session_prior"] is float
    assert all(len(text) > 20 for text in settings_help().values()) and list(settings_help()) == NAMES
    assert settings_space() == {"weighting": Choice(WEIGHTINGS)}
    parameters = inspect.signature(Recommender).parameters.values()
    assert [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD] == ["scorer", "stages"]
    assert [p.name for p in parameters if p.kind is p.KEYWORD_ONLY] == NAMES  # Recommender(scorer, weighting=...)


def test_settings_are_built_from_text_and_recorded_in_the_manifest(tmp_path) -> None:
    recommender = build_recommender("ease", {"session_prior": "0.5", "fallback": "popularity", "batch_size": "64",
                                             "exclude_seen": "false"})
    assert (recommender.session_prior, recommender.fallback, recommender.batch_size) == (0.5, "popularity", 64)
    assert recommender.exclude_seen is False
    recommender.fit(Dataset.from_frame(planted_groups()[0]))
    save_model(recommender, tmp_path / "model")
    recorded = json.loads((tmp_path / "model" / "manifest.json").read_text())["recommender"]
    assert recorded == settings_of(recommender) | {"weighting": recommender.weighting_}
    assert settings_of(load_model(tmp_path / "model")) == recorded
    with pytest.raises(ConfigError, match=r"Parameter batch_size=0 is not a valid|batch_size=0 must be above 0"):
        build_recommender("ease", {"batch_size": "0"})
