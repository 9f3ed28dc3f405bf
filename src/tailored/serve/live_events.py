"""Events reach every process serving one database: a process reads the users with events stored since its last look
every ``interval`` seconds (``TAILORED_EVENTS_POLL_SECONDS``), whichever process stored them, so that their cached
lists go and the fast lane steps aside for them (`Service.users_changed`). Rows are followed by their id: each look
reads the rows after the last one seen, and the ids below it that were missing (PostgreSQL allocates ids before the
commit, so a transaction may commit after later rows; a skipped or rolled-back insert leaves its id unused). Missing
ids more than ``LOOKBACK_ROWS`` below the last row are given up (a transaction committed that late is not reported:
its users' lists refresh at their next event, a new model or a restart). SQLite numbers rows in commit order."""

from __future__ import annotations

from collections.abc import Callable

from tailored.serve.polling import Poller
from tailored.store import EventStore

LOOKBACK_ROWS = 10_000


class EventFollower(Poller):
    """Calls ``on_events`` with the stored ids of the users whose events other processes (or this one) stored since
    the last look; starts from the rows stored when it is made, looks once `start`ed."""

    def __init__(self, store: EventStore, on_events: Callable[[set[str]], None], interval: float) -> None:
        super().__init__("event-follower", interval, "events of other processes")
        self.store, self.on_events = store, on_events
        self.last = store.last_event_row()
        stored = {row for row, _ in store.event_rows(max(self.last - LOOKBACK_ROWS, 0)) if row <= self.last}
        self.missing = set(range(max(self.last - LOOKBACK_ROWS, 0) + 1, self.last + 1)) - stored

    def poll(self) -> set[str]:
        """Report the users of the rows stored since the last look; returns them."""
        rows = self.store.event_rows(self.last, self.missing)
        found = {row for row, _ in rows}
        last = max([self.last, *found])
        self.missing = (self.missing | set(range(self.last + 1, last + 1))) - found
        self.missing = {row for row in self.missing if row > last - LOOKBACK_ROWS}
        self.last = last
        users = {user for _, user in rows}
        if users:
            self.on_events(users)
        return users
