"""Prometheus metrics (the ``metrics`` extra): ``metrics_path`` of QuartFlet,
or :func:`metrics` on a route of your own, or :class:`FletCollector` in a
``prometheus_client`` registry of yours. Nothing is counted through
prometheus_client on the hot path: the collector reads quart_flet.stats'
plain ints, the registry's gauges and the other workers' snapshots at scrape
time.

Why and how: docs/reference/metrics.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quart import Response, current_app

from quart_flet.options import OptionError
from quart_flet.session.registry import EXTENSION_KEY, FletRegistry
from quart_flet.stats import LATENCY_BUCKETS, STATS

logger = logging.getLogger("quart_flet.app.metrics")

BOUNDS = (*map(str, LATENCY_BUCKETS), "+Inf")  # the histogram's `le` labels
SNAPSHOT_EVERY = 1.0  # seconds between a worker's snapshots
#: overrides where workers share their snapshots (default: a directory in
#: the temp dir named after Hypercorn's parent process)
DIR_VARIABLE = "QUART_FLET_METRICS_DIR"

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError:  # pragma: no cover - the extra is not installed
    CollectorRegistry = None  # type: ignore[assignment,misc]


def require_prometheus(option: str) -> None:
    if CollectorRegistry is None:
        raise OptionError(
            f"quart-flet option {option} needs prometheus_client: pip install 'quart-flet[metrics]'"
        )


def snapshot(registry: FletRegistry) -> dict[str, Any]:
    """This process's numbers, JSON-able."""
    live = sum(entry.connection is not None for entry in registry.sessions.values())
    executor = registry.executor
    connected = getattr(registry.backend, "connected", None)
    return {
        "ready": registry.ready,
        "sessions_live": live,
        "sessions_held": len(registry.sessions) - live,
        # browsers' WebSockets: a relayed one is counted by the worker it is open in
        "connections": sum(not connection.relayed for connection in registry.connections),
        "pool_threads": executor.max_threads if executor else 0,
        "pool_busy": executor.busy if executor else 0,
        "pool_queued": executor.queued if executor else 0,
        "redis_up": None if connected is None else int(connected),
        "registrations": STATS.registrations,
        "resumes": STATS.resumes,
        "resume_failures": STATS.resume_failures,
        "session_ends": dict(STATS.session_ends),
        "frames_in": STATS.frames_in,
        "frames_out": STATS.frames_out,
        "bytes_in": STATS.bytes_in,
        "bytes_out": STATS.bytes_out,
        "send_buffer_drops": STATS.send_buffer_drops,
        "closes": dict(STATS.closes),
        "pubsub_published": STATS.pubsub_published,
        "pubsub_delivered": STATS.pubsub_delivered,
        "pubsub_failed": STATS.pubsub_failed,
        "pubsub_dropped": STATS.pubsub_dropped,
        "latency": {
            kind: {"counts": list(latency.counts), "sum": latency.total}
            for kind, latency in STATS.handler_latency.items()
        },
    }


# ---- sharing between worker processes -------------------------------------


