"""EventFollower: the users of the event rows stored since the last look, each row once, a row that commits late
(a lower id than rows already seen, as PostgreSQL's sequences allow) included."""

from __future__ import annotations

import sqlalchemy as sa

from tailored.serve.live_events import EventFollower
from tailored.store import EventStore
from tailored.store.database import Event


def test_each_new_row_is_reported_once_a_late_one_too(tmp_path) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.append_events([Event("old", "before", "i1", "view")])
    reported: list[set[str]] = []
    follower = EventFollower(store, reported.append, interval=3600)  # polled by hand here
    try:
        assert follower.poll() == set()  # what was stored before the follower started is not news
        store.append_events([Event("e1", "alice", "i1", "view"), Event("e2", "bob", "i2", "view")])
        with store.engine.begin() as connection:  # a transaction that took id 10 and commits after id 11
            for row, user in ((11, "carol"), (10, "dave")):
                connection.execute(sa.text("insert into events (id, event_id, user_id, item_id, type, timestamp, "
                                           "received_at) values (:id, :event, :user, 'i1', 'view', 1, 1)"),
                                   {"id": row, "event": f"x{row}", "user": store.user_key(user)})
        assert follower.poll() == {store.user_key(user) for user in ("alice", "bob", "carol", "dave")}
        assert follower.poll() == set() and len(reported) == 1
        with store.engine.begin() as connection:  # id 5, below the last row seen (11), commits only now
            connection.execute(sa.text("insert into events (id, event_id, user_id, item_id, type, timestamp, "
                                       "received_at) values (5, 'x5', :user, 'i1', 'view', 1, 1)"),
                               {"user": store.user_key("erin")})
        assert follower.poll() == {store.user_key("erin")} and follower.poll() == set()
    finally:
        follower.stop()
