"""Validation data carved from training only: what tuning may look at (never the test part)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.split.base import Split
from tailored.split.cold_start import split_cold_items, split_cold_users
from tailored.split.leave_out import split_leave_last_out, split_leave_one_out_random
from tailored.split.per_user import split_per_user
from tailored.split.random import split_random
from tailored.split.temporal import split_temporal

_METHODS: dict[str, Callable[[Dataset, float, int], Split]] = {
    "per_user": lambda data, fraction, seed: split_per_user(data, fraction, seed),
    "random": lambda data, fraction, seed: split_random(data, fraction, seed),
    "leave_last_out": lambda data, fraction, seed: split_leave_last_out(data),
    "leave_one_out_random": lambda data, fraction, seed: split_leave_one_out_random(data, seed),
    "temporal": lambda data, fraction, seed: split_temporal(data, test_fraction=fraction),
    "cold_users": lambda data, fraction, seed: split_cold_users(data, fraction, seed),
    "cold_items": lambda data, fraction, seed: split_cold_items(data, fraction, seed),
}
VALIDATION_METHODS = tuple(_METHODS)


def carve_validation(
    split_or_train: Split | Dataset, method: str = "per_user", fraction: float = 0.2, seed: int = 42
) -> Split:
    """Split the TRAINING data (of a Split, or a training Dataset) into sub-train (``train``) and validation
    (``test``) with one of the splitters; ``method`` is the splitter's name (fraction is ignored by
    ``leave_last_out`` and ``leave_one_out_random``)."""
    if method not in _METHODS:
        raise ConfigError(f"Unknown validation method '{method}'. Valid methods: {', '.join(_METHODS)}.")
    train = split_or_train.train if isinstance(split_or_train, Split) else split_or_train
    carved = _METHODS[method](train, fraction, seed)
    return replace(carved, name=f"validation/{carved.name}")
