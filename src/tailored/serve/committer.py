"""Group commit across requests: events posted concurrently are stored in one transaction (one disk flush), and each
request is answered once that transaction has committed, so an acknowledged event is durable and many small
POSTs cost about as much as one large one.

The writer thread survives every database error (each waiting request gets it) and a request that stops waiting:
a request gives up after ``timeout`` seconds; its events are then dropped if their commit has not begun, else the
commit's outcome is unknown to the client, which is told so (resending is harmless: event ids are idempotent).
While a commit has run longer than ``timeout``, ingestion is stalled: new requests are refused at once, with
nothing stored, and readiness reports it.

``before`` runs in the writer before each commit (the service flushes the waiting impressions there: an
acknowledged event's exposure is stored before the event); if it fails, the group is not stored and each waiting
request gets its error. ``after`` runs in the writer once a group is committed, with the group's committed batches,
the ids new to the store (``fresh``: not a resend, so that what they teach is learnt once) and the stored rows of
their event ids as the commit read or wrote them (`Appended.stored`: nothing is read again): the service attributes
them there, one query per table for the whole group, and each request's answer carries its batch's attribution. If
it fails, the events are stored but the requests are told that they could not be attributed (503: resending is
safe)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple

from tailored.store import EventStore
from tailored.store.database import Appended, Event
from tailored.store.schema import UnconfirmedCommit

logger = logging.getLogger(__name__)


class Committed(NamedTuple):
    """What a commit did with one request's events: counts, the ids it stored (the others were stored before, twice
    in the request, or of erased users) and, with an ``after`` hook, what it answered for the batch."""

    accepted: int
    duplicates: int
    fresh: frozenset[str]
    attribution: list[Any] | None = None


Pending = tuple[Sequence[Event], "Future[Committed]"]


class IngestionUnavailable(Exception):
    """Events not acknowledged (answered 503); the message says whether they may still be stored."""


class EventCommitter:
    """One writer thread; a request waits at most ``timeout`` seconds for its commit."""

    def __init__(self, store: EventStore, max_group_events: int = 50_000, timeout: float = 30.0,
                 before: Callable[[], None] | None = None,
                 after: Callable[[list[Sequence[Event]], frozenset[str], Mapping[str, Mapping[str, Any]]], list[Any]]
                 | None = None) -> None:
        self.store, self.max_group_events, self.timeout = store, max_group_events, timeout
        self.before, self.after = before, after
        self.pending: queue.Queue[Pending | None] = queue.Queue()
        self.committing_since: float | None = None
        self.thread = threading.Thread(target=self._run, name="event-committer", daemon=True)
        self.thread.start()

    def enqueue(self, events: Sequence[Event]) -> Future[Committed]:
        """A future of `Committed`, set once committed, or of ConflictError or the database's error."""
        future: Future[Committed] = Future()
        self.pending.put((events, future))
        return future

    def stalled_seconds(self) -> float:
        """How long the commit in progress has run (0 when idle); infinite if the writer has ended."""
        began = self.committing_since
        if not self.thread.is_alive():
            return float("inf")
        return 0.0 if began is None else time.monotonic() - began

    def healthy(self) -> bool:
        """The writer runs and no commit has run longer than ``timeout``."""
        return self.stalled_seconds() < self.timeout

    async def commit(self, events: Sequence[Event]) -> Committed:
        """`enqueue`, then wait for the commit without holding a thread. Raises IngestionUnavailable when
        ingestion is stalled (nothing stored) or the commit is not confirmed within ``timeout`` seconds."""
        stalled = self.stalled_seconds()
        if stalled >= self.timeout:
            raise IngestionUnavailable(f"Event ingestion is stalled: the database has not finished a commit for "
                                       f"{stalled:.0f} s; nothing was stored by this request. Retry shortly.")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.enqueue(events)), self.timeout)
        except TimeoutError:
            raise IngestionUnavailable(
                f"The commit was not confirmed within {self.timeout:g} s (the database is slow or locked); the "
                "events may still be stored: resend them with the same event ids, duplicates are ignored.") from None

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
            # a request that gave up waiting cancelled its future: its events are not stored; the others can no
            # longer be cancelled, so setting their result below cannot fail
            live = [(events, future) for events, future in group if future.set_running_or_notify_cancel()]
            self.committing_since = time.monotonic()
            try:
                results, stored = self._commit(live)
            finally:
                self.committing_since = None
            for (_, future), result in zip(live, self._attributed(live, results, stored)):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)  # type: ignore[arg-type]
            if stopping:
                return

    def _commit(self, group: list[Pending]) -> tuple[list[object], dict[str, dict[str, Any]]]:
        """Each request's `Committed`, or its error, and the stored rows of the group's event ids (`Appended`)."""
        if not group:
            return [], {}
        stored: dict[str, dict[str, Any]] = {}
        try:
            if self.before is not None:
                self.before()
            appended: Appended = self.store.append_event_group([events for events, _ in group])
            stored = appended.stored
            results: list[object] = [result if isinstance(result, BaseException) else Committed(*result, fresh)
                                     for result, fresh in zip(appended.results, appended.fresh)]
        except UnconfirmedCommit:
            logger.warning("event commit failed while committing: outcome unknown")
            results = [IngestionUnavailable(
                "The database failed while committing these events; they may or may not be stored: resend them with "
                "the same event ids, duplicates are ignored.") for _ in group]
        except Exception as error:  # noqa: BLE001  (every waiting request gets the database's error; the writer goes on)
            logger.warning("event commit failed: %s", type(error).__name__)  # the type only: messages may hold ids
            results = [error] * len(group)
        return results, stored

    def _attributed(self, group: list[Pending], results: list[object],
                    stored: Mapping[str, Mapping[str, Any]]) -> list[object]:
        """``results`` with each committed batch's answer from ``after``; its failure is each one's error."""
        done = [index for index, result in enumerate(results) if isinstance(result, Committed)]
        if self.after is None or not done:
            return results
        try:
            fresh = frozenset().union(*(results[index].fresh for index in done))  # type: ignore[attr-defined]
            answers = self.after([group[index][0] for index in done], fresh, stored)
        except Exception as error:  # noqa: BLE001  (the events are stored: say so, whatever failed)
            logger.warning("committed events not attributed: %s", type(error).__name__)
            failed = IngestionUnavailable("The events were stored but could not be attributed (the database failed "
                                          "after the commit): resend them with the same event ids to get their "
                                          "attribution; duplicates are ignored.")
            return [failed if index in done else result for index, result in enumerate(results)]
        attributed = list(results)
        for index, answer in zip(done, answers):
            attributed[index] = results[index]._replace(attribution=answer)  # type: ignore[attr-defined]
        return attributed

