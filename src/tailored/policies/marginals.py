"""Exact position marginals of a ranking by independently perturbed scores.

Each candidate ``c`` draws a value ``X_c`` with density ``f_c`` and CDF ``F_c``, independently; the slate is the
candidates by decreasing value. Candidate ``c`` is at position ``p + 1`` when exactly ``p`` others draw more::

    P(c at p + 1) = integral f_c(t) * P(exactly p of the others exceed t) dt

The inner term is a Poisson-binomial probability over the others' ``1 - F_j(t)``, computed by a dynamic programme
truncated at ``k`` counts (prefix and suffix products over the candidates, so leaving ``c`` out is a convolution of
two non-negative sequences: stable, no division); the outer integral is a quadrature whose nodes the caller chooses
for its distributions (`gauss_legendre`, `panels`: composite Gauss-Legendre). Plackett-Luce sampling is the case
of Gumbel values (`softmax`); any other family (normal or Beta posteriors of a Thompson sampler) passes its own
CDFs, densities and nodes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

EPSILON = 1e-17
"""CDF values this close to 0 or 1 are rounded to it (subnormal arithmetic is a hundred times slower)."""
TINY = 1e-200
"""Weighted densities below this are 0 (an error below TINY per node)."""


def gauss_legendre(edges: np.ndarray, order: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre quadrature: ``order`` nodes on each panel between consecutive
    sorted distinct ``edges`` (exact for polynomials of degree ``2 * order - 1`` on each panel)."""
    edges = np.unique(np.asarray(edges, dtype=np.float64))
    return panels(edges[:-1], edges[1:], order)


def panels(lefts: np.ndarray, rights: np.ndarray, order: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``order``-point Gauss-Legendre on each panel ``[lefts[i], rights[i]]`` (flattened)."""
    base, weights = _legendre(order)
    half = (np.asarray(rights, dtype=np.float64) - lefts)[:, None] / 2
    return ((np.asarray(lefts, dtype=np.float64)[:, None] + half) + half * base).ravel(), (half * weights).ravel()


def position_marginals(
    cdf: np.ndarray, pdf: np.ndarray, weights: np.ndarray, k: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """``(len(rows), k)``: the probability that candidate ``rows[i]`` is at position ``p + 1`` of the ranking by the
    candidates' independent draws, all candidates when ``rows`` is None.

    ``cdf`` and ``pdf`` are ``(n, Q)``: each candidate's CDF and density at the ``Q`` quadrature nodes, whose
    weights are ``weights`` (``(Q,)``, e.g. from `gauss_legendre`; nodes covering where every density has mass).
    Cost: ``O(n * k * Q)``, a few small numpy steps per candidate (the candidates outside ``rows`` are counted once,
    those in ``rows`` by prefixes and suffixes, so asking for the rows a slate shows is about half the cost of all
    rows) and one batched ``(k, Q) @ (Q, k)`` product per row.
    """
    n, nodes = cdf.shape
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if k == 0 or n == 0 or len(rows) == 0:
        return np.zeros((len(rows), k))
    # CDFs within EPSILON of 0 or 1 are rounded there: no subnormal products (slow), an error below n * EPSILON
    cdf = np.where(cdf < EPSILON, 0.0, np.where(cdf > 1.0 - EPSILON, 1.0, cdf))
    others = np.ones(n, bool)
    others[rows] = False
    m = len(rows)
    # runs[i, j, 0]: P(exactly j of the others and of rows[:i] exceed the node); runs[i, j, 1]: of rows[m - i:]
    factors = np.stack([cdf[rows], cdf[rows[::-1]]], axis=1)
    survivals = 1.0 - factors
    runs = np.zeros((m + 1, k, 2, nodes))
    runs[0, :, 0] = _exceeding(cdf[others], k)
    runs[0, 0, 1] = 1.0
    for i in range(m):
        np.multiply(runs[i], factors[i], out=runs[i + 1])
        runs[i + 1, 1:] += runs[i, :-1] * survivals[i]
    # leaving rows[r] out: the prefix before it convolved with the suffix after it; cross[r, a, b] sums
    # w_q f_c(t_q) prefix[r, a, q] suffix[r + 1, b, q] over the nodes, and the marginal at p sums a + b = p
    order = np.arange(m)
    density = pdf[rows] * weights
    density[density < TINY] = 0.0  # as for the CDFs: no subnormal products
    weighted = runs[order, :, 0] * density[:, None, :]
    cross = np.matmul(weighted, runs[m - 1 - order, :, 1].transpose(0, 2, 1))
    return cross.reshape(m, k * k) @ _antidiagonals(k)


def _exceeding(cdf: np.ndarray, k: int) -> np.ndarray:
    """``(k, Q)``: P(exactly j of the candidates exceed the node), j < k (the Poisson-binomial DP, truncated)."""
    counts = np.zeros((k, cdf.shape[1]))
    counts[0] = 1.0
    survival = 1.0 - cdf
    for factor, chance in zip(cdf, survival):
        shifted = counts[:-1] * chance
        counts *= factor
        counts[1:] += shifted
    return counts


@lru_cache(maxsize=8)
def _legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(order)


@lru_cache(maxsize=64)
def _antidiagonals(k: int) -> np.ndarray:
    """``(k * k, k)``: the 0/1 matrix that sums the anti-diagonals ``a + b = p`` of a flattened ``(k, k)`` matrix."""
    a, b = np.divmod(np.arange(k * k), k)
    matrix = np.zeros((k * k, k))
    keep = a + b < k
    matrix[np.flatnonzero(keep), (a + b)[keep]] = 1.0
    return matrix
