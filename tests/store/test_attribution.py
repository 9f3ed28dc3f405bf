"""The attribution rule (`tailored.store.attribution`): by the event's exposure_id, else the user's latest list
showing the item within the window, else none; duplicates credited once; and the store's online answer
(`EventStore.attribute`) equal to the rule over the whole log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError, DataError
from tailored.store.attribution import (ATTRIBUTION_COLUMNS, ATTRIBUTION_WINDOW_SECONDS, CREDITED, EVENT_COLUMNS,
                                        LOG_COLUMNS, SHOWN_COLUMNS, attribute, attribution_of, feedback_log,
                                        shown_positions)
from tailored.store.database import Event, exposure_row

HOUR = 3_600.0


def shown(*exposures: tuple[str, str, float, list[str]]) -> pd.DataFrame:
    """Shown positions of (exposure_id, user_id, created_at, items) lists, propensity 1/position."""
    frame = pd.DataFrame(exposures, columns=["exposure_id", "user_id", "created_at", "items"])
    frame["propensities"] = frame["items"].map(lambda items: [1.0 / (p + 1) for p in range(len(items))])
    return shown_positions(frame.assign(policy="softmax:temperature=0.5", model_version="m1"))


def events(*rows: tuple) -> pd.DataFrame:
    """Events of (event_id, user_id, item_id, type, timestamp[, exposure_id[, value]]) rows."""
    full = [(*row, None, None)[:7] for row in rows]
    return pd.DataFrame(full, columns=["event_id", "user_id", "item_id", "type", "timestamp", "exposure_id", "value"])


def rows(found: pd.DataFrame, *columns: str) -> list[list]:
    """The values of these columns, row by row, None where missing."""
    picked = found[list(columns)].astype(object)
    return picked.where(picked.notna(), None).values.tolist()


LISTS = shown(("x1", "u1", 0.0, ["a", "b", "c"]), ("x2", "u1", 10 * HOUR, ["c", "b"]), ("x3", "u2", 11 * HOUR, ["b"]))


def test_shown_positions_number_positions_from_1_and_carry_propensities() -> None:
    assert LISTS[["exposure_id", "position", "item_id"]].values.tolist() == [
        ["x1", 1, "a"], ["x1", 2, "b"], ["x1", 3, "c"], ["x2", 1, "c"], ["x2", 2, "b"], ["x3", 1, "b"]]
    assert LISTS["propensity"].tolist() == [1.0, 0.5, 1 / 3, 1.0, 0.5, 1.0]
    broken = pd.DataFrame({"exposure_id": ["x"], "items": [["a", "b"]], "propensities": [[1.0]]})
    with pytest.raises(DataError, match="different number of items and propensities"):
        shown_positions(broken)


def test_an_events_exposure_id_wins_over_a_later_list_showing_the_item() -> None:
    found = attribute(LISTS, events(("e1", "u1", "b", "click", 12 * HOUR, "x1")))
    assert rows(found, "exposure_id", "position", "by", "click") == [["x1", 2, "exposure_id", 1]]


def test_without_an_id_the_latest_list_showing_the_item_in_the_window_gets_the_event() -> None:
    found = attribute(LISTS, events(("e1", "u1", "b", "click", 12 * HOUR), ("e2", "u1", "a", "cart", 12 * HOUR),
                                    ("e3", "u1", "c", "click", 5 * HOUR)))
    assert rows(found, "exposure_id", "position", "by") == [
        ["x2", 2, "window"], ["x1", 1, "window"], ["x1", 3, "window"]]


def test_an_expired_exposure_gets_nothing_but_a_longer_window_credits_it() -> None:
    late = events(("e1", "u1", "a", "click", 25 * HOUR), ("e2", "u1", "a", "cart", 30 * HOUR, "x1"))
    assert attribute(LISTS, late)["by"].tolist() == ["none", "none"]
    assert attribute(LISTS, late, window=30 * HOUR)["by"].tolist() == ["window", "exposure_id"]
    # an id too old for the window falls back to the window, where a later list shows the item
    found = attribute(LISTS, events(("e3", "u1", "b", "click", 26 * HOUR, "x1")))
    assert rows(found, "exposure_id", "by") == [["x2", "window"]]


def test_the_window_includes_both_ends() -> None:
    edges = events(("e1", "u2", "b", "click", 11 * HOUR), ("e2", "u2", "b", "cart", 35 * HOUR, "x3"),
                   ("e3", "u2", "b", "purchase", 35 * HOUR + 0.001))
    assert attribute(LISTS, edges)["by"].tolist() == ["window", "exposure_id", "none"]


def test_an_item_shown_twice_in_a_list_is_credited_at_its_first_position() -> None:
    twice = shown(("x9", "u1", 0.0, ["a", "b", "a"]))
    found = attribute(twice, events(("e1", "u1", "a", "click", HOUR), ("e2", "u1", "a", "cart", HOUR, "x9")))
    assert rows(found, "exposure_id", "position", "by") == [["x9", 1, "window"], ["x9", 1, "exposure_id"]]
    assert feedback_log(twice, found)["click"].tolist() == [1, 0, 0]


def test_an_event_before_its_exposure_is_not_attributed_to_it() -> None:
    found = attribute(LISTS, events(("e1", "u1", "c", "click", 9 * HOUR, "x2")))
    assert rows(found, "exposure_id", "by") == [["x1", "window"]]


def test_an_unknown_exposure_id_falls_back_to_the_window() -> None:
    found = attribute(LISTS, events(("e1", "u1", "a", "purchase", 2 * HOUR, "nope", 5.0)))
    assert rows(found, "exposure_id", "by", "purchase", "revenue") == [["x1", "window", 1, 5.0]]


def test_another_users_exposure_id_is_refused() -> None:
    found = attribute(LISTS, events(("e1", "u2", "a", "click", 2 * HOUR, "x1"),
                                    ("e2", "u1", "b", "click", 12 * HOUR, "x3")))
    assert rows(found, "exposure_id", "by") == [[None, "none"], ["x2", "window"]]


def test_an_item_the_exposure_did_not_show_is_not_attributed() -> None:
    found = attribute(LISTS, events(("e1", "u1", "z", "click", HOUR, "x1"),
                                    ("e2", "u1", "a", "click", 11 * HOUR, "x2")))
    assert rows(found, "exposure_id", "by") == [[None, "none"], ["x1", "window"]]


def test_views_and_other_types_are_never_attributed() -> None:
    found = attribute(LISTS, events(("e1", "u1", "a", "view", HOUR, "x1"), ("e2", "u1", "a", "rating", HOUR)))
    assert found["by"].tolist() == ["none", "none"] and found["click"].tolist() == [0, 0]


def test_duplicates_count_once_and_the_earliest_event_wins() -> None:
    found = attribute(LISTS, events(
        ("e4", "u1", "a", "purchase", 4 * HOUR, None, 30.0), ("e1", "u1", "a", "click", 3 * HOUR),
        ("e2", "u1", "a", "click", 2 * HOUR, "x1"), ("e3", "u1", "a", "purchase", 5 * HOUR, "x1", 20.0),
        ("e5", "u1", "a", "cart", 6 * HOUR)))
    assert found["by"].tolist() == ["window", "duplicate", "exposure_id", "duplicate", "window"]
    # the slot clicks once (its first click, cart or purchase), buys once (its first purchase)
    assert found["click"].tolist() == [0, 0, 1, 0, 0] and found["purchase"].tolist() == [1, 0, 0, 0, 0]
    assert found["revenue"].tolist() == [30.0, 0.0, 0.0, 0.0, 0.0]
    log = feedback_log(LISTS, found)
    assert list(log.columns) == LOG_COLUMNS
    assert log.loc[log["item_id"].eq("a"), ["click", "purchase", "revenue"]].values.tolist() == [[1, 1, 30.0]]
    assert log[["click", "purchase"]].to_numpy().sum() == 2 and log["revenue"].sum() == 30.0


def test_each_event_gets_exactly_one_answer_aligned_with_its_row() -> None:
    many = events(("e1", "u1", "b", "click", 12 * HOUR), ("e2", "u9", "b", "click", 12 * HOUR))
    many.index = [7, 3]
    found = attribute(LISTS, many)
    assert list(found.index) == [7, 3] and found["by"].tolist() == ["window", "none"]
    empty = attribute(LISTS, events())
    assert len(empty) == 0 and list(empty.columns) == ATTRIBUTION_COLUMNS


def test_frames_without_the_needed_columns_are_refused_by_name() -> None:
    with pytest.raises(DataError, match=r"The events to attribute lack the column\(s\) \['exposure_id'\]"):
        attribute(LISTS, events().drop(columns="exposure_id"))
    with pytest.raises(DataError, match=r"The shown positions to attribute lack the column\(s\) \['position'\]"):
        attribute(LISTS.drop(columns="position"), events())


@pytest.mark.parametrize("window", [0, -1.0, float("nan"), float("inf")])
def test_a_window_that_is_not_positive_is_refused(window: float) -> None:
    with pytest.raises(ConfigError, match="attribution window must be a positive number of seconds"):
        attribute(LISTS, events(), window)


def reference(lists: pd.DataFrame, log: pd.DataFrame, window: float) -> list[tuple]:
    """The rule written plainly, event by event: (exposure_id, position, by) per event."""
    slots = {}
    for row in lists.itertuples():
        slots.setdefault((row.exposure_id, row.item_id), (row.user_id, row.created_at, row.position))
    matched = []
    for event in log.itertuples():
        found = None
        if event.type in ("click", "cart", "purchase"):
            slot = slots.get((event.exposure_id, event.item_id))
            if slot and slot[0] == event.user_id and 0 <= event.timestamp - slot[1] <= window:
                found = (event.exposure_id, slot[2], "exposure_id")
            else:
                near = [(created, exposure, position) for (exposure, item), (user, created, position) in slots.items()
                        if user == event.user_id and item == event.item_id
                        and 0 <= event.timestamp - created <= window]
                if near:
                    created, exposure, position = max(near)
                    found = (exposure, position, "window")
        matched.append(found or (None, 0, "none"))
    winners: dict[tuple, tuple] = {}
    for number, event in enumerate(log.itertuples()):
        if matched[number][0] is not None:
            key, rank = (matched[number][0], event.item_id, event.type), (event.timestamp, event.event_id)
            winners[key] = min(winners.get(key, rank), rank)
    return [(exposure, position, "duplicate" if exposure is not None
             and winners[(exposure, event.item_id, event.type)] != (event.timestamp, event.event_id) else by)
            for (exposure, position, by), event in zip(matched, log.itertuples(), strict=True)]


def random_world(seed: int, count: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures and events of 4 users over 8 items and 3 days, ids sometimes right, wrong or another user's."""
    rng = np.random.default_rng(seed)
    users, items = [f"u{n}" for n in range(4)], [f"i{n}" for n in range(8)]
    exposures = pd.DataFrame({
        "exposure_id": [f"x{n:03d}" for n in range(60)], "user_id": rng.choice(users, 60),
        "created_at": rng.integers(0, 72, 60) * HOUR,  # whole hours: ties between lists happen
        "items": [list(rng.choice(items, 3, replace=False)) for _ in range(60)]})
    exposures["propensities"] = [[0.5, 0.25, 1.0]] * 60
    exposures = exposures.assign(policy="uniform", model_version="m1")
    picked = exposures.iloc[rng.integers(0, 60, count)]
    log = pd.DataFrame({
        "event_id": [f"e{n:04d}" for n in range(count)],
        "user_id": np.where(rng.random(count) < 0.9, picked["user_id"], rng.choice(users, count)),
        "item_id": np.where(rng.random(count) < 0.8, [each[0] for each in picked["items"]], rng.choice(items, count)),
        "type": rng.choice(["click", "cart", "purchase", "view"], count),
        "timestamp": picked["created_at"].to_numpy() + rng.integers(-2, 30, count) * HOUR,
        "exposure_id": np.where(rng.random(count) < 0.5, picked["exposure_id"].to_numpy(),
                                np.where(rng.random(count) < 0.5, None, "x999")),
        "value": rng.integers(1, 50, count).astype(float)})
    return exposures, log


