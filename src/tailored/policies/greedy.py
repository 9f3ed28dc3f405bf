"""``greedy``: the scorer's order as it is (today's behaviour); every propensity is 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tailored.policies.base import POLICIES, Candidates, Feedback, Slate


@POLICIES.register("greedy")
@dataclass(frozen=True)
class GreedyPolicy:
    """Shows the first ``k`` candidates in the scorer's order (candidates come best first)."""

    policy: ClassVar[str]

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        shown = min(k, len(candidates))
        return Slate(np.arange(shown), np.ones(shown))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return np.eye(len(candidates), k)

    def learn(self, feedback: Feedback) -> None:
        """Stateless: nothing to learn."""

    def params(self) -> dict[str, Any]:
        return {}
