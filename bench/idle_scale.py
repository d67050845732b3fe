"""Many idle sessions in one server process: quart-flet on Hypercorn (-k uvloop)
against the official flet_web.fastapi on uvicorn, the same counter app, the
same run.

    python -m bench.idle_scale --sessions 10000 --rounds 3
    python -m bench.idle_scale --sessions 2000 --breakdown   # tracemalloc by package

Each round starts each server fresh (in a rotating order) and, with the
sessions spread over a ClientPool (bench/clientpool.py):

- registers ``sessions`` sessions in steps of ``--batch`` concurrent opens per
  client process, so neither server drowns in a burst (registrations/s);
- holds them idle and reads the server's RSS before and after (KiB/session);
- has 50 of them click ``--clicks`` times each, one click every ``--pace``
  seconds, while the others are held: p50/p99 of those round trips;
- then every one of the sessions clicks once: how many answered.

Next to each timed figure is the busiest client process's CPU, as a share of
one core; a figure whose client was saturated says so instead of a ratio.
Medians over rounds; ratios are medians of per-round ratios ours/official.

``--breakdown`` runs each server once with tracemalloc on (bench/apps/memtrace.py)
and prints where an idle session's memory goes, KiB per session by package.
Tracing makes everything slower: its timings are not reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.apps import memtrace
from bench.clientpool import SATURATED, CallResult, ClientPool, default_processes, split
from bench.run import ROOT, SERVERS, Server, ServerKind, _run, machine, serving

KINDS = ("official", "ours-uvloop")
ACTIVE = 50


def raise_fd_limit(sessions: int) -> int:
    """Lift the soft limit on open files to the hard one (servers and client
    processes inherit it); an error if it cannot hold ``sessions`` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < sessions + 200:
        raise SystemExit(f"open files limit {soft} is too low for {sessions} sessions")
    return soft


