"""The event store on SQLite and PostgreSQL: idempotent appends, attributes, keys, erasure, export (migrations:
`test_migrations`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tailored.errors import ConfigError, ConflictError
from tailored.store import EventStore
from tailored.store.database import Event


def test_the_same_event_is_stored_once(store) -> None:
    events = store()
    batch = [Event("e1", "u1", "i1", "view"), Event("e2", "u1", "i2", "purchase", 2.0, 1_700_000_000),
             Event("e1", "u1", "i1", "view")]  # e1 twice in one batch
    assert events.append_events(batch) == (2, 1)
    # a resend without its timestamp matches the stored time
    assert events.append_events([Event("e2", "u1", "i2", "purchase", 2.0), Event("e3", "u2", "i1", "click")]) == (1, 1)
    exported = next(events.export_events())
    assert exported["user_id"].tolist() == ["u1", "u1", "u2"] and exported["value"].tolist() == [1.0, 2.0, 1.0]
    assert exported["timestamp"].iloc[1] == 1_700_000_000
    assert exported["event_type"].tolist() == ["view", "purchase", "click"]


def test_an_event_id_with_another_payload_is_a_conflict_and_stores_nothing_of_its_batch(store) -> None:
    events = store()
    events.append_events([Event("e1", "u1", "i1", "view", timestamp=1_700_000_000)])
    for changed in (Event("e1", "u1", "i2", "view"), Event("e1", "u1", "i1", "view", 3.0),
                    Event("e1", "u1", "i1", "view", timestamp=1_700_000_001), Event("e1", "u9", "i1", "view")):
        with pytest.raises(ConflictError, match="'e1'"):
            events.append_events([Event("fresh", "u1", "i1", "view"), changed])
    with pytest.raises(ConflictError, match="'twice'"):  # inside one batch too
        events.append_events([Event("twice", "u1", "i1", "view"), Event("twice", "u1", "i1", "click")])
    assert events.count_events() == 1
    grouped = events.append_event_batches([[Event("a", "u1", "i1", "view")], [Event("e1", "u2", "i1", "view")],
                                           [Event("a", "u1", "i1", "view"), Event("b", "u2", "i2", "cart")]])
    assert grouped[0] == (1, 0) and isinstance(grouped[1], ConflictError) and grouped[2] == (1, 1)
    assert events.count_events() == 3


def test_keys_are_hashed_scoped_and_checked(store) -> None:
    events = store()
    key = events.create_key(["recommend", "events:write"])
    assert events.key_scopes(key) == {"recommend", "events:write"}
    assert events.key_scopes(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert events.key_scopes("not-a-key") is None
    with events.engine.connect() as connection:
        assert key.split("_", 2)[2] not in str(connection.execute(sa.text("select * from api_keys")).all())
    with pytest.raises(ConfigError, match="valid scopes: recommend, events:write, admin"):
        events.create_key(["root"])
    key_id = key.split("_")[1]
    listed = events.list_keys()
    assert listed["key_id"].tolist() == [key_id] and listed["scopes"].tolist() == ["events:write,recommend"]
    events.revoke_key(key_id)
    assert events.key_scopes(key) is None and bool(events.list_keys()["revoked"].iloc[0])
    assert events.audit_entries()[-1]["action"] == "revoke_key"
    with pytest.raises(ConfigError, match="No API key with id 'nope'"):
        events.revoke_key("nope")


def test_erasure_removes_the_user_everywhere_and_for_good(store) -> None:
    events = store()
    events.append_events([Event("e1", "alice", "i1", "view"), Event("e2", "bob", "i1", "view")])
    events.put_user("alice", {"age": 30})
    events.log_exposure("alice", "v1", ["i1", "i2"])
    assert events.erase_user("alice") == {"events": 1, "users": 1, "exposures": 1, "experiment_exclusions": 0}
    assert events.is_erased("alice") and not events.is_erased("bob") and events.user_attributes("alice") is None
    assert events.append_events([Event("e3", "alice", "i2", "view")]) == (0, 1)  # never comes back
    assert next(events.export_events())["user_id"].tolist() == ["bob"]
    audit = events.audit_entries()
    assert audit[0]["action"] == "erase_user" and "alice" not in str(audit)


def test_no_read_path_returns_rows_of_an_erased_user(store) -> None:
    import pandas as pd

    events = store(pseudonym_key="secret")
    events.append_events([Event("e1", "alice", "i1", "view"), Event("e2", "bob", "i1", "view")])
    events.erase_user("alice")
    with events.engine.begin() as connection:  # alice's rows come back, as from a backup restored after the erasure
        connection.execute(sa.text("insert into events (event_id, user_id, item_id, type, timestamp, received_at) "
                                   "values ('old', :user, 'i2', 'view', 1, 1)"), {"user": events.user_key("alice")})
        connection.execute(sa.text("insert into users (user_id, attributes, updated_at) values (:user, '{}', 1)"),
                           {"user": events.user_key("alice")})
    assert next(events.export_events())["user_id"].tolist() == [events.user_key("bob")]
    assert events.latest_events("alice", 10).empty and events.user_attributes("alice") is None
    lists = pd.DataFrame({"user_id": ["alice", "bob"], "item_id": ["i2", "i2"], "score": [1.0, 1.0], "rank": [1, 1]})
    events.write_batch("b1", lists)
    with events.engine.connect() as connection:
        written = connection.execute(sa.text("select user_id from batch_recommendations")).scalars().all()
        assert written == [events.user_key("bob")]


def test_pseudonymised_ids_never_reach_the_database(store) -> None:
    events = store(pseudonym_key="secret")
    events.append_events([Event("e1", "alice@example.com", "i1", "view")])
    events.put_user("alice@example.com", {"segment": "gold"})
    with events.engine.connect() as connection:
        dump = str([connection.execute(sa.text(f"select * from {table}")).all() for table in ("events", "users")])
    assert "alice" not in dump and events.user_attributes("alice@example.com") == {"segment": "gold"}


def test_a_users_latest_items_come_oldest_first_by_event_time(store) -> None:
    events = store(pseudonym_key="secret")
    events.append_events([Event("e1", "alice", "i3", "view", 1.0, 1_700_000_300),
                          Event("e2", "alice", "i1", "view", 1.0, 1_700_000_100),
                          Event("e3", "bob", "i9", "view", 1.0, 1_700_000_200),
                          Event("e4", "alice", "i2", "cart", 1.0, 1_700_000_200),
                          Event("e5", "alice", "i3", "purchase", 1.0, 1_700_000_400)])
    # sent out of order, repeats kept
    assert events.latest_events("alice", 10)["item_id"].tolist() == ["i1", "i2", "i3", "i3"]
    assert events.latest_events("alice", 2)["item_id"].tolist() == ["i3", "i3"]
    assert events.latest_events("carol", 10).empty


def test_a_bad_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="Unsupported database URL 'mysql://x'"):
        EventStore("mysql://x")


def test_retention_deletes_what_is_older_than_the_window(store) -> None:
    import time as clock

    events = store()
    now = clock.time()
    events.append_events([Event("old", "u1", "i1", "view", timestamp=now - 400 * 86_400),
                          Event("new", "u1", "i2", "view", timestamp=now - 10 * 86_400)])
    assert events.prune(365) == {"events": 1, "exposures": 0}
    assert next(events.export_events())["item_id"].tolist() == ["i2"]
    assert events.audit_entries()[-1]["action"] == "retention"
    with pytest.raises(ConfigError, match="must be positive"):
        events.prune(0)