@pytest.mark.parametrize("seed", range(5))
def test_the_vectorised_rule_equals_the_rule_written_event_by_event(seed: int) -> None:
    exposures, log = random_world(seed)
    lists = shown_positions(exposures)
    found = attribute(lists, log, 24 * HOUR)
    expected = reference(lists, log, 24 * HOUR)
    assert [tuple(row) for row in rows(found, "exposure_id", "position", "by")] == expected
    assert set(found["by"]) >= {"exposure_id", "window", "none", "duplicate"}  # the world exercises every branch
    log_rows = feedback_log(lists, found)
    credited_slots = found.loc[found["by"].isin(CREDITED), ["exposure_id", "position"]].drop_duplicates()
    assert log_rows["click"].sum() == len(credited_slots) and log_rows["click"].sum() == found["click"].sum()
    assert log_rows["click"].max() == 1 and log_rows["purchase"].max() == 1


@pytest.mark.parametrize("seed", range(5, 10))
def test_the_rule_on_plain_columns_equals_the_reference_with_items_shown_twice_and_rows_shuffled(seed: int) -> None:
    """`attribution_of` on lists of values (what the store's online answer passes) is the same rule."""
    exposures, log = random_world(seed)
    rng = np.random.default_rng(seed)
    exposures["items"] = [list(rng.choice(["i0", "i1", "i2", "i3"], 3)) for _ in range(len(exposures))]
    log = log.iloc[rng.permutation(len(log))]
    lists = shown_positions(exposures)
    found = attribution_of({name: lists[name].tolist() for name in SHOWN_COLUMNS},
                           {name: log[name].tolist() for name in [*EVENT_COLUMNS, "value"]}, 24 * HOUR)
    answers = [(lists["exposure_id"][slot], lists["position"][slot], by) if slot >= 0 else (None, 0, by)
               for slot, by in zip(found.slot, found.by, strict=True)]
    assert answers == reference(lists, log, 24 * HOUR)
    assert {"exposure_id", "window", "none", "duplicate"} <= set(found.by)
    assert lists.duplicated(["exposure_id", "item_id"]).any()  # an item shown twice: credited at its first position


