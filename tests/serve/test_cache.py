"""The hot-user list cache: least recently used out, a user's entries dropped on their events, all on clear."""

from __future__ import annotations

import datetime as dt

from tailored.rank.context import Context
from tailored.serve.cache import ListCache, context_key


def test_lru_order_and_invalidation() -> None:
    cache = ListCache(size=2)
    frame = [{"item_id": "a", "score": 1.0, "rank": 1}]
    cache.put(("u1", 1), "u1", frame)
    cache.put(("u2", 1), "u2", frame)
    assert cache.get(("u1", 1)) is frame  # u1 is now the most recent
    cache.put(("u3", 1), "u3", frame)  # evicts u2
    assert cache.get(("u2", 1)) is None and cache.get(("u1", 1)) is frame
    cache.drop_users(["u1"])
    assert cache.get(("u1", 1)) is None and cache.get(("u3", 1)) is frame
    cache.clear()
    assert cache.get(("u3", 1)) is None


def test_context_keys_round_the_moment_to_the_hour() -> None:
    at = lambda minute: Context(dt.datetime(2026, 12, 15, 19, minute, tzinfo=dt.timezone.utc))  # noqa: E731
    assert context_key(at(5)) == context_key(at(55)) != context_key(Context(dt.datetime(2026, 12, 15, 20, 0, tzinfo=dt.timezone.utc)))
    assert context_key(Context(at(5).moment, attributes={"device": "app"})) != context_key(at(5))
