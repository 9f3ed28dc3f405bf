"""Exact position marginals of a ranking by independent three-point draws (the Thompson sampler's propensities).

Each candidate draws one of its values (candidates x atoms, `ATOMS` of its posterior) with the probabilities
`WEIGHTS`, independently; the slate is the best draws. P(c at p + 1) is the sum over c's atoms of their probability
times the probability that exactly p shown competitors draw above it: a Poisson-binomial over the others, whose
generating function is a product of one factor per competitor (prefix and suffix products leave c out; an inverse
real FFT gives the counts, exact to rounding). With two groups (known and new items, each with its own number of
slots) the two groups' counts combine by convolution. Candidates that cannot reach the slate are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATOMS, WEIGHTS = np.polynomial.hermite_e.hermegauss(3)
"""The draws of a standard normal posterior: Gauss-Hermite's 3 points (0, +-sqrt(3)) and probabilities (2/3, 1/6,
1/6), which match its mean, variance and kurtosis."""
WEIGHTS = WEIGHTS / WEIGHTS.sum()


def ranked_marginals(values: np.ndarray, groups: np.ndarray, caps: tuple[int, int], rows: np.ndarray
                     ) -> np.ndarray:
    """(len(rows), shown): the exact probability that candidate ``rows[i]`` is at position p + 1 when each candidate
    draws one of its ``values`` (candidates x atoms, with probabilities `WEIGHTS`) independently, the slate is the
    best ``caps[0]`` draws of group False and the best ``caps[1]`` of group True (``caps[0] == caps[1]``: any mix of
    ``caps[0]``, one group), ordered by draw, ties to the lower index."""
    single = caps[0] == caps[1]
    shown = caps[0] if single else caps[0] + caps[1]
    membership = np.zeros(len(values), bool) if single else np.asarray(groups, bool)
    group_caps = {False: shown, True: 0} if single else {False: caps[0], True: caps[1]}
    relevant, atoms = _relevant(values, membership, group_caps), values.shape[1]
    owners, nodes = np.repeat(rows, atoms), values[rows].ravel()  # one node per atom of each requested row
    requested = np.zeros(len(values), bool)
    requested[rows] = True
    counts_above = {}
    for group in group_caps:
        members = np.flatnonzero(relevant & (membership == group))
        draws = values[members][:, :, None]
        above = (draws > nodes) | ((draws == nodes) & (members[:, None, None] < owners))
        counts_above[group] = _Above.of(members, above, requested[members])
    table = np.zeros((len(rows), shown))
    for group, cap in group_caps.items():
        mine, theirs, cap_other = counts_above[group], counts_above[not group], group_caps[not group]
        counted = np.zeros(len(values), bool)
        counted[mine.members] = True
        wanted = np.flatnonzero(counted[rows])
        if cap == 0 or len(wanted) == 0:
            continue
        slot, own_nodes = np.searchsorted(mine.members, rows[wanted])[:, None], _own_nodes(wanted, atoms)
        own = mine.counts(slot, own_nodes, cap)  # the group's others above: fewer than cap to be shown
        if cap_other == 0 or len(theirs.members) == 0:
            position = own
        else:  # the other group's shown members above: min(its count above, its cap)
            counts = theirs.counts(None, own_nodes, len(theirs.members) + 1)
            other = np.concatenate([counts[..., :cap_other], counts[..., cap_other:].sum(axis=-1, keepdims=True)],
                                   axis=-1)
            position = np.zeros((len(wanted), atoms, shown))
            for count in range(other.shape[-1]):
                position[..., count:count + cap] += own[..., :shown - count] * other[..., count, None]
        table[wanted, :position.shape[-1]] = np.einsum("a,iap->ip", WEIGHTS, position)
    return table


@dataclass(frozen=True, eq=False)
class _Above:
    """How many of a group's ``members`` draw above each node. Members certainly above a node shift the count
    (``prefix_shift[j]``: of members ``< j``; ``suffix_shift[j]``: of members ``>= j``); the uncertain ones enter
    generating functions evaluated at the first half of ``size`` roots of unity (the rest are conjugates), as
    cumulative products of the factors ``1 + s (w - 1)``: ``prefix[j]`` and ``suffix[j]`` likewise. Leaving one
    member out is a product; the count's distribution an inverse real DFT, exact to rounding."""

    members: np.ndarray
    prefix: np.ndarray
    suffix: np.ndarray
    prefix_shift: np.ndarray
    suffix_shift: np.ndarray
    size: int

    @classmethod
    def of(cls, members: np.ndarray, above: np.ndarray, requested: np.ndarray) -> _Above:
        """From ``above`` (members x atoms x nodes: the atom draws above the node); members never above any node
        (a factor 1) are left out unless ``requested``."""
        always, never = above.all(axis=1), ~above.any(axis=1)
        counted = ~never.all(axis=1) | requested
        members, above, always, never = members[counted], above[counted], always[counted], never[counted]
        uncertain = ~(always | never)
        size = int(uncertain.sum(axis=0).max(initial=0)) + 1
        roots = np.exp(-2j * np.pi * np.arange(size // 2 + 1) / size) - 1.0
        factors = np.where(uncertain, np.einsum("a,mag->mg", WEIGHTS, above), 0.0)[..., None] * roots
        factors += 1.0
        ones, zeros = np.ones((1, *factors.shape[1:]), complex), np.zeros((1, factors.shape[1]), np.int64)
        shifts = np.cumsum(always, axis=0)
        return cls(members, np.concatenate([ones, np.cumprod(factors, axis=0)]),
                   np.concatenate([np.cumprod(factors[::-1], axis=0)[::-1], ones]),
                   np.concatenate([zeros, shifts]), np.concatenate([np.cumsum(always[::-1], axis=0)[::-1], zeros]),
                   size)

    def counts(self, slot: np.ndarray | None, nodes: np.ndarray, width: int) -> np.ndarray:
        """P(count above = 0..width - 1) at ``nodes`` (rows x atoms) of the members but those at ``slot`` (rows x 1;
        None: all members)."""
        if slot is None:
            spectrum, shift = self.prefix[-1][nodes], self.prefix_shift[-1][nodes]
        else:
            spectrum = self.prefix[slot, nodes] * self.suffix[slot + 1, nodes]
            shift = self.prefix_shift[slot, nodes] + self.suffix_shift[slot + 1, nodes]
        uncertain = np.clip(np.fft.irfft(spectrum, n=self.size, axis=-1), 0.0, 1.0)
        index = np.arange(width) - shift[..., None]
        inside = (index >= 0) & (index < self.size)
        return np.where(inside, np.take_along_axis(uncertain, np.clip(index, 0, self.size - 1), axis=-1), 0.0)


def _own_nodes(wanted: np.ndarray, atoms: int) -> np.ndarray:
    """The node indices of the requested rows ``wanted`` (rows x atoms)."""
    return wanted[:, None] * atoms + np.arange(atoms)


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
