"""Per-user random hold-out (benchmark protocol P1)."""

from __future__ import annotations

import numpy as np

from tailored.data.dataset import Dataset
from tailored.split.base import Split, check_fraction, hold_out_per_user, make_split, random_keys


def split_per_user(dataset: Dataset, test_fraction: float = 0.2, seed: int = 42) -> Split:
    """Per user, a random ``round(test_fraction * n)`` of the user's n rows go to test (protocol P1).

    ``round`` is Python's (half to even); at least 1 row goes to test when n >= 2 and at least 1 row stays in
    training. For the default 0.2, ``0.2 * n`` is never exactly halfway, so half-up rounding gives the same counts.
    """
    check_fraction(test_fraction, "test_fraction")
    counts = dataset.user_counts()
    n_test = np.where(counts >= 2, np.clip(np.rint(test_fraction * counts), 1, counts - 1), 0)
    test = hold_out_per_user(dataset, n_test, random_keys(dataset, seed))
    return make_split(dataset, test, "per_user", {"test_fraction": test_fraction, "seed": seed})
