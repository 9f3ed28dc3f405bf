"""``epsilon-greedy``: each position keeps its greedy item with probability ``1 - epsilon``; the explored positions are
filled by a uniformly random draw, without replacement, from every candidate not kept.

Exact marginals by exchangeability (``m = min(k, n)`` shown, ``g_p`` the greedy item of position ``p``): an explored
position is uniform over the pool of ``n - K`` candidates not kept, ``K`` the number of other positions that kept
theirs, ``K ~ Binomial(m - 1, 1 - epsilon)``. With ``E1 = E[1 / (n - K)]`` and ``E2 = E[1 / (n - K')]``,
``K' ~ Binomial(m - 2, 1 - epsilon)`` (the positions other than ``p`` and ``q``):

- ``P(g_p at p) = 1 - epsilon + epsilon * E1``,
- ``P(j at p) = epsilon * E1`` for a candidate ``j`` outside the greedy top ``m``,
- ``P(g_q at p) = epsilon**2 * E2`` for ``q != p`` (both positions explored, ``g_q`` drawn into ``p``).

``epsilon=0`` is `greedy`, ``epsilon=1`` is `uniform`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tailored.errors import ConfigError
from tailored.policies.base import POLICIES, Candidates, Feedback, Slate


@POLICIES.register("epsilon-greedy")
@dataclass(frozen=True)
class EpsilonGreedyPolicy:
    """Greedy with probability ``1 - epsilon`` per position, else a uniformly random candidate not kept elsewhere."""

    policy: ClassVar[str]
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(
                f"Parameter policy 'epsilon-greedy'.epsilon={self.epsilon!r} must be in [0, 1] (e.g. 0.1)."
            )

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        n = len(candidates)
        shown = min(k, n)
        chosen = np.arange(shown)
        explored = rng.random(shown) < self.epsilon
        if explored.any():
            pool = np.ones(n, bool)
            pool[chosen[~explored]] = False
            chosen[explored] = rng.choice(np.flatnonzero(pool), size=int(explored.sum()), replace=False)
        one, two = self._expectations(n, shown)
        positions = np.arange(shown)
        propensities = np.where(chosen >= shown, self.epsilon * one, self.epsilon**2 * two)
        propensities[chosen == positions] = 1.0 - self.epsilon + self.epsilon * one
        return Slate(chosen, propensities)

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        n = len(candidates)
        shown = min(k, n)
        one, two = self._expectations(n, shown)
        marginals = np.zeros((n, k))
        marginals[:, :shown] = self.epsilon * one
        marginals[:shown, :shown] = self.epsilon**2 * two
        marginals[np.arange(shown), np.arange(shown)] = 1.0 - self.epsilon + self.epsilon * one
        return marginals

    def _expectations(self, n: int, shown: int) -> tuple[float, float]:
        """``E[1 / (n - K)]`` for ``K ~ Binomial(shown - 1, 1 - epsilon)`` and ``Binomial(shown - 2, 1 - epsilon)``."""

        def expected_inverse_pool(others: int) -> float:
            keep, explore = 1.0 - self.epsilon, self.epsilon
            return sum(math.comb(others, kept) * keep**kept * explore ** (others - kept) / (n - kept)
                       for kept in range(others + 1)) if others >= 0 else 0.0

        return expected_inverse_pool(shown - 1), expected_inverse_pool(shown - 2)

    def learn(self, feedback: Feedback) -> None:
        """Stateless: nothing to learn."""

    def params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}
