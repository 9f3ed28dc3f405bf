"""The feedback log on SQLite and PostgreSQL: exposures with their policy, propensities and context, events naming
their exposure, the log's columns and values, the rows a policy's state is rebuilt from, erasure, and
`tailored logs export`."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tailored.errors import ConflictError, DataError
from tailored.store import schema
from tailored.store.attribution import LOG_COLUMNS
from tailored.store.database import Event, exposure_row
from tests.cli.helpers import POOL, cli, flat, ok

NOW = 1_800_000_000.0


def fill(events, clock: float = NOW, tag: str = "") -> dict[str, str]:
    """Two users' lists and events (ids prefixed by ``tag``); returns the exposure ids by name."""
    rows = {"a1": exposure_row("alice", "m1", ["i1", "i2", "i3"], [0.5, 0.25, 0.125], "softmax:temperature=0.5",
                               {"device": "ios"}),
            "a2": exposure_row("alice", "m2", ["i2", "i4"]),
            "b1": exposure_row("bob", "m1", ["i1"], [0.9], "epsilon-greedy:epsilon=0.1", exposure_id=f"{tag}bob-list")}
    for offset, row in zip((0.0, 60.0, 30.0), rows.values(), strict=True):
        row["created_at"] = clock + offset
    events.log_exposures(list(rows.values()))
    events.append_events([
        Event(f"{tag}e1", "alice", "i2", "click", None, clock + 10, rows["a1"]["exposure_id"]),  # by id: a1, position 2
        Event(f"{tag}e2", "alice", "i2", "purchase", 12.5, clock + 70),  # by window: a2 (the latest), position 1
        Event(f"{tag}e3", "alice", "i2", "purchase", 99.0, clock + 80),  # the same (a2, i2, purchase): a duplicate
        Event(f"{tag}e4", "alice", "i3", "view", None, clock + 20),  # a view: never attributed
        Event(f"{tag}e5", "bob", "i1", "cart", None, clock + 40, f"{tag}bob-list"),
        Event(f"{tag}e6", "bob", "i1", "click", None, clock + 86_400 + 31),  # over a day after bob's list: none
    ])
    return {name: row["exposure_id"] for name, row in rows.items()}


def test_the_log_has_one_row_per_shown_position_with_its_propensity_and_rewards(store) -> None:
    events = store()
    ids = fill(events)
    log = pd.concat(events.feedback_log(), ignore_index=True).sort_values(["created_at", "position"])
    assert list(log.columns) == LOG_COLUMNS
    expected = [
        [ids["a1"], "alice", 1, "i1", 0.5, "softmax:temperature=0.5", "m1", NOW, 0, 0, 0.0],
        [ids["a1"], "alice", 2, "i2", 0.25, "softmax:temperature=0.5", "m1", NOW, 1, 0, 0.0],
        [ids["a1"], "alice", 3, "i3", 0.125, "softmax:temperature=0.5", "m1", NOW, 0, 0, 0.0],
        ["bob-list", "bob", 1, "i1", 0.9, "epsilon-greedy:epsilon=0.1", "m1", NOW + 30, 1, 0, 0.0],
        [ids["a2"], "alice", 1, "i2", 1.0, "greedy", "m2", NOW + 60, 1, 1, 12.5],
        [ids["a2"], "alice", 2, "i4", 1.0, "greedy", "m2", NOW + 60, 0, 0, 0.0]]
    assert log.astype(object).values.tolist() == expected
    # a window of two days reaches bob's late click: the same slot, already clicked, so still one click
    longer = pd.concat(events.feedback_log(window=2 * 86_400), ignore_index=True)
    assert longer["click"].sum() == 3 and longer["revenue"].sum() == 12.5