def test_the_stores_answer_for_any_batch_equals_the_rule_over_the_whole_log(store) -> None:
    """The online answer reads only the users' exposures and events near the batch: it must agree with the rule
    applied to everything stored (the export and the rebuild), for any batch of stored events."""
    exposures, log = random_world(11, count=200)
    base = 1_800_000_000.0
    events_store = store()
    rows = []
    for exposure in exposures.itertuples():
        row = exposure_row(exposure.user_id, "m1", exposure.items, exposure.propensities, "uniform",
                           exposure_id=exposure.exposure_id)
        rows.append(row | {"created_at": base + exposure.created_at})
    events_store.log_exposures(rows)
    stored = [Event(row.event_id, row.user_id, row.item_id, row.type, row.value, base + row.timestamp, row.exposure_id)
              for row in log.itertuples()]
    events_store.append_events(stored)
    whole = attribute(shown_positions(exposures), log, ATTRIBUTION_WINDOW_SECONDS).set_index(log["event_id"])
    assert whole["by"].eq("duplicate").sum() > 10  # earlier events decide later ones: the reads must include them
    rng = np.random.default_rng(0)
    batches = [[stored[n]] for n in rng.choice(len(stored), 50, replace=False)]
    batches += [[stored[n] for n in rng.choice(len(stored), size, replace=False)] for size in (5, 40, 200)]
    for batch in batches:
        online = events_store.attribute(batch).set_index("event_id")
        assert list(online.index) == [event.event_id for event in batch]
        expected = whole.loc[online.index]
        assert online["by"].tolist() == expected["by"].tolist()
        assert online["exposure_id"].fillna("-").tolist() == expected["exposure_id"].fillna("-").tolist()
        assert online[["position", "click", "purchase"]].values.tolist() == \
            expected[["position", "click", "purchase"]].values.tolist()
        assert np.allclose(online["revenue"], expected["revenue"])
    # the export's reward sums are the sums of the online answers' shares
    everything = events_store.attribute(stored)
    exported = pd.concat(events_store.feedback_log(), ignore_index=True)
    assert exported[["click", "purchase"]].sum().tolist() == everything[["click", "purchase"]].sum().tolist()
    assert np.isclose(exported["revenue"].sum(), everything["revenue"].sum())
