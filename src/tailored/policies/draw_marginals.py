"""Exact position marginals of a ranking by independent three-point draws (the Thompson sampler's propensities).

Each candidate draws one of its values (candidates x atoms, `ATOMS` of its posterior) with the probabilities
`WEIGHTS`, independently; the slate is the best draws. P(c at p + 1) is the sum over c's atoms of their probability
times the probability that exactly p shown competitors draw above it: a Poisson-binomial count over the others.

A competitor is above a node (one atom of a shown candidate) with a probability that depends only on *which* of its
atoms are above it -- a pattern of ``2 ** atoms`` (for ordered atoms: the top one, the top two, all, none). So the
count above a node is a constant (the competitors whose every atom is above) plus one binomial per pattern (its
competitors' number, its pattern's probability): the competitors are counted per (pattern, node) in one
``bincount``, the binomials read from a cached table (built once per probability by the recursion
``B(a, c) = B(a - 1, c) (1 - s) + B(a - 1, c - 1) s``, sums of positive terms) and convolved, truncated to the counts
that matter. No per-candidate product, no Fourier transform: exact to rounding, and a few dozen numpy calls whatever
the number of candidates. With two groups (known and new items, each with its own number of slots) the two groups'
counts combine by convolution. Candidates that cannot reach the slate are left out.
"""

from __future__ import annotations

import threading

import numpy as np

ATOMS, WEIGHTS = np.polynomial.hermite_e.hermegauss(3)
"""The draws of a standard normal posterior: Gauss-Hermite's 3 points (0, +-sqrt(3)) and probabilities (2/3, 1/6,
1/6), which match its mean, variance and kurtosis."""
WEIGHTS = WEIGHTS / WEIGHTS.sum()
PATTERN_CHANCES = ((np.arange(1 << len(WEIGHTS))[:, None] >> np.arange(len(WEIGHTS))) & 1) @ WEIGHTS
"""The probability of each pattern of atoms (bit a: atom a), the sum of its atoms' `WEIGHTS`."""

_BINOMIALS: dict[float, np.ndarray] = {}
"""Per probability s, the table ``[a, c] = P(Binomial(a, s) = c)``, grown by doubling (`_binomials`)."""
_BINOMIALS_LOCK = threading.Lock()


def ranked_marginals(values: np.ndarray, groups: np.ndarray, caps: tuple[int, int], rows: np.ndarray
                     ) -> np.ndarray:
    """(len(rows), shown): the exact probability that candidate ``rows[i]`` is at position p + 1 when each candidate
    draws one of its ``values`` (candidates x atoms, with probabilities `WEIGHTS`) independently, the slate is the
    best ``caps[0]`` draws of group False and the best ``caps[1]`` of group True (``caps[0] == caps[1]``: any mix of
    ``caps[0]``, one group), ordered by draw, ties to the lower index."""
    values, rows = np.asarray(values, np.float64), np.asarray(rows, np.int64)
    single = caps[0] == caps[1]
    shown = caps[0] if single else caps[0] + caps[1]
    membership = np.zeros(len(values), bool) if single else np.asarray(groups, bool)
    group_caps = {False: shown, True: 0} if single else {False: caps[0], True: caps[1]}
    table = np.zeros((len(rows), shown))
    atoms = values.shape[1]
    relevant = _relevant(values, membership, group_caps)
    competitors, wanted = np.flatnonzero(relevant), np.flatnonzero(relevant[rows])  # wanted: rows that can show
    if len(wanted) == 0 or shown == 0:
        return table
    owners, nodes = np.repeat(rows[wanted], atoms), values[rows[wanted]].ravel()  # one node per atom of each row
    draws = values[competitors][:, :, None]
    above = (draws > nodes) | ((draws == nodes) & (competitors[:, None, None] < owners))
    above &= competitors[:, None, None] != owners  # a candidate does not compete with itself
    patterns = (above * (1 << np.arange(atoms))[:, None]).sum(axis=1)  # competitors x nodes: which atoms are above
    codes = patterns + (np.arange(len(nodes)) * (1 << atoms))
    tallies = {group: np.bincount(codes[membership[competitors] == group].ravel(), minlength=len(nodes) << atoms
                                  ).reshape(len(nodes), 1 << atoms) for group in group_caps}
    owner_group = membership[rows[wanted]]
    for group, cap in group_caps.items():
        mine = np.flatnonzero(owner_group == group)
        if cap == 0 or len(mine) == 0:
            continue
        own_nodes = (mine[:, None] * atoms + np.arange(atoms)).ravel()
        own = _counts(tallies[group][own_nodes], cap)  # the group's others above: fewer than cap to be shown
        cap_other = group_caps[not group]
        if cap_other == 0 or not tallies[not group][own_nodes, 1:].any():
            position = own
        else:  # the other group's shown members above: min(its count above, its cap)
            other = _counts(tallies[not group][own_nodes], cap_other)
            other = np.concatenate([other, np.clip(1.0 - other.sum(axis=-1, keepdims=True), 0.0, 1.0)], axis=-1)
            position = np.zeros((len(own_nodes), shown))
            for count in range(other.shape[-1]):
                position[:, count:count + cap] += own[:, :shown - count] * other[:, count, None]
        table[wanted[mine], :position.shape[-1]] = np.einsum("a,iap->ip", WEIGHTS,
                                                             position.reshape(len(mine), atoms, -1))
    return table


