"""Lists of hot users kept between requests: keyed by user, k, explanations and the context (its moment to the
hour: seasons, hours of the day and calendars do not move faster); least recently used out first. A user's entries
go when their events, attributes or erasure arrive; every entry goes with a new model or a new item."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

from tailored.rank.context import Context

Rows = list[dict[str, Any]]
"""A list as the service answers it: ``item_id, score, rank`` (and ``reasons``) per item."""


def context_key(context: Context) -> Hashable:
    moment = context.when().replace(minute=0, second=0, microsecond=0)
    return moment.isoformat(), context.latitude, context.longitude, tuple(sorted(context.attributes.items()))


class ListCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, Rows] = OrderedDict()
        self.by_user: dict[str, set[Hashable]] = {}
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Rows | None:
        with self.lock:
            rows = self.entries.get(key)
            if rows is not None:
                self.entries.move_to_end(key)
            return rows

    def put(self, key: Hashable, user: str, rows: Rows) -> None:
        if self.size <= 0:
            return
        with self.lock:
            self.entries[key] = rows
            self.entries.move_to_end(key)
            self.by_user.setdefault(user, set()).add(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def drop_users(self, users: Iterable[str]) -> None:
        with self.lock:
            for user in users:
                for key in self.by_user.pop(user, ()):
                    self.entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.by_user.clear()
