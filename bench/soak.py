"""Soak: hours-long steadiness under churn, the official integration and ours
side by side, both servers up at once under the same load.

Servers: the official (uvicorn + flet_web.fastapi, one process) and ours
(Hypercorn -k uvloop, one worker) serve bench/apps/soak.py with the same
session timeout (SOAK_SESSION_TIMEOUT, 30 s here) and the same upload set-up.

Load (one client process, uvloop, protocol-level WebSockets from
bench.loadclient; loopback only): a new visitor every ``1/rate`` seconds on
each server, with the same script on both (visitor ``i`` draws from
``random.Random(i)``). A visitor registers, then for ``--lifetime`` seconds
does one thing a second: a counter click (waits for its patch), now and then
a pubsub ``send_all`` to everyone (waits for its own copy) or an upload (a
click that shows a signed URL from ``page.get_upload_url``, then a 64 KiB
PUT to it, expecting 200). A third of visitors drop their socket halfway
(half with a close frame, half without) and reconnect with their session id
(a resume, checked: the same id comes back). At the end, 70% close with a
close frame, 30% vanish (TCP closed, no close frame). The visitors in flight
are capped (``--max-inflight``); every wait has a timeout.

Every ``--interval`` seconds (10) each server's serving process is sampled:
RSS, open fds and OS threads (psutil, from outside), and through the app's
``/soak-stats`` route the loop's asyncio tasks (``len(asyncio.all_tasks())``)
and flet ``Session`` objects alive (``gc.get_objects()``). After the warm-up
a least-squares slope per hour is fitted to each metric (with its 95%
interval) and judged against the "flat" thresholds in :data:`FLAT`.

Run: python -m bench.soak [--minutes 30] [--warmup 5] [--out bench/results/soak.csv]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.loadclient import (
    CONTROL_EVENT,
    PATCH_CONTROL,
    REGISTER_CLIENT,
    WebSocketClient,
    decode,
    encode,
    find_control,
)
from bench.servers import Server, free_port

PY = sys.executable
UPDATE_CONTROL_PROPS = 4
SETUPS = ("official", "ours")
MiB = 1024 * 1024
UPLOAD_BODY = os.urandom(64 * 1024)
TIMEOUT = 30.0  # seconds for any one reply

#: "flat": |slope per hour| under these (RSS: the slope itself, a fall is fine).
#: At the default rate (1 visitor/s, 3,600 sessions an hour, each doing ~20
#: clicks, a resume for a third of them, uploads and fan-outs) a leak of one
#: object per session shows far above them: RSS < 10 MiB/h is under 3 KiB kept
#: per session (a session's control tree alone is tens of KiB); tasks < 30/h is
#: fewer than one task left per 120 sessions; fds < 5/h and threads < 2/h are
#: near zero (a connection that kept its socket would add 3,600 fds/h);
#: sessions < 10/h: not one flet Session in 360 kept past its timeout.
FLAT = {"rss_mib": 10.0, "fds": 5.0, "threads": 2.0, "tasks": 30.0, "sessions": 10.0}
METRICS = tuple(FLAT)


# ---- servers -------------------------------------------------------------------


def start_servers(
    stack: ExitStack, work: Path, timeout: int, gc_collect: bool = False
) -> dict[str, tuple[Server, int]]:
    servers: dict[str, tuple[Server, int]] = {}
    for setup in SETUPS:
        port = free_port()
        upload_dir = work / f"uploads-{setup}"
        upload_dir.mkdir()
        env = {
            "FLET_UPLOAD_DIR": str(upload_dir),
            "FLET_SECRET_KEY": "soak-bench-key",
            "SOAK_SESSION_TIMEOUT": str(timeout),
            "FLET_REDIS_URL": "",
            "SOAK_GC_COLLECT": "1" if gc_collect else "",
        }
        if setup == "official":
            argv = [PY, "-m", "uvicorn", "bench.apps.official_soak:app", "--host", "127.0.0.1",
                    "--port", str(port), "--log-level", "warning"]  # fmt: skip
        else:
            argv = [PY, "-m", "hypercorn", "bench.apps.ours_soak:app", "--bind",
                    f"127.0.0.1:{port}", "-k", "uvloop", "--log-level", "WARNING"]  # fmt: skip
        server = Server(argv, work / f"{setup}.log", env)
        stack.callback(server.stop)
        servers[setup] = (server, port)
    for server, port in servers.values():
        server.wait_ready(port)
    return servers


# ---- one visitor ----------------------------------------------------------------


def has_value(tree: Any, test: Callable[[Any], bool]) -> bool:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif test(node):
            return True
    return False


@dataclass
class Counts:
    visitors: int = 0
    registered: int = 0
    clicks: int = 0
    sends: int = 0
    uploads: int = 0
    resumes: int = 0
    skipped: int = 0  # arrivals not started: the in-flight cap was reached
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # click round trips, ms

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Visitor:
    def __init__(self, port: int, http: httpx.AsyncClient, counts: Counts) -> None:
        self.port, self.http, self.counts = port, http, counts
        self.ws: WebSocketClient | None = None
        self.session_id: str | None = None
        self.cookies: list[str] = []
        self.ids: dict[str, int] = {}
        self.count = 0

    async def wait_patch(self, test: Callable[[Any], bool]) -> None:
        assert self.ws is not None
        deadline = time.monotonic() + TIMEOUT
        while True:
            frame = await self.ws.recv(max(0.01, deadline - time.monotonic()))
            message = decode(frame)
            if message[0] == PATCH_CONTROL and has_value(message[1], test):
                return

    async def connect(self, session_id: str | None) -> None:
        # a resume carries the cookies the server set, as a browser does
        cookies = "; ".join(self.cookies) if session_id else ""
        self.ws = await WebSocketClient.connect(self.port, timeout=TIMEOUT, cookies=cookies)
        self.cookies = self.cookies or self.ws.set_cookies
        page = {"route": "/", "width": 800, "height": 600}
        self.ws.send(encode(REGISTER_CLIENT, {"session_id": session_id, "page_name": "",
                                              "page": page}))  # fmt: skip
        while True:
            message = decode(await self.ws.recv(TIMEOUT))
            if message[0] == REGISTER_CLIENT:
                break
        if message[1].get("error"):
            raise RuntimeError(f"register: {message[1]['error']}")
        self.session_id = message[1]["session_id"]
        if session_id is None:
            while True:  # main() sends the page in the first PATCH_CONTROL
                first = decode(await self.ws.recv(TIMEOUT))
                if first[0] == PATCH_CONTROL:
                    break
            for key in ("counter", "text", "all", "upload"):
                control = find_control(first[1], key=key)
                assert control is not None, key
                self.ids[key] = int(control["_i"])
            fab = find_control(first[1], _c="FloatingActionButton")
            assert fab is not None
            self.ids["fab"] = int(fab["_i"])

    def event(self, target: str) -> bytes:
        return encode(CONTROL_EVENT, {"target": self.ids[target], "name": "click", "data": None})

    async def click(self) -> None:
        assert self.ws is not None
        self.count += 1
        want = str(self.count)
        started = time.monotonic()
        self.ws.send(self.event("fab"))
        await self.wait_patch(lambda v: v == want)
        self.counts.latencies.append((time.monotonic() - started) * 1e3)
        self.counts.clicks += 1

    async def send_all(self, text: str) -> None:
        assert self.ws is not None
        props = {"id": self.ids["text"], "props": {"value": text}}
        self.ws.send(encode(UPDATE_CONTROL_PROPS, props))
        self.ws.send(self.event("all"))
        want = f"all:{text}"
        await self.wait_patch(lambda v: v == want)
        self.counts.sends += 1

    async def upload(self) -> None:
        assert self.ws is not None
        self.ws.send(self.event("upload"))
        found: list[str] = []

        def is_url(v: Any) -> bool:
            if isinstance(v, str) and "upload?" in v:
                found.append(v)
                return True
            return False

        await self.wait_patch(is_url)
        url = found[0] if found[0].startswith("/") else "/" + found[0]
        response = await self.http.put(f"http://127.0.0.1:{self.port}{url}", content=UPLOAD_BODY)
        if response.status_code != 200:
            raise RuntimeError(f"upload answered {response.status_code} {response.text[:200]}")
        self.counts.uploads += 1

    def leave(self, close_frame: bool) -> None:
        ws, self.ws = self.ws, None
        if ws is None:
            return
        if close_frame:
            ws.close()
        elif ws.transport is not None:
            ws.closed = True
            ws.transport.abort()  # no close frame, no FIN handshake: RST

    async def run(self, number: int, lifetime: float) -> None:
        rng = random.Random(number)
        resume_at = rng.randrange(int(lifetime)) if rng.random() < 1 / 3 else -1
        resume_with_close = rng.random() < 0.5
        end_with_close = rng.random() < 0.7
        step = "register"
        try:
            await self.connect(None)
            self.counts.registered += 1
            for second in range(int(lifetime)):
                if self.ws is not None:
                    self.ws.messages.clear()  # pubsub copies since the last step
                roll = rng.random()
                if roll < 0.04:
                    step = "send_all"
                    await self.send_all(f"m{number}-{second}")
                elif roll < 0.09:
                    step = "upload"
                    await self.upload()
                else:
                    step = "click"
                    await self.click()
                if second == resume_at:
                    step = "resume"
                    previous = self.session_id
                    self.leave(resume_with_close)
                    await self.connect(previous)
                    if self.session_id != previous:
                        raise RuntimeError("resume gave a new session")
                    self.counts.resumes += 1
                await asyncio.sleep(1)
        except RuntimeError as exc:
            self.counts.error(f"{step}: {str(exc)[:60]}")
        except (OSError, AssertionError, TimeoutError, httpx.HTTPError) as exc:
            self.counts.error(f"{step}: {type(exc).__name__}")
        finally:
            self.leave(end_with_close)


# ---- sampling -------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_mib: float
    fds: int
    threads: int
    tasks: int
    sessions: int
    inflight: int


def process_figures(server: Server) -> tuple[float, int, int]:
    rss = fds = threads = 0
    for proc in server.workers():
        try:
            rss += proc.memory_info().rss
            fds += proc.num_fds()
            threads += proc.num_threads()
        except psutil.Error:
            pass
    return rss / MiB, fds, threads


async def sample(
    setup: str, server: Server, port: int, http: httpx.AsyncClient, at: float, inflight: int
) -> Sample:
    rss, fds, threads = process_figures(server)
    try:
        response = await http.get(f"http://127.0.0.1:{port}/soak-stats", timeout=TIMEOUT)
        stats = response.json()
    except (httpx.HTTPError, ValueError):
        stats = {"tasks": -1, "sessions": -1}
    return Sample(at, rss, fds, threads, stats["tasks"], stats["sessions"], inflight)


# ---- the run --------------------------------------------------------------------


@dataclass
class Result:
    samples: dict[str, list[Sample]]
    counts: dict[str, Counts]
    seconds: float
    client_cpu: float  # the load process's CPU seconds over the run
    client_peak: float  # its busiest interval's share of one core
    server_cpu: dict[str, float]


async def soak(
    servers: dict[str, tuple[Server, int]],
    seconds: float,
    rate: float,
    lifetime: float,
    interval: float,
    max_inflight: int,
    progress: Callable[[str], None],
) -> Result:
    me = psutil.Process()
    counts = {setup: Counts() for setup in SETUPS}
    samples: dict[str, list[Sample]] = {setup: [] for setup in SETUPS}
    inflight: dict[str, set[asyncio.Task[None]]] = {setup: set() for setup in SETUPS}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=10)
    cpu0 = sum(me.cpu_times()[:2])
    server_cpu0 = {setup: servers[setup][0].cpu_seconds() for setup in SETUPS}
    peak = 0.0
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT) as http:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def sampler() -> None:
            nonlocal peak
            tick = 0
            last_cpu, last_at = cpu0, start
            while True:
                at = loop.time() - start
                for setup in SETUPS:
                    server, port = servers[setup]
                    s = await sample(setup, server, port, http, at, len(inflight[setup]))
                    samples[setup].append(s)
                cpu = sum(me.cpu_times()[:2])
                now = loop.time()
                if now > last_at:
                    peak = max(peak, (cpu - last_cpu) / (now - last_at))
                last_cpu, last_at = cpu, now
                if tick % 6 == 0:
                    progress(
                        f"{at / 60:5.1f} min  "
                        + "  ".join(
                            f"{setup}: rss {samples[setup][-1].rss_mib:.1f} MiB "
                            f"fds {samples[setup][-1].fds} thr {samples[setup][-1].threads} "
                            f"tasks {samples[setup][-1].tasks} sess "
                            f"{samples[setup][-1].sessions} live {len(inflight[setup])}"
                            for setup in SETUPS
                        )
                    )
                tick += 1
                await asyncio.sleep(max(0.0, start + tick * interval - loop.time()))

        sampling = asyncio.create_task(sampler())
        number = 0
        try:
            while loop.time() - start < seconds:
                for setup in SETUPS:
                    tasks = inflight[setup]
                    counts[setup].visitors += 1
                    if len(tasks) >= max_inflight:
                        counts[setup].skipped += 1
                        continue
                    visitor = Visitor(servers[setup][1], http, counts[setup])
                    task = asyncio.create_task(visitor.run(number, lifetime))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                number += 1
                await asyncio.sleep(max(0.0, start + number / rate - loop.time()))
            # the visitors in flight finish their scripts, within a bound
            pending = [t for tasks in inflight.values() for t in tasks]
            if pending:
                _, late = await asyncio.wait(pending, timeout=lifetime + 2 * TIMEOUT)
                for task in late:
                    task.cancel()
        finally:
            sampling.cancel()
            for tasks in inflight.values():
                for task in list(tasks):
                    task.cancel()
        elapsed = loop.time() - start
    return Result(
        samples,
        counts,
        elapsed,
        sum(me.cpu_times()[:2]) - cpu0,
        peak,
        {setup: servers[setup][0].cpu_seconds() - server_cpu0[setup] for setup in SETUPS},
    )


# ---- reporting ------------------------------------------------------------------


def slope_per_hour(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, value) in units per hour, and the half
    width of its 95% interval (normal approximation)."""
    n = len(points)
    if n < 3:
        return math.nan, math.nan
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    residual = sum((y - a - b * x) ** 2 for x, y in points) / (n - 2)
    return b * 3600, 1.96 * math.sqrt(residual / sxx) * 3600


