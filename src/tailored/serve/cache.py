"""Lists of hot users kept between requests (under a stochastic policy, their candidates: each request draws its own
list from them, so the cache does not freeze exploration): keyed by user, k, explanations and the context (its
moment to the hour: seasons, hours of the day and calendars do not move faster); least recently used out first. A
user's entries go when their events, attributes or erasure arrive; every entry goes with a new model or a new item.

A list computed while such a change arrived is stale: `put` takes the `generation` read before computing it and
keeps the list only if nothing of the user (nor everything) was dropped since. The last drop of the ``size`` most
recently dropped users is remembered; an older drop counts as if it were the latest forgotten one (a list may then
be left out of the cache for nothing, never kept stale)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

from tailored.query import Context

Rows = list[dict[str, Any]]
"""A list as the service answers it: ``item_id, score, rank`` (and ``reasons``) per item."""


def context_key(context: Context) -> Hashable:
    moment = context.when().replace(minute=0, second=0, microsecond=0)
    return moment.isoformat(), dataclasses.replace(context, moment=None)


class ListCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()  # key -> (user, list or candidates)
        self.by_user: dict[str, set[Hashable]] = {}
        self.lock = threading.Lock()
        self.drops = 0
        self.dropped: OrderedDict[str, int] = OrderedDict()  # user -> the drop that last removed their lists
        self.forgotten = 0  # the latest drop no longer in ``dropped``

    def generation(self) -> int:
        """The number of drops so far: read it before computing a list, give it to `put`."""
        with self.lock:
            return self.drops

    def get(self, key: Hashable) -> Any:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            self.entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, user: str, rows: Any, generation: int) -> None:
        """Keep ``rows`` unless the user's lists (or all lists) were dropped after ``generation``."""
        if self.size <= 0:
            return
        with self.lock:
            if self.dropped.get(user, self.forgotten) > generation:
                return
            self.entries[key] = user, rows
            self.entries.move_to_end(key)
            self.by_user.setdefault(user, set()).add(key)
            while len(self.entries) > self.size:
                old, (owner, _) = self.entries.popitem(last=False)
                keys = self.by_user[owner]
                keys.discard(old)
                if not keys:
                    del self.by_user[owner]

    def drop_users(self, users: Iterable[str]) -> None:
        with self.lock:
            self.drops += 1
            for user in users:
                for key in self.by_user.pop(user, ()):
                    self.entries.pop(key, None)
                self.dropped[user] = self.drops
                self.dropped.move_to_end(user)
            while len(self.dropped) > max(self.size, 1):
                self.forgotten = max(self.forgotten, self.dropped.popitem(last=False)[1])

    def clear(self) -> None:
        with self.lock:
            self.drops += 1
            self.forgotten = self.drops
            self.entries.clear()
            self.by_user.clear()
            self.dropped.clear()
