"""Time of day and weekday learned from history: each item's share of interactions per hour of the day, on weekdays
and at weekends (48 buckets), shrunk towards the catalogue's daily curve, gives a lift for the request's hour;
``strength * log(lift)`` is added to each user's standardised scores (see `tailored.rank.lift`). Morning items
rise in the morning, evening items in the evening. Profiles that do not predict the hours of the latest fifth of
the history better than the catalogue's curve are not used: on MovieLens, whose timestamps are rating sessions,
they do not, and the stage changes nothing. Hours are those of the timestamps (UTC unless the data says otherwise), so requests must use
the same clock. Less than ``min_history_days`` of history or a request without a date: no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.rank.base import Request, register_stage
from tailored.rank.lift import apply_lift, learn_lift, lift_reasons

BUCKETS = 48


def hour_bucket(seconds: np.ndarray) -> np.ndarray:
    """0..23 for the (UTC) hour on weekdays, 24..47 at weekends."""
    seconds = np.asarray(seconds, np.int64)
    weekday = (seconds // DAY + 3) % 7  # 1 January 1970 was a Thursday: Monday is 0
    return (seconds % DAY) // 3600 + 24 * (weekday >= 5)


@register_stage("time-of-day")
@dataclass(eq=False)
class TimeOfDayAdjuster:
    """Adds ``strength * log(lift)`` of the request's hour (weekday or weekend) to the standardised scores."""

    learns: ClassVar[bool] = True

    strength: float = 2.0
    prior: float = 20.0
    smoothing_hours: int = 1
    min_history_days: int = 14
    min_gain: float = 0.0

    def fit(self, dataset: Dataset) -> Self:
        self.lift_ = learn_lift(dataset, hour_bucket, BUCKETS, self.prior, self.smoothing_hours, self.min_history_days,
                                self.min_gain)
        return self

    @property
    def inert(self) -> bool:
        """Nothing was learned: every score is left as it is."""
        return len(self.lift_) == 0

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        return apply_lift(scores, self.lift_, hour_bucket, request.context, self.strength)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        return lift_reasons(items, self.lift_, hour_bucket, request.context, "time of day", "time of day")