def test_the_stores_answer_names_the_exposure_and_the_events_reward_shares(store) -> None:
    events = store()
    ids = fill(events)
    found = events.attribute([Event("e3", "alice", "i2", "purchase"), "e1", "e2", "e4", "e5", "e6", "missing"])
    assert found["event_id"].tolist() == ["e3", "e1", "e2", "e4", "e5", "e6"]  # not stored: left out
    assert found["by"].tolist() == ["duplicate", "exposure_id", "window", "none", "exposure_id", "none"]
    assert found["exposure_id"].fillna("-").tolist() == [ids["a2"], ids["a1"], ids["a2"], "-", "bob-list", "-"]
    assert found["click"].tolist() == [0, 1, 1, 0, 1, 0] and found["revenue"].tolist() == [0, 0, 12.5, 0, 0, 0]
    assert found["propensity"].fillna(0).tolist() == [1.0, 0.25, 1.0, 0, 0.9, 0]
    assert found["context"].iloc[1] == {"device": "ios"} and found["policy"].iloc[4] == "epsilon-greedy:epsilon=0.1"


def test_the_state_rows_are_the_log_with_each_exposures_context_in_any_chunking(store) -> None:
    events = store()
    fill(events)
    fill(events, NOW + 10 * 86_400, tag="later-")
    log = pd.concat(events.feedback_log(), ignore_index=True)
    state = pd.concat(events.feedback_state_rows(users_per_chunk=1), ignore_index=True)
    assert list(state.columns) == [*LOG_COLUMNS, "context"]
    key = ["created_at", "exposure_id", "position"]
    pd.testing.assert_frame_equal(state[LOG_COLUMNS].sort_values(key, ignore_index=True),
                                  log.sort_values(key, ignore_index=True))
    assert state.loc[state["propensity"].eq(0.5), "context"].tolist() == [{"device": "ios"}] * 2
    assert state.loc[state["policy"].eq("greedy"), "context"].tolist() == [{}] * 4


def test_a_pseudonymising_store_logs_pseudonyms_and_erasure_removes_the_users_rows(store) -> None:
    events = store(pseudonym_key="secret")
    fill(events)
    log = pd.concat(events.feedback_log(), ignore_index=True)
    assert set(log["user_id"]) == {events.user_key("alice"), events.user_key("bob")} and "alice" not in str(log)
    deleted = events.erase_user("alice")
    assert deleted == {"events": 4, "users": 0, "exposures": 2, "experiment_exclusions": 0}
    left = pd.concat(events.feedback_log(), ignore_index=True)
    assert left["exposure_id"].tolist() == ["bob-list"] and left["click"].tolist() == [1]
    # alice's list comes back, as from a backup restored after the erasure: the log still leaves it out
    with events.engine.begin() as connection:
        connection.execute(schema.exposures.insert().values(
            exposure_id="restored", user_id=events.user_key("alice"), model_version="m1", items=["i1"],
            created_at=NOW, policy="greedy", propensities=[1.0], context={}))
    assert pd.concat(events.feedback_state_rows(), ignore_index=True)["exposure_id"].tolist() == ["bob-list"]
    assert events.attribute(["e1"]).empty  # erased: the event is gone


def test_an_events_exposure_id_is_part_of_its_payload(store) -> None:
    events = store()
    events.append_events([Event("e1", "alice", "i1", "click", None, NOW, "x1")])
    assert events.append_events([Event("e1", "alice", "i1", "click", None, NOW, "x1")]) == (0, 1)
    with pytest.raises(ConflictError, match="different payload"):
        events.append_events([Event("e1", "alice", "i1", "click", None, NOW, "x2")])
    with pytest.raises(ConflictError, match="different payload"):
        events.append_events([Event("e1", "alice", "i1", "click", None, NOW)])
    with events.engine.connect() as connection:
        assert connection.execute(sa.select(schema.events.c.exposure_id)).scalars().all() == ["x1"]


def test_an_exposure_row_defaults_to_a_greedy_list_and_refuses_bad_propensities() -> None:
    before = time.time()
    row = exposure_row("alice", "m1", [1, 2])  # the call of before the feedback log
    assert row["policy"] == "greedy" and row["propensities"] == [1.0, 1.0] and row["items"] == ["1", "2"]
    assert row["context"] == {} and len(row["exposure_id"]) == 32 and row["created_at"] >= before
    assert exposure_row("u", "m", ["a"], exposure_id="mine", context={"at": np.float64(1.5)})["context"] == {"at": 1.5}
    for bad in ([1.0], [0.0, 1.0], [0.5, 1.5], [float("nan"), 1.0]):
        with pytest.raises(DataError, match=r"must be one per item \(2 items\), each in \(0, 1\]"):
            exposure_row("u", "m", ["a", "b"], bad)


