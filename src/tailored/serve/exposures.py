"""Impressions are logged off the request path: a background writer commits them in batches (every
``interval`` seconds or ``batch`` rows), so a recommendation does not wait for a disk flush. A batch the database
refuses (an outage) is kept and retried at the next interval; past ``max_pending`` waiting rows the oldest are
dropped, and counted, rather than let memory grow. Stopping flushes."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from tailored.store import EventStore
from tailored.store.database import exposure_row

logger = logging.getLogger(__name__)


class ExposureWriter:
    def __init__(self, store: EventStore, interval: float = 0.2, batch: int = 1_000,
                 max_pending: int = 200_000) -> None:
        self.store, self.interval, self.batch = store, interval, batch
        self.pending: deque[dict[str, Any]] = deque(maxlen=max_pending)
        self.dropped = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="exposure-writer", daemon=True)
        self.thread.start()

    def log(self, user_id: str, model_version: str, item_ids: Sequence[str]) -> str:
        row = exposure_row(user_id, model_version, item_ids)
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(row)
        return row["exposure_id"]

    def flush(self) -> bool:
        """Commit up to ``batch`` waiting rows; False (the rows kept, in order) when the database refuses them."""
        rows = [self.pending.popleft() for _ in range(min(self.batch, len(self.pending)))]
        try:
            self.store.log_exposures(rows)
            return True
        except Exception as error:  # noqa: BLE001  (the writer must survive a database outage)
            self.pending.extendleft(reversed(rows))
            logger.warning("impressions not logged yet, retrying: count=%d %s", len(self.pending), type(error).__name__)
            return False

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
