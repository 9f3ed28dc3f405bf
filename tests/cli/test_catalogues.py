"""`tailored algorithms` and `tailored stages`: the catalogues, read from their declarations (each Recommender setting
with its default, tuning range and help text from `RecommenderSettings`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tailored.jobs.tune import search_space
from tailored.pipeline.settings import RecommenderSettings
from tests.cli.helpers import cli, flat, ok


def test_algorithms_lists_every_recommender_setting_as_declared(tmp_path: Path) -> None:
    listed = flat(ok(cli("algorithms", cwd=tmp_path)).stdout)
    assert "recommender settings (every algorithm; --param NAME=VALUE)" in listed
    for field in dataclasses.fields(RecommenderSettings):
        row = f"{field.name} │ {field.default!r} │"
        assert row in listed and flat(field.metadata["help"]) in listed, field.name
    assert "weighting │ 'auto' │ raw, log1p, binary, confidence │" in listed


def test_the_tuning_space_takes_the_tunable_settings_from_their_declaration() -> None:
    tunable = {field.name: field.metadata["tune"] for field in dataclasses.fields(RecommenderSettings)
               if field.metadata["tune"] is not None}
    assert set(tunable) == {"weighting"}
    assert {name: search_space("ease")[name] for name in tunable} == tunable  # implicit scorers tune them
    assert not set(tunable) & set(search_space("mf"))  # a rating predictor learns the values as given
