"""`tailored drift`: how far recent interactions have moved from the data a saved model was trained on."""

from __future__ import annotations

from pathlib import Path

from tailored.jobs.tasks import read_valid
from tailored.monitoring.drift import DriftReport, drift_report, recent_window
from tailored.registry.model_dir import load_model


def drift_of(interactions: Path, model_dir: Path, window_days: float | None = None) -> DriftReport:
    """The drift of the last ``window_days`` of ``interactions`` (all of them when None) against the training data of
    the model in ``model_dir``."""
    return drift_report(load_model(model_dir), recent_window(read_valid(interactions), window_days))
