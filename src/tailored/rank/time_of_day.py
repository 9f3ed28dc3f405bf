"""Time of day and weekday learned from history: each item's sales per hour of the day, on weekdays and at weekends (48
buckets), against what the catalogue's sales at those hours predict, give a lift for the request's hour;
``strength * log(lift)`` is added to each user's standardised scores (`tailored.rank.lift.PeriodicAdjuster`, the
seasonal stage's adjuster with another `Cycle`). Morning items rise in the morning, evening items in the evening,
and an item never sold in the evening is (nearly) absent then. Profiles that do not predict when held-out users take
their items better than the catalogue's curve are not used: on MovieLens, whose timestamps are rating sessions, they do
not, and the stage changes nothing. Hours are those of the timestamps (UTC unless the data says otherwise), so requests
must use the same clock. Less than ``min_history_days`` of history or a request without a date: no change.
"""

from __future__ import annotations

import numpy as np

from tailored.data.activity import DAY
from tailored.rank.lift import Cycle, preset


def hour_bucket(seconds: np.ndarray) -> np.ndarray:
    """0..23 for the (UTC) hour on weekdays, 24..47 at weekends."""
    seconds = np.asarray(seconds, np.int64)
    weekday = (seconds // DAY + 3) % 7  # 1 January 1970 was a Thursday: Monday is 0
    return (seconds % DAY) // 3600 + 24 * (weekday >= 5)


HOURS = Cycle(stage="time-of-day", class_name="TimeOfDayAdjuster", buckets=hour_bucket, n_buckets=48, unit=3600,
              smoothing="smoothing_hours", min_history_days=14, rising="time of day", falling="time of day")
TimeOfDayAdjuster = preset(HOURS, __name__)
