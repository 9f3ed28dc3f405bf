"""``softmax``: Plackett-Luce sampling without replacement over the request's standardised scores / temperature.

The scores are standardised per request (``z = (s - mean) / std``, all 0 when they are equal; `standardised`), so
one temperature T means the same exploration for any scorer. Candidate ``c`` has weight ``w_c = exp(z_c / T)``;
the slate draws position 1 with probability ``w_c / sum w``, position 2 among the rest likewise, and so on. It is
sampled by Gumbel-top-k (sort ``z_c / T + Gumbel noise``), and the exact position marginals are the ranking-by-
perturbed-scores integral of `tailored.policies.marginals` with Gumbel CDFs ``F_c(t) = exp(-exp(mu_c - t))``.

Candidates whose probability of reaching the top ``k`` is below ``PRUNE`` (bounded by ``k * w_c / w_(k)``, ``w_(k)``
the k-th largest weight) are left out of the draw: the policy is exactly Plackett-Luce over the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tailored.errors import ConfigError
from tailored.policies.base import POLICIES, Candidates, Feedback, Slate
from tailored.policies.marginals import panels, position_marginals

LIMIT = 50.0
"""Standardised scores are clipped to [-LIMIT, LIMIT] (a -inf score gets -LIMIT)."""
PRUNE = 1e-12
"""Candidates less likely than this to reach the top k are never drawn."""
PANEL, ORDER = 2.0, 12
"""Quadrature: Gauss-Legendre panels of this width (in units of the Gumbel scale) and order; absolute error ~1e-12."""
BELOW, ABOVE = 4.0, 3.0
"""Each candidate's window [mu - BELOW, mu + ABOVE], where its density and its CDF's bend are (`quadrature`)."""


def standardised(scores: np.ndarray) -> np.ndarray:
    """``(s - mean) / std`` over the request's real scores (all 0 when they are equal), clipped to [-LIMIT, LIMIT];
    a score that stands for minus infinity (below ``float64.min / 8``: `candidates_of` maps -inf to ``min / 4``)
    is left out of the mean and std and gets ``-LIMIT``."""
    scores = np.asarray(scores, dtype=np.float64)
    real = scores > np.finfo(np.float64).min / 8
    z = np.full(len(scores), -LIMIT)
    if real.any():
        values = scores[real] / max(np.abs(scores[real]).max(), np.finfo(np.float64).tiny)  # no overflow in std
        spread = values.std()
        z[real] = np.clip((values - values.mean()) / spread, -LIMIT, LIMIT) if spread > 0 else 0.0
    return z


def quadrature(mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for the Plackett-Luce marginal integral over Gumbel locations ``mu`` (slate of ``k``).

    The windows [mu_c - BELOW, mu_c + ABOVE], merged where they overlap, get Gauss-Legendre panels of width <= PANEL.
    Between windows and above the last, every integrand is smooth in ``y = exp(a - t)`` (``a`` the gap's start; the
    densities there are ``exp(mu_c - a) * exp(-y * exp(mu_c - a))`` times CDFs of the same form): one panel in y
    each, so far-apart candidates (low temperatures) cost a few panels, not a grid over the distance. Below the
    (k+1)-th largest mu - BELOW, k others exceed t except with probability < (k + 1) * 1e-23: not integrated.
    """
    low = (np.partition(mu, len(mu) - k - 1)[len(mu) - k - 1] if len(mu) > k else mu.min()) - BELOW
    located = np.sort(mu[mu + ABOVE > low])
    starts, ends = np.maximum(located - BELOW, low), located + ABOVE
    reach = np.maximum.accumulate(ends)
    first = np.concatenate([[True], starts[1:] > reach[:-1]])  # a window that starts a new cluster
    lefts, rights = starts[first], reach[np.concatenate([first[1:], [True]])]
    counts = np.ceil((rights - lefts) / PANEL).astype(np.int64)  # panels of width <= PANEL per cluster
    cluster = np.repeat(np.arange(len(lefts)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    width = (rights - lefts)[cluster] / counts[cluster]
    body, body_weights = panels(lefts[cluster] + step * width, lefts[cluster] + (step + 1) * width, ORDER)
    gaps = np.concatenate([lefts[1:], [np.inf]]) - rights  # each gap (and the tail) in y = exp(a - t)
    y, y_weights = panels(np.exp(-gaps), np.ones(len(gaps)), ORDER)
    starts_of_gaps = np.repeat(rights, ORDER)
    return np.concatenate([body, starts_of_gaps - np.log(y)]), np.concatenate([body_weights, y_weights / y])


@POLICIES.register("softmax")
@dataclass(frozen=True)
class SoftmaxPolicy:
    """Plackett-Luce over ``exp(standardised score / temperature)``: low temperatures approach greedy, high ones
    uniform."""

    policy: ClassVar[str]
    temperature: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.temperature < math.inf:
            raise ConfigError(
                f"Parameter policy 'softmax'.temperature={self.temperature!r} must be > 0 (and finite), e.g. 0.5."
            )

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        shown = min(k, len(candidates))
        drawn, mu = self._drawn(candidates, shown)
        order = np.argsort(-(mu + rng.gumbel(size=len(mu))))[:shown]
        if shown == 0:
            return Slate(order, np.ones(0))
        propensities = self._marginals(mu, shown, order)[np.arange(shown), np.arange(shown)]
        return Slate(drawn[order], np.minimum(propensities, 1.0))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        shown = min(k, len(candidates))
        marginals = np.zeros((len(candidates), k))
        drawn, mu = self._drawn(candidates, shown)
        if shown:
            marginals[drawn, :shown] = np.minimum(self._marginals(mu, shown), 1.0)
        return marginals

    def _drawn(self, candidates: Candidates, shown: int) -> tuple[np.ndarray, np.ndarray]:
        """The candidates that may be drawn and their Gumbel locations ``mu = z / temperature``."""
        z = standardised(candidates.scores)
        mu = z / self.temperature
        if len(mu) == 0:
            return np.zeros(0, np.int64), mu
        kth = np.partition(mu, len(mu) - shown)[len(mu) - shown] if shown else mu.max()
        drawn = np.flatnonzero(mu >= kth + math.log(PRUNE / max(shown, 1)))
        return drawn, mu[drawn]

    @staticmethod
    def _marginals(mu: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Position marginals of Plackett-Luce with log-weights ``mu`` (Gumbel locations), rows ``rows``."""
        nodes, weights = quadrature(mu, k)
        exceed = np.exp(np.minimum(mu[:, None] - nodes[None, :], 40.0))
        cdf = np.exp(-exceed)
        return position_marginals(cdf, exceed * cdf, weights, k, rows)

    def learn(self, feedback: Feedback) -> None:
        """Stateless: nothing to learn."""

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}
