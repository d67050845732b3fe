"""Issue 24: ``hypercorn --workers N`` on one port, sessions that click, drop
their TCP connection and reconnect with their session id. How many resume
with their state (the target: all), and what a click relayed to the worker
holding its session costs against one made on that worker directly.

Run: python -m bench.worker_relay [--workers 2,4] [--sessions 1000] [--clicks 20]

The budget of held sessions (max_held_sessions) is raised above the session
count: every session is held at once while it reconnects. The reconnects
wait ``--pause`` seconds after the drop, as the Flet client
does before it reconnects, so the server has seen the old connection go.
Which reconnects were relayed is read from the server's log (INFO lines of
the ``quart_flet`` logger). The click phases take as many relayed as direct
sessions (the smaller group's size), all clicking at once: latency and the
server's CPU (every worker's) per click of each phase; the load client's
share of a core is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.loadclient import (
    PATCH_CONTROL,
    REGISTER_CLIENT,
    WebSocketClient,
    click_frame,
    decode,
    encode,
    find_control,
)
from bench.servers import Server, free_port

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"quart_flet": {"level": "INFO", "handlers": ["stderr"]}},
}
RELAYED = re.compile(r"session flet/(\w+) lives in another worker: relayed")
_PATCH = b"\x00\x92\x02"


def register_frame(session_id: str | None) -> bytes:
    page = {"route": "/", "width": 800, "height": 600}
    return encode(REGISTER_CLIENT, {"session_id": session_id, "page_name": "", "page": page})


@dataclass
class Tab:
    """One browser: its cookies, its session and the counter it last saw."""

    port: int
    cookies: str = ""
    session_id: str = ""
    fab: bytes = b""
    count: int = 0
    ws: WebSocketClient | None = None
    latencies: list[float] = field(default_factory=list)

    async def open(self, resume: bool = False) -> bool:
        """Connect and register (resuming when asked); True when the session
        came back with its count."""
        self.ws = await WebSocketClient.connect(self.port, cookies=self.cookies)
        if "flet_browser=" not in self.cookies:  # the browser id its first answer set
            self.cookies = "; ".join(filter(None, [self.cookies, *self.ws.set_cookies]))
        self.ws.send(register_frame(self.session_id if resume else None))
        reply = decode(await self.ws.recv())
        assert reply[0] == REGISTER_CLIENT and not reply[1].get("error"), reply
        same = reply[1]["session_id"] == self.session_id
        self.session_id = reply[1]["session_id"]
        page = reply[1].get("page_patch")
        if not (resume and same):
            while True:  # a new session: main sends the page
                message = decode(await self.ws.recv())
                if message[0] == PATCH_CONTROL:
                    page = message[1]
                    break
        fab = find_control(page, _c="FloatingActionButton")
        text = find_control(page, key="counter")
        assert fab is not None and text is not None, page
        self.fab = click_frame(fab["_i"])
        return resume and same and text.get("value") == str(self.count)

    async def click(self) -> None:
        assert self.ws is not None
        started = time.perf_counter()
        self.ws.send(self.fab)
        while not (await self.ws.recv()).startswith(_PATCH):
            pass
        self.latencies.append(time.perf_counter() - started)
        self.count += 1

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None


async def click_phase(tabs: list[Tab], clicks: int, server: Server) -> float:
    """Every tab clicks ``clicks`` times in turn, all tabs at once; the
    server's CPU ms per click."""
    before = server.cpu_seconds()
    await asyncio.gather(*(_clicks(tab, clicks) for tab in tabs))
    return (server.cpu_seconds() - before) * 1000 / max(1, clicks * len(tabs))


async def _clicks(tab: Tab, clicks: int) -> None:
    for _ in range(clicks):
        await tab.click()


