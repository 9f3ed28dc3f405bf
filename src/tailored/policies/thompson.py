"""``thompson``: Thompson sampling over the scorer's candidates, on position-debiased clicks, with the scorer as prior
(Chapelle & Li 2011, "An Empirical Evaluation of Thompson Sampling"; the click model of Chuklin et al. 2015).

The click rate of item i for user u is modelled as ``mu(u, i) * m_i``:

- ``mu(u, i) = exp(prior_weight * z(u, i))``, z the candidate's score standardised over the request's candidates:
  the model's personal prior, so that a known item starts where the model puts it, and a new item (added after
  training) where its attributes put it;
- ``m_i`` the item's correction learned online, ``Gamma(prior_clicks * g, prior_clicks)`` a priori (mean g: 1 for a
  known item; for the new items the pooled ratio of their clicks to their expected clicks, so that new items that
  turn out more appealing than the old ones start higher together) and, with the item's clicks ``C_i`` and its
  examinations ``E_i = sum_p theta_p N_ip`` (impressions weighted by the position bias, `position_bias`),
  ``Gamma(prior_clicks * g + C_i, prior_clicks + c * E_i)`` a posteriori, c the clicks per examination of all items.

Each request samples every candidate's log click rate from the log-normal that matches the posterior's log moments
(mean ``digamma(shape) - log(rate)``, variance ``trigamma(shape)``) and shows the ``k`` highest. With
``new_item_slots = N`` the slate holds exactly N new candidates (the N best samples among them; fewer when fewer
exist) beside the best known ones, each at the place its sample gives; with 0 (the default) new items compete with
the known ones on their sampled click rates alone.

A share ``uniform_share`` of the lists is instead drawn as the `uniform` policy draws its lists (distinct candidates
uniformly at random, in random order), decided once per list after the sampler's draws (so, with the same random
stream, the lists not explored are the very lists of ``uniform_share=0``). The log then supports every policy over
the same candidates: with ``n`` candidates, every candidate is at every shown position with probability at least
``uniform_share / n``, so an off-policy estimate's importance weights are at most ``n / uniform_share`` (a target
that explores as ``epsilon-greedy`` does puts about ``epsilon / n`` where thompson is sure: weights near
``epsilon / uniform_share``).

Propensities are the exact marginals of that mixture: ``(1 - uniform_share) * R + uniform_share / n`` on the shown
positions, ``R`` the ranking's marginals (`draw_marginals.ranked_marginals`), whichever way the list was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, polygamma

from tailored.errors import ConfigError
from tailored.policies.base import POLICIES, Candidates, Feedback, Slate
from tailored.policies.draw_marginals import ATOMS, WEIGHTS, ranked_marginals
from tailored.data.position_bias import estimate_position_bias, examinations, prior_examination
from tailored.policies.state import ItemPositionCounts
from tailored.policies.uniform import UniformPolicy

REFIT_GROWTH = 0.05
"""The position bias is estimated again when the impressions grew by this fraction since the last estimate."""
EM_ITEMS = 2_000
"""The position bias is estimated from at most this many items (the most shown at several positions)."""
_CUMULATIVE = np.cumsum(WEIGHTS) / WEIGHTS.sum()
"""The atoms' cumulative probabilities: an atom per candidate by inversion, the draws of ``rng.choice(p=WEIGHTS)``
(the same stream, without its checks: a fifth of the cost)."""
POOL_PRIOR_ITEMS = 3.0
"""How many items of correction 1 the new items' pooled correction starts from (`ThompsonPolicy.pooled`)."""
UNIFORM_SHARE = 0.02
"""The default share of lists drawn uniformly at random (the propensity floor; see the module docstring): measured
in the simulator (docs/feedback.md): 0.01 left OPE of greedy and epsilon-greedy from thompson's logs worse off than
0.02, and 0.05 left the static world at 0.978x greedy's clicks (0.02: 0.995x, 0: 1.008x; 40,000 lists)."""


