"""``uniform``: a uniformly random slate of the candidates (the "Random" policy of the Open Bandit Dataset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tailored.policies.base import POLICIES, Candidates, Feedback, Slate


@POLICIES.register("uniform")
@dataclass(frozen=True)
class UniformPolicy:
    """Draws ``k`` distinct candidates uniformly without replacement, in random order: every candidate is at every
    position with probability ``1 / n`` (``n`` candidates)."""

    policy: ClassVar[str]

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        n = len(candidates)
        shown = min(k, n)
        return Slate(rng.choice(n, size=shown, replace=False), np.full(shown, 1.0 / max(n, 1)))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        n = len(candidates)
        marginals = np.zeros((n, k))
        marginals[:, : min(k, n)] = 1.0 / max(n, 1)
        return marginals

    def learn(self, feedback: Feedback) -> None:
        """Stateless: nothing to learn."""

    def params(self) -> dict[str, Any]:
        return {}
