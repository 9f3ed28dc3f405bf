"""What every follower of the store shares (erasures, events and experiments made by other processes): a daemon
thread that calls ``poll`` every ``interval`` seconds until stopped, and logs a failed poll (an outage) as a warning
naming what is not followed yet, then tries again at the next tick."""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)


class Poller:
    """``poll`` every ``interval`` seconds in a thread named ``name`` once `start`ed; ``what`` names what a failed
    poll leaves unfollowed."""

    def __init__(self, name: str, interval: float, what: str) -> None:
        self.interval, self.what = interval, what
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def poll(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001  (an outage: the next poll tries again)
                logger.warning("%s not followed yet, retrying: %s", self.what, type(error).__name__)