@POLICIES.register("thompson")
@dataclass(eq=False)
class ThompsonPolicy:
    """Thompson sampling on position-debiased clicks with the scorer's prior; see the module docstring."""

    policy: ClassVar[str]
    prior_weight: float = 0.5
    new_prior_weight: float = 0.25
    prior_clicks: float = 5.0
    new_item_slots: int = 0
    uniform_share: float = UNIFORM_SHARE
    _counts: ItemPositionCounts = field(default_factory=ItemPositionCounts, init=False, repr=False)
    _theta: np.ndarray = field(default_factory=lambda: prior_examination(10), init=False, repr=False)
    _fitted_at: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("prior_weight", "new_prior_weight"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"Parameter policy 'thompson'.{name}={getattr(self, name)!r} must be >= 0 (log "
                                  "click rate per standard deviation of the scorer's score, e.g. 1.0).")
        if not np.isfinite(self.prior_clicks) or self.prior_clicks <= 0:
            raise ConfigError(f"Parameter policy 'thompson'.prior_clicks={self.prior_clicks!r} must be > 0 (clicks "
                              "that the prior weighs, e.g. 5).")
        if self.new_item_slots < 0:
            raise ConfigError(f"Parameter policy 'thompson'.new_item_slots={self.new_item_slots!r} must be >= 0.")
        if not 0.0 <= self.uniform_share <= 1.0:
            raise ConfigError(f"Parameter policy 'thompson'.uniform_share={self.uniform_share!r} must be in [0, 1] "
                              f"(the share of lists drawn uniformly at random, e.g. {UNIFORM_SHARE}).")

    def params(self) -> dict[str, Any]:
        return {"prior_weight": self.prior_weight, "new_prior_weight": self.new_prior_weight,
                "prior_clicks": self.prior_clicks,
                "new_item_slots": self.new_item_slots, "uniform_share": self.uniform_share}

    # -- online state -------------------------------------------------------------------------------------------
    def learn(self, feedback: Feedback) -> None:
        """Adds impressions (``rewards`` None) or attributed rewards to the counts per (item, position), and
        re-estimates the position bias when they grew enough (here, off the requests' path)."""
        self._counts.add(feedback.item_ids, feedback.positions, feedback.rewards)
        self.position_bias()

    def state(self) -> dict[str, np.ndarray]:
        """The counts, independent of the order feedback arrived in (`ItemPositionCounts.snapshot`)."""
        return self._counts.snapshot()

    def position_bias(self) -> np.ndarray:
        """theta per position (theta_1 = 1), estimated by EM when the impressions grew by `REFIT_GROWTH`, from the
        `EM_ITEMS` items shown at two positions or more with the most impressions (ties by id)."""
        total = self._counts.totals[0].sum()
        if self._counts.totals.shape[1] != len(self._theta) or total > (1 + REFIT_GROWTH) * self._fitted_at:
            impressions, rewards = self._counts.matrices()
            spread = np.flatnonzero((impressions > 0).sum(axis=1) >= 2)
            chosen = spread[np.lexsort((self._counts.item_ids[spread], -impressions[spread].sum(axis=1)))][:EM_ITEMS]
            self._theta = estimate_position_bias(impressions[chosen], rewards[chosen], start=self._theta)
            self._fitted_at = total
        return self._theta

    def posterior(self, candidates: Candidates, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate's log click rate (up to a constant): the posterior's mean and standard deviation."""
        new = np.asarray(candidates.new, bool)
        rows = self._counts.rows(candidates.item_ids)
        clicks, exposure = np.zeros(len(rows)), np.zeros(len(rows))
        if (rows >= 0).any():
            seen, theta = rows >= 0, self.position_bias()
            impressions, rewards = self._counts.matrices()
            totals = self._counts.totals
            clicks[seen] = rewards[rows[seen]].sum(axis=1)
            exposure[seen] = examinations(impressions[rows[seen]], theta) * (
                (totals[1].sum() + 1.0) / (examinations(totals[0], theta) + 10.0))
        shape = self.prior_clicks * np.where(new, self.pooled(clicks[new], exposure[new]), 1.0) + clicks
        rate = self.prior_clicks + exposure
        return self.prior(candidates, k) + digamma(shape) - np.log(rate), np.sqrt(polygamma(1, shape))

    def pooled(self, clicks: np.ndarray, exposure: np.ndarray) -> float:
        """The prior mean correction of new items: the average of the request's new items' posterior mean
        corrections, with `POOL_PRIOR_ITEMS` items of correction 1 (new items are typical shown items a priori)."""
        seen = exposure > 0
        means = (self.prior_clicks + clicks[seen]) / (self.prior_clicks + exposure[seen])
        return float((POOL_PRIOR_ITEMS + means.sum()) / (POOL_PRIOR_ITEMS + seen.sum()))

    def prior(self, candidates: Candidates, k: int) -> np.ndarray:
        """The scorer's prior log click rate of each candidate: ``prior_weight`` times its score standardised among
        the known candidates, less the mean of the first ``k`` (a typical shown item is 0); for new items, their
        score standardised among the new ones (an average new item is a typical shown item until the feedback on
        new items says otherwise) times ``new_prior_weight``."""
        scores, new = np.asarray(candidates.scores, np.float64), np.asarray(candidates.new, bool)
        prior = np.zeros(len(scores))
        for group, weight in ((~new, self.prior_weight), (new, self.new_prior_weight)):
            values = scores[group]
            if len(values) > 1 and values.std() > 0:
                prior[group] = weight * (values - values.mean()) / values.std()
        known = np.flatnonzero(~new)
        if len(known):
            prior[known] -= prior[known[:k]].mean()
        return prior

    # -- decisions ----------------------------------------------------------------------------------------------
    def draws(self, candidates: Candidates, k: int) -> np.ndarray:
        """(candidates x 3): the values each candidate's log click rate is drawn from (`ATOMS` of its posterior)."""
        means, deviations = self.posterior(candidates, k)
        return means[:, None] + deviations[:, None] * ATOMS

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        values = self.draws(candidates, k)
        samples = values[np.arange(len(values)), np.searchsorted(_CUMULATIVE, rng.random(len(values)), side="right")]
        caps = self._caps(candidates, k)
        groups = np.asarray(candidates.new, bool)
        if caps[0] == caps[1]:
            chosen = np.argsort(-samples, kind="stable")[:caps[0]]
        else:
            chosen = np.concatenate([np.flatnonzero(groups == group)[np.argsort(-samples[groups == group],
                                                                                kind="stable")[:cap]]
                                     for group, cap in ((False, caps[0]), (True, caps[1]))])
            chosen = chosen[np.lexsort((chosen, -samples[chosen]))]
        if self.uniform_share > 0 and rng.random() < self.uniform_share:
            chosen = UniformPolicy().choose(candidates, k, rng).chosen
        table = ranked_marginals(values, groups, caps, chosen)
        return Slate(chosen, self._floored(table[np.arange(len(chosen)), np.arange(len(chosen))], len(candidates)))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        table = np.zeros((len(candidates), k))
        groups = np.asarray(candidates.new, bool)
        table[:, :min(k, len(candidates))] = self._floored(ranked_marginals(
            self.draws(candidates, k), groups, self._caps(candidates, k), np.arange(len(candidates))), len(candidates))
        return table

    def _floored(self, ranked: np.ndarray, n: int) -> np.ndarray:
        """The mixture's marginals from the ranking's (``ranked``, shown positions only) over ``n`` candidates."""
        if self.uniform_share == 0:
            return ranked
        return (1.0 - self.uniform_share) * ranked + self.uniform_share / max(n, 1)

    def _caps(self, candidates: Candidates, k: int) -> tuple[int, int]:
        """How many known and new candidates the slate holds: any mix (caps k, k: one group of k) without reserved
        slots, else exactly ``new_item_slots`` new ones when there are that many."""
        n, new = len(candidates), int(np.count_nonzero(candidates.new))
        shown = min(k, n)
        if self.new_item_slots == 0 or new == 0 or new == n:
            return shown, shown
        reserved = min(self.new_item_slots, new, shown)
        known = min(shown - reserved, n - new)
        return known, shown - known
