"""A value recomputed in the background: the experiments page reads every experiment's status, which reads the whole
exposure log (tens of seconds at a million impressions), so the service keeps the latest one and recomputes it in a
daemon thread once it is older than ``max_age``; a page never waits more than ``wait`` seconds for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)
Value = TypeVar("Value")
EXPERIMENTS_REFRESH_SECONDS = 300.0
"""The service's experiments page recomputes the statuses in the background once older than this."""


class Refreshing(Generic[Value]):
    """The latest result of ``compute`` and when it was computed (unix seconds)."""

    def __init__(self, compute: Callable[[], Value], max_age: float) -> None:
        self.compute, self.max_age = compute, max_age
        self.value: Value | None = None
        self.at: float | None = None
        self.error: str | None = None
        self.lock = threading.Lock()
        self.running = False
        self.finished = threading.Event()

    def get(self, wait: float) -> tuple[Value | None, float | None]:
        """The latest value and its time; starts a recomputation when there is none or it is older than
        ``max_age`` (one at a time), and waits up to ``wait`` seconds for it only while there is no value yet."""
        with self.lock:
            if (self.at is None or time.time() - self.at > self.max_age) and not self.running:
                self.running = True
                self.finished.clear()
                threading.Thread(target=self._run, name="dashboard-refresh", daemon=True).start()
        if self.value is None:
            self.finished.wait(wait)
        with self.lock:
            return self.value, self.at

    def _run(self) -> None:
        try:
            value = self.compute()
        except Exception as error:  # noqa: BLE001  (kept for the page; the previous value stays)
            logger.warning("dashboard refresh failed: %s", type(error).__name__)
            with self.lock:
                self.error = f"{type(error).__name__}: {error}"[:300]
        else:
            with self.lock:
                self.value, self.at, self.error = value, time.time(), None
        finally:
            with self.lock:
                self.running = False
            self.finished.set()