async def in_batches(coros: list[Any], size: int = 100) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(coros), size):
        results += await asyncio.gather(*coros[start : start + size])
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_one(workers: int, sessions: int, clicks: int, pause: float) -> dict[str, Any]:
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    log_config = log_dir / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    log_path = log_dir / "server.log"
    argv = [
        sys.executable, "-m", "hypercorn", "bench.apps.ours_counter:app", "-k", "uvloop",
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--log-config", f"json:{log_config}",
    ]  # fmt: skip
    # every session is held at once while it reconnects: above the default
    # budget of 500 per worker, the longest-disconnected would end by design
    server = Server(argv, log_path, env={"FLET_MAX_HELD_SESSIONS": str(2 * sessions)})
    me = psutil.Process()
    try:
        server.wait_ready(port)
        tabs = [Tab(port) for _ in range(sessions)]
        await in_batches([tab.open() for tab in tabs])
        await in_batches([tab.click() for tab in tabs])
        for tab in tabs:
            tab.close()
        await asyncio.sleep(pause)  # as the Flet client waits before it reconnects
        resumed = await in_batches([tab.open(resume=True) for tab in tabs])
        relayed_ids = set(RELAYED.findall(log_path.read_text()))
        relayed = [t for t in tabs if t.session_id in relayed_ids]
        direct = [t for t in tabs if t.session_id not in relayed_ids]
        # as many of each click at once, so their latencies compare
        size = min(len(relayed), len(direct))
        relayed_count, relayed, direct = len(relayed), relayed[:size], direct[:size]
        for tab in tabs:
            tab.latencies.clear()
        client_before = me.cpu_times()
        wall = time.perf_counter()
        cpu_direct = await click_phase(direct, clicks, server)
        cpu_relayed = await click_phase(relayed, clicks, server)
        wall = time.perf_counter() - wall
        client = me.cpu_times()
        client_share = (
            client.user + client.system - client_before.user - client_before.system
        ) / wall
        for tab in tabs:
            tab.close()
        return {
            "workers": workers,
            "sessions": sessions,
            "resumed": sum(resumed),
            "relayed": relayed_count,
            "direct_p50_ms": percentile([x for t in direct for x in t.latencies], 0.5) * 1000,
            "direct_p99_ms": percentile([x for t in direct for x in t.latencies], 0.99) * 1000,
            "relayed_p50_ms": percentile([x for t in relayed for x in t.latencies], 0.5) * 1000,
            "relayed_p99_ms": percentile([x for t in relayed for x in t.latencies], 0.99) * 1000,
            "cpu_ms_direct": cpu_direct,
            "cpu_ms_relayed": cpu_relayed,
            "client_share": client_share,
            "tracebacks": log_path.read_text().count("Traceback"),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,4")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        runs = [
            asyncio.run(run_one(workers, args.sessions, args.clicks, args.pause))
            for _ in range(args.rounds)
        ]
        row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        row["resumed_min"] = min(run["resumed"] for run in runs)
        rows.append(row)
    print(
        "\n| workers | sessions | resumed (min) | relayed | click p50/p99 ms, direct "
        "| relayed | server CPU ms/click, direct | relayed | client CPU share | tracebacks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']:.0f} | {r['sessions']:.0f} | {r['resumed']:.0f} "
            f"({r['resumed_min']:.0f}) | {r['relayed']:.0f} "
            f"| {r['direct_p50_ms']:.2f} / {r['direct_p99_ms']:.2f} "
            f"| {r['relayed_p50_ms']:.2f} / {r['relayed_p99_ms']:.2f} "
            f"| {r['cpu_ms_direct']:.3f} | {r['cpu_ms_relayed']:.3f} "
            f"| {r['client_share']:.0%} | {r['tracebacks']:.0f} |"
        )
    print(
        f"\nmedians of {args.rounds} rounds; each session clicked once, dropped its "
        f"connection, reconnected {args.pause:g} s later with its id and clicked "
        f"{args.clicks} times; server CPU is every worker's"
    )


if __name__ == "__main__":
    main()
