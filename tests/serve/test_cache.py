"""The hot-user list cache: least recently used out, a user's entries dropped on their events, all on clear; a list
computed while the user's events arrived is not kept."""

from __future__ import annotations

import datetime as dt

from tailored.query import Context
from tailored.serve.cache import ListCache, context_key


def test_lru_order_and_invalidation() -> None:
    cache = ListCache(size=2)
    frame = [{"item_id": "a", "score": 1.0, "rank": 1}]
    cache.put(("u1", 1), "u1", frame, cache.generation())
    cache.put(("u2", 1), "u2", frame, cache.generation())
    assert cache.get(("u1", 1)) is frame  # u1 is now the most recent
    cache.put(("u3", 1), "u3", frame, cache.generation())  # evicts u2
    assert cache.get(("u2", 1)) is None and cache.get(("u1", 1)) is frame and "u2" not in cache.by_user
    cache.drop_users(["u1"])
    assert cache.get(("u1", 1)) is None and cache.get(("u3", 1)) is frame
    cache.clear()
    assert cache.get(("u3", 1)) is None and cache.by_user == {}


def test_a_list_computed_before_the_users_event_is_not_kept() -> None:
    cache = ListCache(size=2)
    frame = [{"item_id": "a", "score": 1.0, "rank": 1}]
    started = cache.generation()  # u1's list is being computed ...
    cache.drop_users(["u1"])  # ... when u1's event arrives
    cache.put(("u1", 1), "u1", frame, started)
    cache.put(("u2", 1), "u2", frame, started)  # another user's list is kept
    assert cache.get(("u1", 1)) is None and cache.get(("u2", 1)) is frame
    cache.drop_users(["u3"])
    cache.drop_users(["u4"])  # u1's drop is forgotten (two remembered): counted as the latest forgotten one
    cache.put(("u1", 1), "u1", frame, started)
    assert cache.get(("u1", 1)) is None
    cache.put(("u1", 1), "u1", frame, cache.generation())
    assert cache.get(("u1", 1)) is frame
    started = cache.generation()
    cache.clear()  # a new model
    cache.put(("u2", 1), "u2", frame, started)
    assert cache.get(("u2", 1)) is None


def test_context_keys_round_the_moment_to_the_hour() -> None:
    at = lambda hour, minute: Context(dt.datetime(2026, 12, 15, hour, minute, tzinfo=dt.UTC))  # noqa: E731
    assert context_key(at(19, 5)) == context_key(at(19, 55)) != context_key(at(20, 0))
    assert context_key(Context(at(19, 5).moment, device="app")) != context_key(at(19, 5))
