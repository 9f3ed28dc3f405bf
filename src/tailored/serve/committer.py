"""Group commit across requests: events posted concurrently are stored in one transaction (one disk flush), and each
request is answered once that transaction has committed, so an acknowledged event is durable and many small
POSTs cost about as much as one large one."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from tailored.errors import ConflictError
from tailored.store import EventStore
from tailored.store.database import Event

Pending = tuple[Sequence[Event], "Future[tuple[int, int]]"]


class EventCommitter:
    """One writer thread; a request waits at most ``timeout`` seconds for its commit (then it fails with a
    TimeoutError, answered 503, and the client retries: event ids make the retry harmless)."""

    def __init__(self, store: EventStore, max_group_events: int = 50_000, timeout: float = 30.0) -> None:
        self.store, self.max_group_events, self.timeout = store, max_group_events, timeout
        self.pending: queue.Queue[Pending | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="event-committer", daemon=True)
        self.thread.start()

    def enqueue(self, events: Sequence[Event]) -> Future[tuple[int, int]]:
        """A future of (accepted, duplicates), set once committed, or of ConflictError or the database's error."""
        future: Future[tuple[int, int]] = Future()
        self.pending.put((events, future))
        return future

    async def commit(self, events: Sequence[Event]) -> tuple[int, int]:
        """`enqueue`, then wait for the commit without holding a thread."""
        return await asyncio.wait_for(asyncio.wrap_future(self.enqueue(events)), self.timeout)

    def stop(self) -> None:
        """Commit everything queued, then end the writer."""
        self.pending.put(None)
        self.thread.join(timeout=self.timeout)

    def _run(self) -> None:
        while True:
            first = self.pending.get()
            if first is None:
                return
            group, size, stopping = [first], len(first[0]), False
            while size < self.max_group_events and not self.pending.empty():
                more = self.pending.get_nowait()
                if more is None:
                    stopping = True
                    break
                group.append(more)
                size += len(more[0])
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[Pending]) -> None:
        try:
            results = self.store.append_event_batches([events for events, _ in group])
        except Exception as error:  # noqa: BLE001  (every waiting request gets the database's error)
            for _, future in group:
                future.set_exception(error)
            return
        for (_, future), result in zip(group, results):
            if isinstance(result, ConflictError):
                future.set_exception(result)
            else:
                future.set_result(result)
