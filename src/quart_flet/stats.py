"""What quart-flet counts while it serves: plain ints bumped on the hot path
(an attribute increment per frame), read only when someone asks (the
readiness body, :mod:`quart_flet.app.metrics` at scrape time). Counters are
process-wide, as Prometheus counts per process; gauges (sessions,
connections) are read from each app's registry.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from quart_flet.compat.stdlib import executor_max_workers

#: upper bounds (seconds) of the event-handler latency histogram's buckets
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Latency:
    """A histogram without prometheus_client: one bisect and two adds per event."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class Stats:
    """The process's counters (one instance: :data:`STATS`)."""

    def __init__(self) -> None:
        self.registrations = 0  # new sessions
        self.resumes = 0
        self.resume_failures = 0  # asked to resume, got a new session
        self.relayed = 0  # reconnects relayed to the worker holding their session
        self.session_ends: Counter[str] = Counter()  # by SessionEndReason (started ones)
        self.frames_in = self.bytes_in = 0
        self.frames_out = self.bytes_out = 0
        self.send_buffer_drops = 0  # clients disconnected for a full send buffer
        self.closes: Counter[str] = Counter()  # by close code ("client": it left)
        self.pubsub_published = self.pubsub_delivered = self.pubsub_failed = 0
        self.pubsub_dropped = 0  # deliveries dropped: too much waited for their session
        self.handler_latency = {"sync": Latency(), "async": Latency()}


STATS = Stats()


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that knows how many of its jobs run and how many wait."""

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._counts_lock = threading.Lock()
        self.submitted = self.started = self.finished = 0

    @property
    def max_threads(self) -> int:
        return executor_max_workers(self)

    @property
    def busy(self) -> int:
        return self.started - self.finished

    @property
    def queued(self) -> int:
        return self.submitted - self.started

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._counts_lock:
            self.submitted += 1
        try:
            return super().submit(self._counted, fn, *args, **kwargs)
        except BaseException:
            with self._counts_lock:
                self.submitted -= 1
            raise

    def _counted(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._counts_lock:
            self.started += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with self._counts_lock:
                self.finished += 1
