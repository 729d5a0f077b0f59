"""The load generator: worker processes with raw asyncio HTTP/1.1 keep-alive clients.

A raw client, not httpx: on a 2-core machine the generator shares the CPU with the
server, and httpx costs several times more CPU per request than writing the bytes.

Two modes, each in ``processes`` separate processes (``spawn``: no state inherited):

- closed loop: ``connections`` in flight per process, each sends its next request when
  the last answered; measures the maximum throughput;
- open loop: requests start on a fixed schedule (``rate`` per second in all), whatever
  the answers do; latency counts from the scheduled start, so a stall is not hidden
  (no coordinated omission).

A request is ``(method, path, body)``; each process gets its own list of them and stops
early when its list runs out (the flow consumed all the prepared work). Given several
servers (pods behind a Service), process ``i`` sends to server ``i`` modulo their number.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvloop

Request = tuple[str, str, bytes | None]


@dataclass
class Outcome:
    """What one run measured: per request (wall-clock start, latency s, status)."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)
    seconds: float = 0.0
    # CPU the load generator's processes used, all together: the harness's own share of
    # the machine, which the server under test did not get.
    cpu_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Answered requests per second (errors included) over the run's wall time."""
        return len(self.samples) / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        """Answers that were not 2xx (0 = no answer at all)."""
        return sum(1 for _, _, status in self.samples if not 200 <= status < 300)

    def latencies(self) -> list[float]:
        """Latency in seconds of every request."""
        return [latency for _, latency, _ in self.samples]


# uvicorn closes a connection idle for 5 s (its timeout_keep_alive). A client that
# reuses one at that moment races the close and fails a request the server never saw
# (status 0: 13 "errors" of one open-loop lookup run). As HTTP clients do, a connection
# idle for longer than this is replaced instead of reused.
MAX_IDLE_SECONDS = 4.0


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, headers: bytes) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used_at = 0.0

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        """Send one request, read the whole answer; its status (0 when the socket failed)."""
        if self.writer is not None and time.monotonic() - self.used_at > MAX_IDLE_SECONDS:
            self.close()
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\n".encode() + self.headers
            if body is not None:
                head += b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
            self.writer.write(head + b"\r\n" + (body or b""))
            # The status line and headers in one read (one wake-up, not one per line).
            lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length:
                await self.reader.readexactly(length)
            self.used_at = time.monotonic()
            return status
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            return 0

    def close(self) -> None:
        """Drop the socket; the next request opens a new one."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _headers(base_url: str, token: str) -> tuple[str, int, bytes]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = f"host: {host}:{port}\r\nauthorization: Bearer {token}\r\n".encode()
    return host, port, headers


async def _closed(
    base_url: str, token: str, requests: list[Request], connections: int, seconds: float
) -> Outcome:
    host, port, headers = _headers(base_url, token)
    outcome = Outcome()
    queue = iter(requests)
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        conn = Connection(host, port, headers)
        for method, path, body in queue:
            if time.perf_counter() >= deadline:
                break
            sent, wall = time.perf_counter(), time.time()
            status = await conn.request(method, path, body)
            outcome.samples.append((wall, time.perf_counter() - sent, status))
        conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    outcome.seconds = time.perf_counter() - started
    return outcome


async def _open(
    base_url: str, token: str, requests: list[Request], rate: float, seconds: float
) -> Outcome:
    host, port, headers = _headers(base_url, token)
    outcome = Outcome()
    idle: list[Connection] = []
    pending: set[asyncio.Task[None]] = set()
    started = time.perf_counter()

    async def one(request: Request, scheduled: float) -> None:
        conn = idle.pop() if idle else Connection(host, port, headers)
        wall = time.time() - (time.perf_counter() - scheduled)
        status = await conn.request(*request)
        outcome.samples.append((wall, time.perf_counter() - scheduled, status))
        idle.append(conn)

    for index, request in enumerate(requests):
        scheduled = started + index / rate
        if scheduled - started >= seconds:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(request, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    outcome.seconds = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return outcome


def _worker(args: tuple[str, str, str, list[Request], float, float]) -> Outcome:
    mode, base_url, token, requests, knob, seconds = args
    started = time.process_time()
    # uvloop, as the server runs: the generator's own CPU is taken from the server's.
    if mode == "closed":
        outcome = uvloop.run(_closed(base_url, token, requests, int(knob), seconds))
    else:
        outcome = uvloop.run(_open(base_url, token, requests, knob, seconds))
    outcome.cpu_seconds = time.process_time() - started
    return outcome


def _merge(outcomes: list[Outcome]) -> Outcome:
    merged = Outcome(
        seconds=max((o.seconds for o in outcomes), default=0.0),
        cpu_seconds=sum(o.cpu_seconds for o in outcomes),
    )
    for outcome in outcomes:
        merged.samples.extend(outcome.samples)
    return merged


def split(requests: list[Request], parts: int) -> list[list[Request]]:
    """Deal ``requests`` round-robin into ``parts`` lists."""
    return [requests[index::parts] for index in range(parts)]


def _servers(base_url: str | Sequence[str], processes: int) -> list[str]:
    """The server of each load-generator process (``processes`` a multiple of their number)."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if processes % len(urls):
        raise ValueError(f"{processes} processes cannot share {len(urls)} servers evenly")
    return [urls[index % len(urls)] for index in range(processes)]


def closed_loop(
    base_url: str | Sequence[str],
    token: str,
    requests: list[Request],
    *,
    processes: int,
    connections: int,
    seconds: float,
) -> Outcome:
    """Maximum throughput: ``connections`` per process, back to back, for ``seconds``."""
    jobs = [
        ("closed", url, token, part, float(connections), seconds)
        for url, part in zip(_servers(base_url, processes), split(requests, processes), strict=True)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return _merge(pool.map(_worker, jobs))


def open_loop(
    base_url: str | Sequence[str],
    token: str,
    requests: list[Request],
    *,
    processes: int,
    rate: float,
    seconds: float,
) -> Outcome:
    """A fixed arrival rate (requests per second, all processes together) for ``seconds``."""
    jobs = [
        ("open", url, token, part, rate / processes, seconds)
        for url, part in zip(_servers(base_url, processes), split(requests, processes), strict=True)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return _merge(pool.map(_worker, jobs))