def _counts(tally: np.ndarray, width: int) -> np.ndarray:
    """(nodes, width): P(count above = 0..width - 1) at each node, from ``tally`` (nodes x patterns: how many
    competitors have each pattern of atoms above the node). Pattern 0 (no atom above) adds nothing, the last (every
    atom above) adds one for certain, each other one a binomial with its atoms' total probability."""
    full = tally.shape[1] - 1
    distribution = np.zeros((len(tally), width))
    distribution[:, 0] = 1.0
    for pattern in np.flatnonzero(tally[:, 1:full].any(axis=0)) + 1:
        binomial = _binomials(float(PATTERN_CHANCES[pattern]), int(tally[:, pattern].max()))[tally[:, pattern]]
        distribution = _truncated_convolution(distribution, binomial, width)
    index = np.arange(width) - tally[:, full, None]
    return np.where(index >= 0, np.take_along_axis(distribution, np.maximum(index, 0), axis=1), 0.0)


def _truncated_convolution(left: np.ndarray, right: np.ndarray, width: int) -> np.ndarray:
    """Row by row, the first ``width`` terms of the convolution of two distributions over counts."""
    right = right[:, :width]
    if right.shape[1] < width:
        right = np.pad(right, ((0, 0), (0, width - right.shape[1])))
    lag = np.arange(width)[None, :] - np.arange(width)[:, None]  # [i, c] = c - i
    shifted = np.where(lag >= 0, right[:, np.maximum(lag, 0)], 0.0)
    return np.einsum("ni,nic->nc", left, shifted)


def _binomials(chance: float, most: int) -> np.ndarray:
    """The table ``[a, c] = P(Binomial(a, chance) = c)`` for ``a`` up to at least ``most`` (cached per chance)."""
    table = _BINOMIALS.get(chance)
    if table is not None and len(table) > most:
        return table
    with _BINOMIALS_LOCK:
        table = _BINOMIALS.get(chance)
        if table is None or len(table) <= most:
            size = max(most + 1, 64, 2 * (0 if table is None else len(table)))
            grown = np.zeros((size, size))
            grown[0, 0] = 1.0
            for trials in range(1, size):
                grown[trials] = grown[trials - 1] * (1.0 - chance)
                grown[trials, 1:] += grown[trials - 1, :-1] * chance
            _BINOMIALS[chance] = table = grown
    return table


def _relevant(values: np.ndarray, membership: np.ndarray, group_caps: dict[bool, int]) -> np.ndarray:
    """The candidates that can reach the slate: within its group, a highest draw not below the cap-th best lowest
    draw (the others are always below that many of their group, so they neither show nor push a shown one down)."""
    relevant = np.zeros(len(values), bool)
    for group, cap in group_caps.items():
        members = np.flatnonzero(membership == group)
        if cap == 0 or len(members) == 0:
            continue
        floor = np.sort(values[members].min(axis=1))[::-1][min(cap, len(members)) - 1]
        relevant[members[values[members].max(axis=1) >= floor]] = True
    return relevant
