"""Fixtures shared by the service tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tests.serve.test_service import shop


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EASE model of the `shop` data, saved once per test module."""
    frame, items = shop()
    folder = tmp_path_factory.mktemp("served") / "model"
    save_model(build_recommender("ease").fit(Dataset.from_frame(frame, items=items)), folder)
    return folder
