"""Impressions are logged off the request path: a background writer commits them in batches (every
``interval`` seconds or ``batch`` rows), so a recommendation does not wait for a disk flush. Stopping flushes."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from tailored.store import EventStore
from tailored.store.database import exposure_row

logger = logging.getLogger(__name__)


class ExposureWriter:
    def __init__(self, store: EventStore, interval: float = 0.2, batch: int = 1_000) -> None:
        self.store, self.interval, self.batch = store, interval, batch
        self.pending: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="exposure-writer", daemon=True)
        self.thread.start()

    def log(self, user_id: str, model_version: str, item_ids: Sequence[str]) -> str:
        row = exposure_row(user_id, model_version, item_ids)
        self.pending.put(row)
        return row["exposure_id"]

    def flush(self) -> None:
        rows = []
        while not self.pending.empty() and len(rows) < self.batch:
            rows.append(self.pending.get_nowait())
        try:
            self.store.log_exposures(rows)
        except Exception as error:  # noqa: BLE001  (the writer must survive a database hiccup)
            logger.warning("exposures not logged count=%d: %s", len(rows), error)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        while not self.pending.empty():
            self.flush()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            while not self.pending.empty():
                self.flush()
