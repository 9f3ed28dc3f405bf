"""Seasonality learned from history: each item's share of sales per week of the year, shrunk towards the whole
catalogue's seasonal curve, turns into a lift for the request date that adjusts the candidate scores.

For item i with n_i interactions, c_i(w) of them in week w (circularly smoothed over ``smoothing_weeks``), and g(w)
the catalogue's share of week w, the seasonal share is ``(c_i(w) + prior * g(w)) / (n_i + prior)`` and the lift
``share / g(w)``: an item that sells only around Christmas has lift near 0 in March and well above 1 in December,
without anyone tagging it; a sparse item stays near 1 (the prior). Profiles learned on all but the latest fifth of
the history must predict the weeks of that fifth better than the catalogue's curve (by ``min_gain`` nats), or the
stage learns nothing: noise is not a season (`tailored.rank.lift.learn_lift`). Each user's scores are
standardised (z-scores over the candidates, softly bounded to ±3) and ``strength * log(lift)`` is added, so the
stage works whatever the scorer's scale. Data covering less than ``min_history_days`` cannot show a yearly pattern:
the stage then learns nothing and leaves scores unchanged; a request without a date changes nothing either.
Default ``strength`` 2 was chosen on a summer validation month of the synthetic retail history (July 2025, trained
on the months before), never on the December test month.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.rank.base import Request, register_stage
from tailored.rank.lift import apply_lift, learn_lift, lift_reasons

WEEKS = 53


def week_of_year(seconds: np.ndarray) -> np.ndarray:
    """Week index 0..52 of unix timestamps (UTC day of the year // 7)."""
    days = (np.asarray(seconds, np.int64) // DAY).astype("datetime64[D]")
    return (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) // 7


@register_stage("seasonal")
@dataclass(eq=False)
class SeasonalAdjuster:
    """Adds ``strength * log(lift)`` of the request's week to the scores standardised per user."""

    learns: ClassVar[bool] = True

    strength: float = 2.0
    prior: float = 20.0
    smoothing_weeks: int = 1
    min_history_days: int = 330
    min_gain: float = 0.0

    def fit(self, dataset: Dataset) -> Self:
        self.lift_ = learn_lift(dataset, week_of_year, WEEKS, self.prior, self.smoothing_weeks, self.min_history_days,
                                self.min_gain)
        return self

    @property
    def inert(self) -> bool:
        """Nothing was learned: every score is left as it is."""
        return len(self.lift_) == 0

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        return apply_lift(scores, self.lift_, week_of_year, request.context, self.strength)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        return lift_reasons(items, self.lift_, week_of_year, request.context, "in season", "out of season")
