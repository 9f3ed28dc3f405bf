"""The group commit's own answer (`EventStore.append_event_group`): the ids each batch stored and the stored rows of
the group's event ids, which attribution then uses instead of reading them again -- with the same answer."""

from __future__ import annotations

import pandas as pd
from pandas.testing import assert_frame_equal

from tailored.errors import ConflictError
from tailored.store.database import Event, exposure_row
from tailored.store.reads import EVENT_FIELDS

NOW = 1_800_000_000.0


def test_each_batch_gets_the_ids_it_stored_first_come_first_served_and_the_rows_held(store) -> None:
    events = store()
    events.append_events([Event("old", "u1", "i1", "click", None, NOW)])
    events.erase_user("gone")
    group = events.append_event_group([
        [Event("old", "u1", "i1", "click", None, NOW), Event("a", "u1", "i2", "click", None, NOW + 1)],
        [Event("a", "u1", "i2", "click", None, NOW + 1), Event("b", "u2", "i1", "view", 2.0, NOW + 2)],
        [Event("old", "u1", "i9", "click", None, NOW)],  # a conflict: nothing of this batch is stored
        [Event("g", "gone", "i1", "click", None, NOW)],  # an erased user's event: refused, not stored
    ])
    assert group.results[:2] == [(1, 1), (1, 1)] and isinstance(group.results[2], ConflictError)
    assert group.results[3] == (0, 1)
    assert group.fresh == [frozenset({"a"}), frozenset({"b"}), frozenset(), frozenset()]
    assert set(group.stored) == {"old", "a", "b"} == events.stored_event_ids(["old", "a", "b", "g"])
    read = events.attribute(["old", "a", "b"])  # the rows as stored, read back
    for row in read.itertuples(index=False):
        held = group.stored[row.event_id]
        assert [held[name] for name in EVENT_FIELDS if name != "exposure_id"] == \
            [row.event_id, row.user_id, row.item_id, row.type, None if pd.isna(row.value) else row.value, row.timestamp]
    assert events.append_event_group([[Event("a", "u1", "i2", "click", None, NOW + 1)]]).fresh == [frozenset()]


def test_attribution_from_the_commits_rows_equals_attribution_from_the_database(store) -> None:
    events = store()
    shown = exposure_row("alice", "m1", ["i1", "i2", "i3"], [0.5, 0.25, 0.125], "thompson")
    later = exposure_row("alice", "m1", ["i2", "i4"], [0.6, 0.4], "thompson")
    shown["created_at"], later["created_at"] = NOW, NOW + 60
    events.log_exposures([shown, later])
    events.append_events([Event("before", "alice", "i2", "click", None, NOW + 65)])
    batch = [Event("e1", "alice", "i1", "click", None, NOW + 10, shown["exposure_id"]),  # by its exposure id
             Event("e2", "alice", "i2", "click", None, NOW + 70),  # by window, a slot already clicked: duplicate
             Event("e3", "alice", "i4", "purchase", 12.5, NOW + 80),  # by window: the later list
             Event("e4", "alice", "i3", "view", None, NOW + 20),  # not attributed
             Event("e5", "bob", "i1", "click", None, NOW + 5)]  # no list: none
    group = events.append_event_group([batch])
    from_commit = events.attribute(batch, stored=group.stored)
    assert_frame_equal(from_commit, events.attribute(batch))
    assert from_commit["by"].tolist() == ["exposure_id", "duplicate", "window", "none", "none"]
    assert from_commit["propensity"].iloc[0] == 0.5 and from_commit["revenue"].tolist() == [0, 0, 12.5, 0, 0]
    columns = events.attribution_columns(batch, stored=group.stored, details=False)
    assert set(columns) == set(from_commit.columns) - {"propensity", "policy", "model_version", "context"}
    assert_frame_equal(pd.DataFrame(columns), from_commit[list(columns)])


def test_an_id_stored_meanwhile_by_another_writer_is_decided_again_as_a_duplicate(store, monkeypatch) -> None:
    events = store()
    events.append_events([Event("x", "u1", "i1", "click", None, NOW)])
    reads, calls = events._stored_events, []

    def blind_once(connection, event_ids):  # the first look misses "x", as if another process stored it just after
        calls.append(event_ids)
        return {} if len(calls) == 1 else reads(connection, event_ids)

    monkeypatch.setattr(events, "_stored_events", blind_once)
    group = events.append_event_group([[Event("x", "u1", "i1", "click", None, NOW), Event("y", "u1", "i2", "click")]])
    assert len(calls) == 2  # the insert skipped "x": rolled back and decided again
    assert group.results == [(1, 1)] and group.fresh == [frozenset({"y"})]
    assert events.count_events() == 2