def is_flat(metric: str, slope: float) -> bool:
    return slope < FLAT[metric] if metric == "rss_mib" else abs(slope) < FLAT[metric]


def report(result: Result, warmup: float) -> str:
    out: list[str] = []
    head = ["metric", "flat if"] + [f"{s} slope/h (95%)" for s in SETUPS]
    head += [f"{s} mean after warm-up" for s in SETUPS] + ["verdict"]
    rows = [head]
    for metric in METRICS:
        bound = f"< {FLAT[metric]:g}" if metric == "rss_mib" else f"|x| < {FLAT[metric]:g}"
        row = [metric.replace("_mib", " MiB"), bound]
        verdicts, means = [], []
        for setup in SETUPS:
            points = [(s.at, float(getattr(s, metric))) for s in result.samples[setup]
                      if s.at >= warmup and getattr(s, metric) >= 0]  # fmt: skip
            slope, ci = slope_per_hour(points)
            row.append(f"{slope:+.2f} (±{ci:.2f})")
            means.append(f"{statistics.fmean(y for _, y in points):.1f}" if points else "-")
            verdict = "flat" if is_flat(metric, slope) else "NOT FLAT"
            if ci > FLAT[metric]:
                verdict += " (noisy: interval wider than the bound)"
            verdicts.append(f"{setup} {verdict}")
        rows.append(row + means + [", ".join(verdicts)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += lines
    out.append("")
    for setup in SETUPS:
        c = result.counts[setup]
        lat = sorted(c.latencies)
        p50 = lat[len(lat) // 2] if lat else math.nan
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else math.nan
        first, last = result.samples[setup][0], result.samples[setup][-1]
        out.append(
            f"{setup}: {c.registered} sessions of {c.visitors} arrivals ({c.skipped} skipped "
            f"at the in-flight cap), {c.clicks} clicks (p50 {p50:.1f} ms, p99 {p99:.1f} ms), "
            f"{c.sends} send_all, {c.uploads} uploads, {c.resumes} resumes; errors: "
            f"{dict(sorted(c.errors.items())) or 'none'}; server CPU "
            f"{result.server_cpu[setup] / result.seconds:.0%} of a core; RSS first/last "
            f"{first.rss_mib:.1f}/{last.rss_mib:.1f} MiB"
        )
    out.append(
        f"load client CPU: {result.client_cpu / result.seconds:.0%} of one core on average, "
        f"{result.client_peak:.0%} in its busiest {int(result.samples['ours'][1].at)} s interval"
        if len(result.samples["ours"]) > 1
        else ""  # fmt: skip
    )
    out.append(
        f"{result.seconds / 60:.1f} min of load, slopes fitted after a {warmup / 60:.1f} min "
        "warm-up; RSS, fds, threads from psutil on the serving process; tasks = "
        "len(asyncio.all_tasks()) and sessions = flet Session objects alive, from /soak-stats"
    )
    return "\n".join(out)


def write_csv(path: Path, result: Result) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["setup", "at", *METRICS, "inflight"])
        for setup in SETUPS:
            for s in result.samples[setup]:
                writer.writerow([setup, f"{s.at:.1f}", f"{s.rss_mib:.2f}", s.fds, s.threads,
                                 s.tasks, s.sessions, s.inflight])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5, help="minutes left out of the fit")
    parser.add_argument("--rate", type=float, default=1.0, help="new visitors a second, each")
    parser.add_argument("--lifetime", type=float, default=20, help="seconds a visitor stays")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--session-timeout", type=int, default=30)
    parser.add_argument("--max-inflight", type=int, default=200)
    parser.add_argument(
        "--gc-collect",
        action="store_true",
        help="a full gc.collect() in the servers before each count of Session objects",
    )
    parser.add_argument("--out", type=Path, default=None, help="CSV of the samples")
    args = parser.parse_args()
    if args.warmup >= args.minutes:
        parser.error("--warmup must be shorter than --minutes")
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C: servers stop
        signal.signal(sig, signal.default_int_handler)

    def progress(line: str) -> None:
        print(line, flush=True)

    print(f"load average at start: {os.getloadavg()}, {psutil.cpu_count()} cores", flush=True)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak_")))
        servers = start_servers(stack, work, args.session_timeout, args.gc_collect)
        try:
            import uvloop

            runner: Callable[[Any], Result] = uvloop.run
        except ImportError:
            runner = asyncio.run
        result = runner(
            soak(
                servers,
                args.minutes * 60,
                args.rate,
                args.lifetime,
                args.interval,
                args.max_inflight,
                progress,
            )  # fmt: skip
        )
        for setup in SETUPS:
            tail = (work / f"{setup}.log").read_text(errors="replace")[-1500:]
            if tail.strip():
                print(f"--- {setup} log tail ---\n{tail}", flush=True)
    if args.out is not None:
        write_csv(args.out, result)
    print(f"\nsoak, load average at end: {os.getloadavg()}\n")
    print(report(result, args.warmup * 60))


if __name__ == "__main__":
    main()
