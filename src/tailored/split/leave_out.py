"""Leave-out splits: each user's latest row(s) (protocol P2) or one random row go to test."""

from __future__ import annotations

import numpy as np

from tailored.data.dataset import Dataset
from tailored.data.ordering import id_ranks
from tailored.errors import ConfigError
from tailored.split.base import Split, hold_out_per_user, make_split, random_keys, time_order


def split_leave_last_out(dataset: Dataset, n: int = 1) -> Split:
    """Each user's ``n`` latest rows by timestamp go to test (protocol P2 for n=1).

    Ties in time are broken by item id: the larger id counts as later. Users with ``n`` rows or fewer stay
    entirely in training.
    """
    n_test = _check_count(n)
    latest_first = (-time_order(dataset, "split_leave_last_out"), -id_ranks(dataset.items)[dataset.item_index])
    test = hold_out_per_user(dataset, _per_user(dataset, n_test), *latest_first)
    return make_split(dataset, test, "leave_last_out", {"n": n_test})


def split_leave_one_out_random(dataset: Dataset, seed: int = 42) -> Split:
    """One random row of each user with at least 2 rows goes to test."""
    test = hold_out_per_user(dataset, _per_user(dataset, 1), random_keys(dataset, seed))
    return make_split(dataset, test, "leave_one_out_random", {"seed": seed})


def _per_user(dataset: Dataset, n: int) -> np.ndarray:
    """``n`` test rows for every user with more than ``n`` rows, none for the others."""
    return np.where(dataset.user_counts() > n, n, 0)


def _check_count(n: int) -> int:
    if int(n) != n or n < 1:
        raise ConfigError(f"Parameter n={n!r} must be a positive whole number of rows per user, e.g. 1.")
    return int(n)
