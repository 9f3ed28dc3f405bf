"""An open-loop HTTP load generator for the service benchmarks: requests are sent on a fixed schedule (``rate`` per
second over ``connections`` keep-alive connections) and each latency is measured from the moment the request was
due, not from when it was sent, so a server that falls behind is charged for the queue it causes (no coordinated
omission). Raw HTTP/1.1 over asyncio streams keeps the generator's own cost per request small: it shares the
machine with the server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    retry_after_missing: int = 0

    def summary(self, prefix: str) -> dict[str, float | int]:
        milliseconds = np.array(self.latencies or [np.nan]) * 1000
        ok = sum(count for status, count in self.statuses.items() if 200 <= status < 300)
        figures: dict[str, float | int] = {
            f"{prefix}_requests": len(self.latencies), f"{prefix}_ok": ok,
            f"{prefix}_per_second": ok / self.seconds, f"{prefix}_p50_ms": float(np.percentile(milliseconds, 50)),
            f"{prefix}_p99_ms": float(np.percentile(milliseconds, 99)), f"{prefix}_max_ms": float(np.max(milliseconds)),
            f"{prefix}_errors": len(self.latencies) - ok + self.transport_errors,
        }
        for status in sorted(set(self.statuses) - set(range(200, 300))):
            figures[f"{prefix}_status_{status}"] = self.statuses[status]
        return figures


def request_bytes(base: str, method: str, path: str, key: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write."""
    host = urlsplit(base).netloc
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {key}", "Connection: keep-alive"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def run_load(base: str, requests: Sequence[bytes] | Callable[[int], bytes], rate: float, seconds: float,
             connections: int) -> LoadResult:
    """Send ``requests`` (cycled, or made by a function of the request number) at ``rate`` per second for
    ``seconds`` over ``connections`` connections."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    make = requests if callable(requests) else (lambda number: requests[number % len(requests)])
    return runner(_load(base, make, rate, seconds, connections))


async def _load(base: str, make: Callable[[int], bytes], rate: float, seconds: float, connections: int) -> LoadResult:
    address = urlsplit(base)
    result = LoadResult(seconds)
    clock = time.perf_counter  # (uvloop's loop.time() only has millisecond resolution)
    start = clock() + 0.2
    interval = connections / rate

    async def connection(number: int) -> None:
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        due, sent = start + number / rate, number
        try:
            while due < start + seconds:
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(make(sent))
                status, retry_after = await _response(reader)
                result.latencies.append(clock() - due)
                result.statuses[status] += 1
                result.retry_after_missing += status in (429, 503) and not retry_after
                due += interval
                sent += connections
        except (ConnectionError, asyncio.IncompleteReadError):
            result.transport_errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection(number) for number in range(connections)))
    result.seconds = max(time.perf_counter() - began - 0.2, 1e-9)
    return result


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether it carried ``Retry-After``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:] if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), "retry-after" in headers
