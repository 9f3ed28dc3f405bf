"""Erasures reach every process serving one database: a process loads the erased users when it starts, then reads
the erasures committed since its last look every ``interval`` seconds (``TAILORED_ERASURE_POLL_SECONDS``), whichever
process or command (`tailored erase-user`) made them. Each look reaches ``LOOKBACK_SECONDS`` further back than the
last one, so an erasure stamped by a clock that is behind, or committed late, is not missed."""

from __future__ import annotations

import time
from collections.abc import Callable

from tailored.serve.polling import Poller
from tailored.store import EventStore

LOOKBACK_SECONDS = 60.0


class ErasureFollower(Poller):
    """``subjects``: the fingerprints (`EventStore.subject`) of every erased user known to this process;
    ``on_erased`` is called with those learnt from the store (not with those added by this process)."""

    def __init__(self, store: EventStore, on_erased: Callable[[set[str]], None], interval: float) -> None:
        super().__init__("erasure-follower", interval, "erasures")
        self.store, self.on_erased = store, on_erased
        self.polled = time.time()
        self.subjects = store.erased_subjects()
        self.start()

    def poll(self) -> set[str]:
        """Learn the erasures committed since the last poll; returns those this process did not know."""
        started = time.time()
        new = self.store.erased_subjects(since=self.polled - LOOKBACK_SECONDS) - self.subjects
        self.polled = started
        if new:
            self.subjects |= new
            self.on_erased(new)
        return new
