"""Impressions are logged off the request path: a background writer commits them in batches (every
``interval`` seconds or ``batch`` rows), so a recommendation does not wait for a disk flush. A batch the database
refuses (an outage) is kept and retried at the next interval; past ``max_pending`` waiting rows the oldest are
dropped, and counted, rather than let memory grow. Stopping flushes. `flush_all` commits every waiting row before it
returns (or raises): the event committer calls it before each commit, so an acknowledged event's exposure is stored."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from tailored.store import EventStore

logger = logging.getLogger(__name__)


class ExposureWriter:
    def __init__(self, store: EventStore, interval: float = 0.2, batch: int = 1_000,
                 max_pending: int = 200_000) -> None:
        self.store, self.interval, self.batch = store, interval, batch
        self.pending: deque[dict[str, Any]] = deque(maxlen=max_pending)
        self.dropped = 0
        self.flushing = threading.Lock()  # one flush at a time: a row taken by one is committed before another returns
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="exposure-writer", daemon=True)
        self.thread.start()

    def log(self, row: dict[str, Any]) -> str:
        """Queue an impression made by `tailored.store.database.exposure_row`; returns its id."""
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(row)
        return row["exposure_id"]

    def flush(self) -> bool:
        """Commit up to ``batch`` waiting rows; False (the rows kept, in order) when the database refuses them."""
        try:
            self._flush()
            return True
        except Exception as error:  # noqa: BLE001  (the writer must survive a database outage)
            logger.warning("impressions not logged yet, retrying: count=%d %s", len(self.pending), type(error).__name__)
            return False

    def flush_all(self) -> None:
        """Commit the rows waiting now (not those logged meanwhile: a stream of requests cannot hold it), after the
        batch the writer may be committing; raises the database's error, the rows kept, when it refuses them."""
        remaining = len(self.pending)
        with self.flushing:  # the writer's batch in flight, if any, is committed (or put back first in line)
            while remaining > 0 and self.pending:
                remaining -= self._commit_batch()

    def _flush(self) -> None:
        with self.flushing:
            self._commit_batch()

    def _commit_batch(self) -> int:
        rows = [self.pending.popleft() for _ in range(min(self.batch, len(self.pending)))]
        try:
            self.store.log_exposures(rows)
        except Exception:
            self.pending.extendleft(reversed(rows))
            raise
        return len(rows)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        while self.pending and self.flush():
            pass
        if self.pending or self.dropped:
            logger.warning("impressions lost at shutdown or over the limit: %d", len(self.pending) + self.dropped)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            while self.pending and self.flush():
                pass
