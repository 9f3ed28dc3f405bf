"""``linucb``: the disjoint LinUCB of Li, Chu, Langford & Schapire 2010 ("A Contextual-Bandit Approach to
Personalized News Article Recommendation", Algorithm 1) on the model's vectors, with position-debiased rewards.

Each item (arm, keyed by its external id) holds a ridge regression of its reward on the context ``x``, the user's
vector from the scorer (`Candidates.user_vector`; ``Feedback.features`` carries it per row when learning): under
the position-based click model a row shown at position p earns ``theta_p * x . beta_item``, so the sums are

    A = reg * I + sum theta_p^2 x x^T,    b = sum theta_p * reward * x

(theta_p the fixed prior examination 1 / log2(p + 1) of `position_bias`: sums with a fixed weight are
order-independent, so the state rebuilt from the store equals the online one). Each request ranks the candidates by

    x . A^-1 b + alpha * sqrt(x . A^-1 x) + prior_weight * z

z the scorer's score standardised over the candidates (0 = Li et al.'s plain rule; without feedback the candidates
tie on the first two terms and keep the scorer's order). The choice is deterministic: every propensity is 1, so the
logs of `linucb` cannot evaluate another policy off-policy (their support is one slate per request): log with a
stochastic policy (`thompson`, `softmax`, `epsilon-greedy`) to evaluate `linucb` or others.

Memory: one d x d matrix per item that was shown with features (d the vectors' length).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tailored.errors import ConfigError, DataError
from tailored.policies.base import POLICIES, Candidates, Feedback, Slate
from tailored.data.position_bias import prior_examination
from tailored.policies.state import item_keys


@POLICIES.register("linucb")
@dataclass(eq=False)
class LinUCBPolicy:
    """Disjoint LinUCB on the user's vector, one ridge regression per item; see the module docstring."""

    policy: ClassVar[str]
    alpha: float = 1.0
    reg: float = 1.0
    prior_weight: float = 0.05
    _rows: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _design: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)), init=False, repr=False)
    _target: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), init=False, repr=False)

    def __post_init__(self) -> None:
        for name, low in (("alpha", 0.0), ("prior_weight", 0.0)):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < low:
                raise ConfigError(f"Parameter policy 'linucb'.{name}={getattr(self, name)!r} must be >= 0.")
        if not np.isfinite(self.reg) or self.reg <= 0:
            raise ConfigError(f"Parameter policy 'linucb'.reg={self.reg!r} must be > 0 (ridge penalty, e.g. 1.0).")

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "reg": self.reg, "prior_weight": self.prior_weight}

    # -- online state -------------------------------------------------------------------------------------------
    def learn(self, feedback: Feedback) -> None:
        """Adds ``theta_p^2 x x^T`` to A for shown rows (impressions) and ``theta_p r x`` to b for rewarded rows;
        rows without ``features`` (the user's vector) carry nothing a contextual policy can learn from."""
        if feedback.features is None or len(feedback.item_ids) == 0:
            return
        features = np.asarray(feedback.features, np.float64)
        positions = np.asarray(feedback.positions, np.int64)
        if features.ndim != 2 or len(features) != len(feedback.item_ids) or len(positions) != len(features):
            raise DataError(f"linucb feedback: features of shape {features.shape} for {len(feedback.item_ids)} rows "
                            f"and {len(positions)} positions; give one vector (the user's) per row.")
        if self._design.size and features.shape[1] != self._design.shape[1]:
            raise DataError(f"linucb feedback: features have {features.shape[1]} columns, the state "
                            f"{self._design.shape[1]}: the model's vectors changed; rebuild the policy's state.")
        if positions.min() < 1:
            raise DataError(f"Feedback position {positions.min()} must be >= 1 (1 = the top of the list).")
        rows = self._grown(item_keys(feedback.item_ids), features.shape[1])
        theta = prior_examination(int(positions.max()))[positions - 1]
        if feedback.rewards is None:
            np.add.at(self._design, rows, (theta**2)[:, None, None] * features[:, :, None] * features[:, None, :])
        else:
            np.add.at(self._target, rows, (theta * np.asarray(feedback.rewards, np.float64))[:, None] * features)

    def _grown(self, keys: np.ndarray, dimension: int) -> np.ndarray:
        for item in np.unique(keys):
            if item not in self._rows:
                self._rows[item] = len(self._rows)
        if len(self._rows) > len(self._design):
            size = max(len(self._rows), 2 * len(self._design), 16)
            design, target = np.zeros((size, dimension, dimension)), np.zeros((size, dimension))
            if len(self._design):
                design[:len(self._design)], target[:len(self._target)] = self._design, self._target
            self._design, self._target = design, target
        return np.fromiter((self._rows[item] for item in keys), np.int64, len(keys))

    def state(self) -> dict[str, np.ndarray]:
        """A (less the ridge) and b per item, ids sorted: equal for any order of the same feedback."""
        ids = np.array(list(self._rows), dtype=object)
        order = np.argsort(ids) if len(ids) else np.zeros(0, np.int64)
        rows = np.array([self._rows[item] for item in ids[order]], np.int64)
        return {"item_ids": ids[order], "A": self._design[rows], "b": self._target[rows]}

    # -- decisions ----------------------------------------------------------------------------------------------
    def upper_bounds(self, candidates: Candidates) -> np.ndarray:
        """Each candidate's x . A^-1 b + alpha sqrt(x . A^-1 x) + prior_weight z."""
        n = len(candidates)
        scores = np.asarray(candidates.scores, np.float64)
        z = (scores - scores.mean()) / scores.std() if n > 1 and scores.std() > 0 else np.zeros(n)
        bounds = self.prior_weight * z
        if candidates.user_vector is None:
            return bounds
        x = np.asarray(candidates.user_vector, np.float64)
        rows = np.fromiter((self._rows.get(item, -1) for item in item_keys(candidates.item_ids)), np.int64, n)
        bounds += self.alpha * np.sqrt(x @ x / self.reg)  # arms without feedback: A = reg I, b = 0
        seen = np.flatnonzero(rows >= 0)
        if len(seen) and self._design.shape[1] == len(x):
            design = self._design[rows[seen]] + self.reg * np.eye(len(x))
            right = np.stack([self._target[rows[seen]], np.broadcast_to(x, (len(seen), len(x)))], axis=-1)
            solved = np.linalg.solve(design, right)
            bounds[seen] = (self.prior_weight * z[seen] + solved[:, :, 0] @ x
                            + self.alpha * np.sqrt(np.maximum(solved[:, :, 1] @ x, 0.0)))
        return bounds

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        chosen = np.argsort(-self.upper_bounds(candidates), kind="stable")[:min(k, len(candidates))]
        return Slate(chosen, np.ones(len(chosen)))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        table = np.zeros((len(candidates), k))
        chosen = self.choose(candidates, k, np.random.default_rng(0)).chosen
        table[chosen, np.arange(len(chosen))] = 1.0
        return table
