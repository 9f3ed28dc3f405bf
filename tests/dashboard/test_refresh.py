"""`Refreshing`: the latest value at once, recomputed in the background once stale, one computation at a time, the
previous value kept (and the error told) when a recomputation fails, and a bounded wait for the first one."""

from __future__ import annotations

import threading
import time

from tailored.dashboard.refresh import Refreshing


def test_values_are_kept_recomputed_when_stale_and_kept_on_failure() -> None:
    calls, release = [], threading.Event()

    def compute() -> int:
        calls.append(time.time())
        if len(calls) == 3:
            raise RuntimeError("database gone")
        if len(calls) == 2:
            release.wait(5)
        return len(calls)

    refreshing = Refreshing(compute, max_age=0.05)
    value, at = refreshing.get(wait=5)
    assert value == 1 and at is not None
    assert refreshing.get(wait=5) == (1, at)  # fresh: no new computation
    time.sleep(0.06)
    assert refreshing.get(wait=5) == (1, at)  # stale: the old value at once, the second computation started
    assert refreshing.get(wait=5) == (1, at) and len(calls) == 2  # one at a time
    release.set()
    refreshing.finished.wait(5)
    value, second = refreshing.get(wait=5)
    assert value == 2 and second > at
    time.sleep(0.06)
    refreshing.get(wait=0)
    refreshing.finished.wait(5)
    assert (refreshing.value, refreshing.at, refreshing.error) == (2, second, "RuntimeError: database gone")


def test_the_first_wait_is_bounded() -> None:
    done = threading.Event()
    refreshing = Refreshing(lambda: done.wait(5), max_age=60)
    started = time.perf_counter()
    assert refreshing.get(wait=0.1) == (None, None)
    assert time.perf_counter() - started < 1
    done.set()
    refreshing.finished.wait(5)
    assert refreshing.get(wait=0)[0] is True
