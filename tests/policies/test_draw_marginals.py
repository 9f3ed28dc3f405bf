"""draw_marginals: the exact marginals of a ranking by three-point draws, against the enumeration of every outcome
(ties, equal atoms, two groups with their own slots, rows asked in any order)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tailored.policies.draw_marginals import ATOMS, WEIGHTS, ranked_marginals


def enumerated(values: np.ndarray, groups: np.ndarray, caps: tuple[int, int]) -> np.ndarray:
    """Every one of the atoms ** n outcomes: the slate by the rule (best per group, ordered by draw, ties to the
    lower index) and its probability."""
    n, atoms = values.shape
    single = caps[0] == caps[1]
    shown = caps[0] if single else sum(caps)
    table = np.zeros((n, shown))
    for outcome in itertools.product(range(atoms), repeat=n):
        draw = values[np.arange(n), outcome]
        order = np.lexsort((np.arange(n), -draw))
        if single:
            slate = order[:shown]
        else:
            kept = np.concatenate([order[groups[order] == group][:cap] for group, cap in ((False, caps[0]),
                                                                                        (True, caps[1]))])
            slate = kept[np.lexsort((kept, -draw[kept]))]
        table[slate, np.arange(len(slate))] += np.prod(WEIGHTS[list(outcome)])
    return table


@pytest.mark.parametrize("seed", range(12))
def test_marginals_equal_the_enumeration_of_every_outcome(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    means = rng.integers(0, 3, size=n) * 0.5  # few values: equal draws across candidates (ties) on purpose
    deviations = rng.choice([0.0, 0.3, 1.0], size=n)  # some certain (three equal atoms)
    values = means[:, None] + deviations[:, None] * ATOMS
    groups = rng.random(n) < 0.4
    shown = int(rng.integers(1, n + 1))
    new = int(groups.sum())
    caps = (shown, shown)
    if seed % 2 and 0 < new < n:
        reserved = min(int(rng.integers(1, 3)), new, shown)
        known = min(shown - reserved, n - new)
        caps = (known, shown - known)
    rows = rng.permutation(n)
    expected = enumerated(values, groups, caps)
    found = ranked_marginals(values, groups, caps, rows)
    np.testing.assert_allclose(found, expected[rows], atol=1e-13)
    np.testing.assert_allclose(found.sum(axis=0), 1.0, atol=1e-13)  # every position holds someone


def test_rows_that_cannot_be_shown_get_zero_and_the_others_are_unchanged() -> None:
    """A candidate far below the others is never shown: zero everywhere, and the shown ones' marginals are those
    of the ranking without it (it pushes nobody down)."""
    values = np.array([[0.0, 1.0, 2.0], [0.5, 1.0, 1.5], [-1.0, 0.9, 3.0], [-9.0, -8.0, -7.0]])
    table = ranked_marginals(values, np.zeros(4, bool), (2, 2), np.arange(4))
    assert np.all(table[3] == 0)
    np.testing.assert_allclose(table[:3], ranked_marginals(values[:3], np.zeros(3, bool), (2, 2), np.arange(3)),
                               atol=1e-15)


def test_many_candidates_keep_the_columns_summing_to_one() -> None:
    """300 candidates (large binomial counts): still a probability per position, no negative rounding."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=300)[:, None] + 0.2 * rng.random(300)[:, None] * ATOMS
    table = ranked_marginals(values, np.zeros(300, bool), (20, 20), np.arange(300))
    assert table.min() >= 0
    np.testing.assert_allclose(table.sum(axis=0), 1.0, atol=1e-12)
    assert np.all(table.sum(axis=1) <= 1 + 1e-12)