class Share:
    """The busiest client process's CPU over several pool calls."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.wall = 0.0

    def add(self, result: CallResult) -> None:
        if not self.cpu:
            self.cpu = [0.0] * len(result.cpu_s)
        self.cpu = [a + b for a, b in zip(self.cpu, result.cpu_s, strict=True)]
        self.wall += result.wall_s

    @property
    def busiest(self) -> float:
        return max(self.cpu) / self.wall if self.cpu and self.wall > 0 else 0.0


async def idle_round(
    server: Server, port: int, pool: ClientPool, sessions: int, args: argparse.Namespace
) -> dict[str, float]:
    shares = split(sessions, pool.size)
    warm = split(10, pool.size)
    await pool.call("bench.loadclient:pool_open", port, per_process=warm)
    await pool.call("bench.loadclient:pool_click_once", port, per_process=warm)
    await pool.call("bench.loadclient:pool_close", port)
    rss0 = server.rss()
    cpu0 = server.cpu_seconds()
    register = Share()
    started = time.perf_counter()
    opened = [0] * pool.size
    try:
        while opened != shares:
            step = [
                min(args.batch, total - done) for total, done in zip(shares, opened, strict=True)
            ]
            register.add(await pool.call("bench.loadclient:pool_open", port, per_process=step))
            opened = [a + b for a, b in zip(opened, step, strict=True)]
        register_s = time.perf_counter() - started
        register_cpu = server.cpu_seconds() - cpu0
        await asyncio.sleep(2.0)  # let the server settle (flet's tasks after main)
        rss1 = server.rss()

        active = Share()
        clicks_from = time.time()
        clicks = await pool.call(
            "bench.loadclient:pool_click_paced",
            port,
            args.clicks,
            args.pace,
            per_process=split(ACTIVE, pool.size),
        )
        active.add(clicks)
        # to set beside the server's log (BENCH_GCLOG=1: its full collections)
        print(f"    {ACTIVE} active clicked {clicks_from:.3f} to {time.time():.3f}", flush=True)
        latencies = sorted(x for part in clicks.results for x in part)

        alive_share = Share()
        alive = await pool.call("bench.loadclient:pool_alive", port)
        alive_share.add(alive)
    finally:
        await pool.call("bench.loadclient:pool_close", port)
    return {
        "sessions": sessions,
        "rss_before_mib": rss0 / 2**20,
        "rss_after_mib": rss1 / 2**20,
        "kib_per_session": (rss1 - rss0) / sessions / 1024,
        "registrations_per_s": sessions / register_s,
        "register_cpu_ms": register_cpu / sessions * 1e3,
        "register_client": register.busiest,
        "click_p50_ms": _quantile(latencies, 0.50) * 1e3,
        "click_p99_ms": _quantile(latencies, 0.99) * 1e3,
        "click_max_ms": latencies[-1] * 1e3,
        "clicks_client": active.busiest,
        "answered": sum(alive.results),
        "answered_client": alive_share.busiest,
    }


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# ---- the memory breakdown -----------------------------------------------------


@contextmanager
def tracing(prefix: Path) -> Iterator[None]:
    """Servers started inside trace their allocations (bench/apps/memtrace.py)."""
    os.environ[memtrace.ENV] = str(prefix)
    try:
        yield
    finally:
        del os.environ[memtrace.ENV]


def snapshot(server: Server, prefix: Path, timeout: float = 300) -> dict[str, dict[str, int]]:
    """Ask the serving process for a tracemalloc summary and read it."""
    (worker,) = server.workers()
    before = set(prefix.parent.glob(f"{prefix.name}.{worker.pid}.*.json"))
    os.kill(worker.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while True:  # the summary of a big heap takes a while; the file appears whole
        new = set(prefix.parent.glob(f"{prefix.name}.{worker.pid}.*.json")) - before
        if new:
            data: dict[str, dict[str, int]] = json.loads(new.pop().read_text())
            return data
        if time.monotonic() > deadline or server.proc.poll() is not None:
            raise RuntimeError("the server wrote no tracemalloc summary")
        time.sleep(0.2)


async def breakdown_round(
    server: Server, port: int, pool: ClientPool, sessions: int, prefix: Path, batch: int
) -> dict[str, Any]:
    warm = split(10, pool.size)
    await pool.call("bench.loadclient:pool_open", port, per_process=warm)
    await pool.call("bench.loadclient:pool_click_once", port, per_process=warm)
    await pool.call("bench.loadclient:pool_close", port)
    await asyncio.sleep(1.0)
    rss0 = server.rss()
    before = await asyncio.to_thread(snapshot, server, prefix)
    shares = split(sessions, pool.size)
    opened = [0] * pool.size
    try:
        while opened != shares:
            step = [min(batch, total - done) for total, done in zip(shares, opened, strict=True)]
            await pool.call("bench.loadclient:pool_open", port, per_process=step)
            opened = [a + b for a, b in zip(opened, step, strict=True)]
        await asyncio.sleep(2.0)
        rss1 = server.rss()
        after = await asyncio.to_thread(snapshot, server, prefix)
    finally:
        await pool.call("bench.loadclient:pool_close", port)
    out: dict[str, Any] = {"rss_kib": (rss1 - rss0) / sessions / 1024}
    out["lines"] = {k: v / sessions / 1024 for k, v in after["lines"].items()}
    for view in ("innermost", "owner"):
        names = set(before[view]) | set(after[view])
        out[view] = {
            name: (after[view].get(name, 0) - before[view].get(name, 0)) / sessions / 1024
            for name in names
        }
    return out


def breakdown_table(results: dict[str, dict[str, Any]], view: str) -> str:
    names = sorted(
        {n for r in results.values() for n in r[view]},
        key=lambda n: -max(abs(r[view].get(n, 0.0)) for r in results.values()),
    )
    kinds = list(results)
    lines = [f"| {view} package | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name in names:
        cells = [f"{results[k][view].get(name, 0.0):.2f}" for k in kinds]
        if all(abs(float(c)) < 0.05 for c in cells):
            continue
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [f"**{sum(results[k][view].values()):.1f}**" for k in kinds]
    lines.append("| traced total | " + " | ".join(totals) + " |")
    lines.append(
        "| RSS (traced run) | " + " | ".join(f"{results[k]['rss_kib']:.1f}" for k in kinds) + " |"
    )
    return "\n".join(lines)


def run_breakdown(
    sessions: int, log_dir: Path, batch: int = 25, kinds: tuple[str, ...] = KINDS
) -> str:
    raise_fd_limit(sessions)
    results: dict[str, dict[str, Any]] = {}
    with ClientPool(default_processes()) as pool:
        for name in kinds:
            kind = SERVERS[name]
            prefix = log_dir / f"trace-{name}"
            with tracing(prefix), serving(kind, kind.counter, log_dir) as (server, port):
                results[name] = _run(breakdown_round(server, port, pool, sessions, prefix, batch))
            print(f"  {name}: traced {sum(results[name]['owner'].values()):.1f} KiB/session, "
                  f"RSS {results[name]['rss_kib']:.1f}", flush=True)  # fmt: skip
    (log_dir / "breakdown.json").write_text(json.dumps(results, indent=1))
    return (
        f"KiB per idle session, {sessions} sessions, tracemalloc ({memtrace.FRAMES} frames)\n\n"
        "By the frame that allocated:\n\n" + breakdown_table(results, "innermost") + "\n\n"
        "By the innermost caller outside the standard library:\n\n"
        + breakdown_table(results, "owner")
    )


# ---- the timed rounds -----------------------------------------------------------

ROWS: list[tuple[str, str, str, str, str]] = [
    # key, label, format, better, client share key
    ("kib_per_session", "idle RSS KiB/session", "{:.1f}", "lo", ""),
    ("rss_before_mib", "server RSS before (MiB)", "{:.0f}", "", ""),
    ("rss_after_mib", "server RSS with all held (MiB)", "{:.0f}", "", ""),
    ("registrations_per_s", "registrations/s", "{:.0f}", "hi", "register_client"),
    ("register_cpu_ms", "server CPU ms/registration", "{:.2f}", "lo", ""),
    ("click_p50_ms", f"active {ACTIVE}: click p50 (ms)", "{:.1f}", "lo", "clicks_client"),
    ("click_p99_ms", f"active {ACTIVE}: click p99 (ms)", "{:.1f}", "lo", "clicks_client"),
    ("click_max_ms", f"active {ACTIVE}: click max (ms)", "{:.1f}", "", "clicks_client"),
    ("answered", "sessions answering at the end", "{:.0f}", "", "answered_client"),
]


def summarize(rounds: list[dict[str, dict[str, float]]], sessions: int) -> str:
    head = ["metric", *KINDS, "ours/official"]
    lines = [head]
    for key, label, fmt, better, client in ROWS:
        row = [label]
        saturated = False
        for name in KINDS:
            values = [r[name][key] for r in rounds if name in r]
            cell = fmt.format(statistics.median(values))
            if key == "answered":
                cell += f" of {sessions}"
            if client:
                share = statistics.median(r[name][client] for r in rounds if name in r)
                cell += f" (client {share:.0%})"
                saturated = saturated or share >= SATURATED
            row.append(cell)
        ratios = [r["ours-uvloop"][key] / r["official"][key] for r in rounds if r["official"][key]]
        if not better:
            row.append("")
        elif saturated:
            row.append("client saturated")
        else:
            row.append(f"{statistics.median(ratios):.2f}x")
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
           for line in lines]  # fmt: skip
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.append(
        f"\n{sessions} sessions in one server process, medians of {len(rounds)} round(s); "
        "(client N%): the busiest client process's CPU, share of one core"
    )
    return "\n".join(out)


def run_idle_scale(
    sessions: int, rounds: int, log_dir: Path, args: argparse.Namespace | None = None
) -> str:
    """``rounds`` rounds of both servers, each fresh; the markdown table."""
    args = args or parse_args([])
    raise_fd_limit(sessions)
    log_dir.mkdir(parents=True, exist_ok=True)
    kinds: list[ServerKind] = [SERVERS[name] for name in KINDS]
    results: list[dict[str, dict[str, float]]] = []
    with ClientPool(args.processes or default_processes()) as pool:
        for i in range(rounds):
            order = kinds[i % len(kinds) :] + kinds[: i % len(kinds)]
            results.append({})
            for kind in order:
                with serving(kind, kind.counter, log_dir) as (server, port):
                    r = _run(idle_round(server, port, pool, sessions, args))
                results[-1][kind.name] = r
                print(f"  round {i + 1} {kind.name}: "
                      + ", ".join(f"{k}={v:.4g}" for k, v in r.items()), flush=True)  # fmt: skip
    (log_dir / "idle_scale.json").write_text(json.dumps(results, indent=1))
    return summarize(results, sessions)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=25, help="concurrent opens per client process")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per active session")
    parser.add_argument("--pace", type=float, default=0.2, help="seconds between a user's clicks")
    parser.add_argument("--processes", type=int, default=0, help="client processes (0: per core)")
    parser.add_argument("--breakdown", action="store_true", help="tracemalloc by package instead")
    parser.add_argument("--servers", default=",".join(KINDS), help="for --breakdown")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    log_dir = ROOT / "bench" / "results" / time.strftime("idle-%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind, so every server is stopped
        signal.signal(sig, signal.default_int_handler)
    print(machine())
    print(f"load average at start: {os.getloadavg()}; logs in {log_dir}", flush=True)
    started = time.perf_counter()
    if args.breakdown:
        text = run_breakdown(args.sessions, log_dir, args.batch, tuple(args.servers.split(",")))
    else:
        text = run_idle_scale(args.sessions, args.rounds, log_dir, args)
    print(f"\nload average at end: {os.getloadavg()}; {time.perf_counter() - started:.0f} s\n")
    print(text)
    (log_dir / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
