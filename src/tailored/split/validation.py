"""Validation data carved from training only: what tuning may look at (never the test part)."""

from __future__ import annotations

from dataclasses import replace

from tailored.data.dataset import Dataset
from tailored.split.base import Split
from tailored.split.registry import SPLITTERS, split_by_name

VALIDATION_METHODS = tuple(SPLITTERS)


def carve_validation(
    split_or_train: Split | Dataset, method: str = "per_user", fraction: float = 0.2, seed: int = 42
) -> Split:
    """Split the TRAINING data (of a Split, or a training Dataset) into sub-train (``train``) and validation
    (``test``) with one of the splitters; ``method`` is the splitter's name (fraction is ignored by
    ``leave_last_out`` and ``leave_one_out_random``)."""
    train = split_or_train.train if isinstance(split_or_train, Split) else split_or_train
    carved = split_by_name(train, method, strict=False, test_fraction=fraction, fraction=fraction, seed=seed)
    return replace(carved, name=f"validation/{carved.name}")