def shared_dir() -> Path | None:
    """Where this worker and its siblings leave their snapshots; None in a
    process of its own."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return None
    given = os.environ.get(DIR_VARIABLE)
    if given:
        return Path(given)
    return Path(tempfile.gettempdir()) / f"quart_flet_metrics_{parent.pid}"


def write_snapshot(directory: Path, registry: FletRegistry) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / f"{os.getpid()}.json"
    temp = target.with_suffix(".tmp")
    temp.write_text(json.dumps(snapshot(registry)))
    temp.replace(target)  # readers never see half a file


def read_snapshots(directory: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in directory.glob("*.json"):
        pid = path.stem
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            path.unlink(missing_ok=True)  # a worker that died without cleaning up
            continue
        except PermissionError:
            pass
        try:
            found[pid] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now: next scrape
    return found


def start_sharing(registry: FletRegistry) -> None:
    """In a worker process, write this worker's snapshot every second until
    the registry stops (then remove it)."""
    directory = shared_dir()
    if directory is None or CollectorRegistry is None or registry.loop is None:
        return
    loop = registry.loop

    def tick() -> None:
        if not registry.started:
            (directory / f"{os.getpid()}.json").unlink(missing_ok=True)
            return
        try:
            write_snapshot(directory, registry)
        except OSError as error:
            logger.warning("cannot share this worker's metrics in %s: %s", directory, error)
        loop.call_later(SNAPSHOT_EVERY, tick)

    tick()


def stop_sharing() -> None:
    directory = shared_dir()
    if directory is not None:
        (directory / f"{os.getpid()}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the last worker out removes it
            directory.rmdir()


# ---- the collector --------------------------------------------------------


class FletCollector:
    """A prometheus_client collector of one Quart app's quart-flet numbers:
    ``REGISTRY.register(FletCollector(app.extensions["quart_flet"]))``."""

    def __init__(self, registry: FletRegistry) -> None:
        require_prometheus("metrics")
        self.registry = registry

    def snapshots(self) -> dict[str, dict[str, Any]]:
        directory = shared_dir()
        if directory is None or not self.registry.started:
            return {str(os.getpid()): snapshot(self.registry)}
        write_snapshot(directory, self.registry)  # this worker's, fresh
        return read_snapshots(directory)

    def collect(self) -> Iterator[Metric]:
        return iter(families(self.snapshots()))


def families(snapshots: dict[str, dict[str, Any]]) -> list[Metric]:
    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"quart_flet_{name}", doc, labels=["worker", *labels])

    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
        return CounterMetricFamily(f"quart_flet_{name}", doc, labels=["worker", *labels])

    ready = gauge("ready", "1 while serving, 0 once a graceful stop began")
    sessions = gauge("sessions", "sessions: live (connected) or held (resumable)", ("state",))
    connections = gauge("connections", "open Flet WebSockets")
    threads = gauge("pool_threads", "threads of the pool for sync handlers")
    busy = gauge("pool_busy", "pool threads running user code")
    queued = gauge("pool_queued", "jobs waiting for a pool thread")
    redis = gauge("redis_up", "1 while subscribed to Redis (apps with redis_url)")
    registrations = counter("registrations", "new sessions")
    resumes = counter("resumes", "sessions resumed by a reconnecting browser")
    resume_failures = counter("resume_failures", "resumes refused: a new session instead")
    ends = counter(
        "session_ends", "sessions ended, by the reason on_session_end hears", ("reason",)
    )
    frames = counter("frames", "WebSocket frames", ("direction",))
    data = counter("bytes", "WebSocket payload bytes", ("direction",))
    drops = counter("send_buffer_drops", "clients disconnected for a full send buffer")
    closes = counter("closes", "Flet WebSockets closed, by close code", ("code",))
    pubsub = counter("pubsub_messages", "pubsub sends and deliveries", ("outcome",))
    latency = HistogramMetricFamily(
        "quart_flet_handler_latency_seconds",
        "event handler run time, sync (thread pool) or async",
        labels=["worker", "kind"],
    )
    for worker, s in sorted(snapshots.items()):
        ready.add_metric([worker], int(s["ready"]))
        sessions.add_metric([worker, "live"], s["sessions_live"])
        sessions.add_metric([worker, "held"], s["sessions_held"])
        connections.add_metric([worker], s["connections"])
        threads.add_metric([worker], s["pool_threads"])
        busy.add_metric([worker], s["pool_busy"])
        queued.add_metric([worker], s["pool_queued"])
        if s["redis_up"] is not None:
            redis.add_metric([worker], s["redis_up"])
        registrations.add_metric([worker], s["registrations"])
        resumes.add_metric([worker], s["resumes"])
        resume_failures.add_metric([worker], s["resume_failures"])
        for reason, count in sorted(s["session_ends"].items()):
            ends.add_metric([worker, reason], count)
        for direction in ("in", "out"):
            frames.add_metric([worker, direction], s[f"frames_{direction}"])
            data.add_metric([worker, direction], s[f"bytes_{direction}"])
        drops.add_metric([worker], s["send_buffer_drops"])
        for code, count in sorted(s["closes"].items()):
            closes.add_metric([worker, code], count)
        for outcome in ("published", "delivered", "failed", "dropped"):
            pubsub.add_metric([worker, outcome], s[f"pubsub_{outcome}"])
        for kind, histogram in sorted(s["latency"].items()):
            cumulative, buckets = 0, []
            for bound, count in zip(BOUNDS, histogram["counts"], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([worker, kind], buckets, histogram["sum"])
    return [
        ready,
        sessions,
        connections,
        threads,
        busy,
        queued,
        *([redis] if redis.samples else []),
        registrations,
        resumes,
        resume_failures,
        ends,
        frames,
        data,
        drops,
        closes,
        pubsub,
        latency,
    ]


def exposition(registry: FletRegistry) -> bytes:
    """The Prometheus text format of ``registry``'s numbers."""
    if registry.prometheus is None:
        registry.prometheus = CollectorRegistry(auto_describe=False)
        registry.prometheus.register(FletCollector(registry))
    return generate_latest(registry.prometheus)


async def metrics() -> Response:
    """The metrics block: ``return await metrics()`` from a route of yours."""
    require_prometheus("metrics")
    registry = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(registry, FletRegistry):
        raise RuntimeError("quart-flet is not set up on this app: QuartFlet(app)")
    return Response(exposition(registry), content_type=CONTENT_TYPE_LATEST)