def test_an_exposure_row_keeps_one_finite_score_per_item_and_names_the_field_otherwise() -> None:
    assert exposure_row("u", "m", ["a", "b"])["scores"] is None
    row = exposure_row("u", "m", ["a", "b"], scores=np.array([2.5, np.float32(-1.0)]))
    assert row["scores"] == [2.5, -1.0] and all(type(each) is float for each in row["scores"])
    assert exposure_row("u", "m", [], scores=[])["scores"] == []
    for bad in ([1.0], [1.0, 2.0, 3.0], [float("nan"), 1.0], [1.0, float("inf")], [1.0, None], ["1.0", 2.0],
                [True, 1.0], [[1.0], [2.0]]):
        with pytest.raises(DataError, match=r"Exposure scores .* must be one finite number per item \(2 items\)"):
            exposure_row("u", "m", ["a", "b"], scores=bad)


def test_logged_scores_are_read_back_per_position_and_rows_without_them_are_skipped(store) -> None:
    events = store()
    events.log_exposures([exposure_row("alice", "m1", ["i1", "i2"], scores=[0.75, 0.5]) | {"created_at": 10.0},
                          exposure_row("bob", "m2", ["i3"], context={"fallback": True}, scores=[3.0])
                          | {"created_at": 20.0},
                          exposure_row("carol", "m1", ["i1"]) | {"created_at": 30.0},  # no scores kept
                          exposure_row("dave", "m1", ["i4"], scores=[1.0]) | {"created_at": 99.0}])
    with events.engine.connect() as connection:
        stored = connection.execute(sa.select(schema.exposures.c.scores).order_by(schema.exposures.c.created_at))
        assert stored.scalars().all() == [[0.75, 0.5], [3.0], None, [1.0]]
        assert connection.execute(sa.text("select count(*) from exposures where scores is null")).scalar() == 1
    read = events.served_scores(0.0, 50.0)
    assert read.to_dict("list") == {"created_at": [10.0, 10.0, 20.0], "model_version": ["m1", "m1", "m2"],
                                    "fallback": [False, False, True], "score": [0.75, 0.5, 3.0]}
    assert events.served_scores(40.0, 50.0).empty and list(events.served_scores(40.0, 50.0)) == list(read)


def test_logs_export_writes_the_log_as_csv_or_parquet(tmp_path) -> None:
    from tailored.store import EventStore

    url = f"sqlite:///{tmp_path / 'events.db'}"
    made = EventStore(url)
    fill(made)
    made.engine.dispose()
    runs = {name: POOL.submit(cli, "logs", "export", "--db", url, "--output", name, *extra, cwd=tmp_path)
            for name, extra in (("log.csv", []), ("log.parquet", []), ("long.csv", ["--window-hours", "48"]),
                                ("zero.csv", ["--window-hours", "0"]), ("events.db.csv", []))}
    csv = flat(ok(runs["log.csv"].result()).stderr)  # messages go to stderr
    assert "wrote 6 shown positions of 3 exposures (3 clicked, 1 purchased) to log.csv" in csv
    written = pd.read_csv(tmp_path / "log.csv")
    assert list(written.columns) == LOG_COLUMNS and written["created_at"].is_monotonic_increasing
    ok(runs["log.parquet"].result())
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "log.parquet"), written, check_dtype=False)
    ok(runs["long.csv"].result())
    assert pd.read_csv(tmp_path / "long.csv")["click"].sum() == 3  # bob's late click: his slot was already clicked
    zero = runs["zero.csv"].result()
    assert zero.returncode == 2 and "--window-hours must be a positive number of hours" in flat(zero.stderr)
    assert runs["events.db.csv"].result().returncode == 0  # a name like the database's, not the database itself
    (tmp_path / "events.db").rename(tmp_path / "store.csv")
    refused = cli("logs", "export", "--db", f"sqlite:///{tmp_path / 'store.csv'}", "--output", "store.csv",
                  cwd=tmp_path)
    assert refused.returncode == 2 and "would destroy the input" in flat(refused.stderr)
    assert (tmp_path / "store.csv").read_bytes().startswith(b"SQLite format 3")
