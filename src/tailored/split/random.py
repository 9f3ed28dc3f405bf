"""Random split per interaction (for rating prediction: RMSE / MAE)."""

from __future__ import annotations

import numpy as np

from tailored.data.dataset import Dataset
from tailored.split.base import Split, check_fraction, make_split, random_keys


def split_random(dataset: Dataset, test_fraction: float = 0.2, seed: int = 42) -> Split:
    """Hold out exactly ``round(test_fraction * rows)`` interactions chosen uniformly at random."""
    check_fraction(test_fraction, "test_fraction")
    n_test = int(np.rint(test_fraction * len(dataset)))
    order = np.argsort(random_keys(dataset, seed), kind="stable")
    test = np.zeros(len(dataset), bool)
    test[order[:n_test]] = True
    return make_split(dataset, test, "random", {"test_fraction": test_fraction, "seed": seed})
