"""The store's windowed feedback log gives, for the exposures of a time range, exactly the rows of the whole log
(events crossing the range's edges, attributed by id, by window, or duplicates), and leaves erased users out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.monitoring.daily import DAY_SECONDS
from tailored.store.database import Event
from tailored.store.monitoring import feedback_window, shown_items
from tests.monitoring.test_alerts import FIRST, simulate


def whole_log(store, low: float, high: float) -> pd.DataFrame:
    log = pd.concat(store.feedback_log(extra=["arm", "latency_ms"]), ignore_index=True)
    inside = log[(log["created_at"] >= low) & (log["created_at"] < high)]
    return inside.sort_values(["exposure_id", "position"]).reset_index(drop=True)


def test_the_windowed_log_equals_the_whole_logs_rows_of_its_range(any_events) -> None:
    events = any_events
    simulate(events)
    rng = np.random.default_rng(1)
    lists = pd.concat(events.feedback_log(), ignore_index=True).query("position <= 2")
    picked = lists.iloc[rng.choice(len(lists), 400, replace=False)]
    late = picked["created_at"].to_numpy() + rng.uniform(0, 1.5 * DAY_SECONDS, 400)  # some past the window
    by_id = rng.random(400) < 0.5
    events.append_events([
        Event(f"x{number}", row.user_id, row.item_id, ("purchase", "click", "cart")[number % 3], value=5.0 + number,
              timestamp=float(late[number] + (number % 7 == 0)), exposure_id=row.exposure_id if by_id[number] else None)
        for number, row in enumerate(picked.itertuples())] + [  # and repeats: duplicates of the first ones
        Event(f"y{number}", row.user_id, row.item_id, "purchase", value=1.0, timestamp=float(late[number] + 60))
        for number, row in enumerate(picked.head(100).itertuples())])
    low, high = FIRST + 3 * DAY_SECONDS, FIRST + 6 * DAY_SECONDS
    window = feedback_window(events, low, high, extra=["arm", "latency_ms"])
    expected = whole_log(events, low, high)
    got = window.sort_values(["exposure_id", "position"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert got["purchase"].sum() > 0 and got["revenue"].sum() > 0 and len(got) == 3 * 200 * 5
    events.erase_user("u1")
    assert "u1" not in set(feedback_window(events, low, high)["user_id"])


def test_shown_items_are_the_distinct_items_of_the_ranges_lists(any_events) -> None:
    events = any_events
    simulate(events, hide=True)
    assert set(shown_items(events, FIRST, FIRST + 7 * DAY_SECONDS)) == {f"i{item}" for item in range(30)}
    assert set(shown_items(events, FIRST + 7 * DAY_SECONDS, FIRST + 10 * DAY_SECONDS)) == {
        f"i{item}" for item in range(30) if item % 3 != 2}
