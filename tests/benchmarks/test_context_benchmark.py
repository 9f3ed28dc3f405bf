"""The context-learned benchmark on a small generated history: the ranker that learns the hour and weekday puts
morning products first in the morning and not in the evening, and beats the same ranker without context on baskets
asked in their own context."""

from __future__ import annotations

from tailored.benchmarks.context import BASELINE, MODELS, context_learned
from tests.conftest import require_extra

require_extra("ranker", "lightgbm")

TIMED = "ranker, device + channel + hour + weekday"


def test_the_ranker_learns_the_time_of_day_and_beats_itself_without_context() -> None:
    tables = context_learned(customers=400, products=200, days=240, test_days=21,
                             models={name: MODELS[name] for name in (BASELINE, TIMED)})
    accuracy = tables["accuracy"].set_index("model")
    assert accuracy.loc[TIMED, "low"] > 0  # the paired interval lies above the ranker without context
    assert accuracy.loc[TIMED, "groups"] == accuracy.loc[BASELINE, "groups"] > 100  # the same (customer, context)s
    shares = tables["time of day"].set_index("model")
    morning, evening = shares.columns
    assert shares.loc[TIMED, morning] >= 0.9 and shares.loc[TIMED, evening] <= 0.2, shares
    assert shares.loc[BASELINE, morning] == shares.loc[BASELINE, evening]  # without context, no difference
    assert shares.loc["ease + time-of-day stage", morning] >= 0.9  # the hand-crafted reference
