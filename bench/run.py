"""The bench: quart-flet on Hypercorn against the official flet_web.fastapi on
uvicorn, the same Flet apps and the same load, in one run; prints medians and
ratios ours/official.

    python -m bench.run                 # full: 5 rounds, every server
    python -m bench.run --quick         # 1 round, smaller loads
    python -m bench.run --rounds 3 --servers official,ours-uvloop

Each round starts every server fresh for each of these phases:
- clicks: all servers up at once. For N=50 and N=200: N sessions register on
  each server at once (timed), then every session clicks the FAB back to back
  (one round trip after another) in time-boxed chunks that alternate between
  the servers in a rotating order, so a busy spell of this shared machine falls
  on all of them alike (clicks/s and the server's CPU per click);
- idle: M sessions register and sit idle; RSS growth per session, then how
  many of them still answer a click (sessions held);
- stall: on the blocking app, one session's SYNC handler sleeps 1 s while 20
  other sessions click; how many of the 20 saw a click over 500 ms;
- echo: a bare WebSocket echo on each stack (no Flet), server CPU per frame.
And the in-process floor (bench/floor.py): flet's own CPU per click.

Servers run on 127.0.0.1 in their own process group and are stopped (SIGTERM,
then SIGKILL) whatever happens. Benchmarks are not tests: never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import loadclient
from bench.clientpool import SATURATED, ClientPool, default_processes, split
from bench.floor import run_floor
from bench.servers import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass(frozen=True)
class ServerKind:
    name: str
    label: str
    command: Callable[[str, int], list[str]]  # (app module, port) -> argv
    counter: str
    blocking: str | None
    echo: str | None = None  # a bare WebSocket echo on the same stack


def _uvicorn(module: str, port: int) -> list[str]:
    # the official way: uvicorn's defaults (uvloop, httptools, websockets)
    return [PY, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def _hypercorn(*extra: str) -> Callable[[str, int], list[str]]:
    # --backlog 2048 is uvicorn's default; Hypercorn's 100 overflows when 200
    # clients connect at once and the kernel drops SYNs (1 s retransmits)
    def command(module: str, port: int) -> list[str]:
        return [PY, "-m", "hypercorn", f"{module}:app", "--bind", f"127.0.0.1:{port}",
                "--backlog", "2048", *extra]  # fmt: skip

    return command


SERVERS = {
    kind.name: kind
    for kind in (
        ServerKind(
            "official",
            "official (uvicorn)",
            _uvicorn,
            "bench.apps.official_counter",
            "bench.apps.official_blocking",
            "bench.apps.echo_starlette",
        ),
        ServerKind(
            "ours-asyncio",
            "ours (hypercorn -k asyncio)",
            _hypercorn("-k", "asyncio"),
            "bench.apps.ours_counter",
            "bench.apps.ours_blocking",
            "bench.apps.echo_quart",
        ),
        ServerKind(
            "ours-uvloop",
            "ours (hypercorn -k uvloop)",
            _hypercorn("-k", "uvloop"),
            "bench.apps.ours_counter",
            "bench.apps.ours_blocking",
            "bench.apps.echo_quart",
        ),
        ServerKind(
            "ours-metrics",
            "ours (-k uvloop, metrics on)",
            _hypercorn("-k", "uvloop"),
            "bench.apps.ours_counter_metrics",
            None,
        ),
        ServerKind(
            "ours-w2",
            "ours (-k uvloop --workers 2)",
            _hypercorn("-k", "uvloop", "--workers", "2"),
            "bench.apps.ours_counter",
            None,  # a sync handler blocks one worker's thread, not the other worker
        ),
    )
}


LOAD = "bench.loadclient"  # the module of the client pool's commands

# ---- servers ------------------------------------------------------------------


@contextmanager
def serving(kind: ServerKind, module: str, log_dir: Path) -> Iterator[tuple[Server, int]]:
    port = free_port()
    server = Server(kind.command(module, port), log_dir / f"{kind.name}.log")
    try:
        server.wait_ready(port)
        yield server, port
    finally:
        server.stop()


# ---- measuring ------------------------------------------------------------------


class ForeignLoad:
    """CPU the rest of the machine used while we measured, in % of all cores."""

    def __init__(self, server: Server, client_pids: Sequence[int] = ()) -> None:
        self.server = server
        self.clients = [psutil.Process(), *(psutil.Process(pid) for pid in client_pids)]

    def _clients_cpu(self) -> float:
        return sum(_cpu(p) for p in self.clients)

    def __enter__(self) -> ForeignLoad:
        self.t0 = time.perf_counter()
        self.busy0 = _busy()
        self.ours0 = self.server.cpu_seconds() + self._clients_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        ours = self.server.cpu_seconds() + self._clients_cpu() - self.ours0
        foreign = _busy() - self.busy0 - ours
        self.percent = max(0.0, foreign) / (wall * (psutil.cpu_count() or 1)) * 100


def _busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


async def phase_clicks(
    servers: dict[str, tuple[Server, int]],
    sizes: list[int],
    chunks: int,
    chunk_seconds: float,
    client_processes: int,
) -> dict[str, dict[str, float]]:
    """All servers up at once; for each N: register N sessions on each (timed),
    then click chunks that alternate between the servers, so a busy spell of
    the machine falls on all of them alike. The sessions are spread over
    ``client_processes`` client processes, whose busiest one's CPU share is
    reported: a saturated client measures itself, not the server."""
    out: dict[str, dict[str, float]] = {name: {} for name in servers}
    names = list(servers)
    with ClientPool(client_processes) as pool:
        for _, port in servers.values():
            await pool.call(f"{LOAD}:pool_open", port, per_process=split(10, pool.size))
            await pool.call(f"{LOAD}:pool_click_for", port, 0.5)
            await pool.call(f"{LOAD}:pool_close", port)
        await asyncio.sleep(0.5)
        for n in sizes:
            try:
                for name in names:
                    server, port = servers[name]
                    t0, cpu0 = time.perf_counter(), server.cpu_seconds()
                    await loadclient.bounded(
                        pool.call(f"{LOAD}:pool_open", port, per_process=split(n, pool.size)),
                        120,
                        "register",
                    )
                    out[name][f"register_{n}_s"] = time.perf_counter() - t0
                    out[name][f"register_cpu_ms_{n}"] = (server.cpu_seconds() - cpu0) / n * 1e3
                    if len(server.workers()) > 1:  # how the kernel spread the sessions
                        out[name][f"busiest_worker_share_{n}"] = server.busiest_worker_share()
                    await asyncio.sleep(0.3)
                # clicks, s, server cpu, foreign, client cpu, busiest client share
                totals = {name: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for name in names}
                best = dict.fromkeys(names, 0.0)
                for c in range(chunks):
                    for name in names[c % len(names) :] + names[: c % len(names)]:
                        server, port = servers[name]
                        with ForeignLoad(server, pool.pids) as load:
                            cpu0 = server.cpu_seconds()
                            answer = await loadclient.bounded(
                                pool.call(f"{LOAD}:pool_click_for", port, chunk_seconds),
                                chunk_seconds + 60,
                                "clicks",
                            )
                            cpu = server.cpu_seconds() - cpu0
                        clicks = sum(r[0] for r in answer.results)
                        elapsed = max(r[1] for r in answer.results)
                        t = totals[name]
                        t[0] += clicks
                        t[1] += elapsed
                        t[2] += cpu
                        t[3] += load.percent * elapsed
                        t[4] += answer.client_cpu_s
                        t[5] = max(t[5], answer.busiest_share)
                        best[name] = max(best[name], clicks / elapsed)
            finally:
                for _, port in servers.values():
                    await pool.call(f"{LOAD}:pool_close", port)
            for name, (clicks, elapsed, cpu, foreign, client, busiest) in totals.items():
                out[name][f"clicks_per_s_{n}"] = clicks / elapsed
                out[name][f"cpu_ms_per_click_{n}"] = cpu / clicks * 1e3
                out[name][f"foreign_load_{n}"] = foreign / elapsed
                out[name][f"clicks_per_s_best_{n}"] = best[name]
                out[name][f"client_cpu_ms_per_click_{n}"] = client / clicks * 1e3
                out[name][f"client_busiest_{n}"] = busiest
            await asyncio.sleep(0.5)
    return out


async def phase_idle(server: Server, port: int, sessions_count: int) -> dict[str, float]:
    warm = await loadclient.open_sessions(port, 5)
    await loadclient.click_rounds(warm, 5)
    loadclient.close_all(warm)
    await asyncio.sleep(1.0)
    rss0 = server.rss()
    sessions: list[loadclient.FletSession] = []
    try:
        for _ in range(0, sessions_count, 100):  # in batches, as users arrive
            batch = min(100, sessions_count - len(sessions))
            sessions += await loadclient.bounded(
                loadclient.open_sessions(port, batch), 120, "register"
            )
        await asyncio.sleep(2.0)
        rss1 = server.rss()

        async def answers(s: loadclient.FletSession) -> bool:
            try:
                await s.click(timeout=20)
                return True
            except (ConnectionError, TimeoutError):
                return False

        held = sum(await asyncio.gather(*(answers(s) for s in sessions)))
    finally:
        loadclient.close_all(sessions)
    return {
        "idle_kib_per_session": (rss1 - rss0) / sessions_count / 1024,
        "sessions_held": held,
        "idle_sessions": sessions_count,
    }


async def phase_echo(server: Server, port: int, seconds: float = 3.0) -> dict[str, float]:
    await loadclient.echo_for(port, 50, 0.5)  # warm
    cpu0 = server.cpu_seconds()
    count = await loadclient.bounded(loadclient.echo_for(port, 50, seconds), 60, "echo")
    return {"echo_cpu_ms": (server.cpu_seconds() - cpu0) / count * 1e3}


async def phase_stall(port: int) -> dict[str, float]:
    r = await loadclient.bounded(loadclient.sync_stall(port), 120, "stall")
    return {
        "stall_slow_others": r.slow_others,
        "stall_others": r.others,
        "stall_worst_ms": r.worst_ms,
        "stall_median_ms": r.median_ms,
        "stall_sleeper_ms": r.sleeper_ms,
    }


def run_round(
    kinds: list[ServerKind], args: argparse.Namespace, log_dir: Path
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {kind.name: {} for kind in kinds}
    if not args.skip_clicks:
        with ExitStack() as stack:
            servers = {
                kind.name: stack.enter_context(serving(kind, kind.counter, log_dir))
                for kind in kinds
            }
            clicks = _run(
                phase_clicks(
                    servers, args.sizes, args.chunks, args.chunk_seconds, args.client_processes
                )
            )
        for name, figures in clicks.items():
            results[name].update(figures)
    for kind in kinds:
        r = results[kind.name]
        if not args.skip_idle and kind.name != "ours-w2":
            with serving(kind, kind.counter, log_dir) as (server, port):
                r.update(_run(phase_idle(server, port, args.idle_sessions)))
        if not args.skip_echo and kind.echo is not None:
            with serving(kind, kind.echo, log_dir) as (server, port):
                r.update(_run(phase_echo(server, port)))
        if not args.skip_stall and kind.blocking is not None:
            with serving(kind, kind.blocking, log_dir) as (server, port):
                r.update(_run(phase_stall(port)))
        print(f"  {kind.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in r.items()), flush=True)
    return results


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# ---- reporting ------------------------------------------------------------------

ROWS: list[tuple[str, str, str, str]] = [
    # key, label, format, better ("hi", "lo" or "" for no ratio)
    ("register_50_s", "register 50 sessions (s)", "{:.3f}", "lo"),
    ("register_200_s", "register 200 sessions (s)", "{:.3f}", "lo"),
    ("register_cpu_ms_200", "server CPU ms/register, N=200", "{:.2f}", "lo"),
    ("busiest_worker_share_200", "busiest worker's share of 200", "{:.0%}", ""),
    ("clicks_per_s_50", "clicks/s, N=50", "{:.0f}", "hi"),
    ("clicks_per_s_200", "clicks/s, N=200", "{:.0f}", "hi"),
    ("clicks_per_s_best_50", "clicks/s, N=50, best chunk", "{:.0f}", "hi"),
    ("clicks_per_s_best_200", "clicks/s, N=200, best chunk", "{:.0f}", "hi"),
    ("cpu_ms_per_click_50", "server CPU ms/click, N=50", "{:.3f}", "lo"),
    ("cpu_ms_per_click_200", "server CPU ms/click, N=200", "{:.3f}", "lo"),
    ("transport_overhead_50", "transport over floor, N=50", "{:+.0%}", ""),
    ("echo_cpu_ms", "bare WebSocket echo, server CPU ms", "{:.3f}", "lo"),
    ("stall_slow_others", "stall: others >500 ms (of 20)", "{:.0f}", ""),
    ("stall_worst_ms", "stall: worst other click (ms)", "{:.0f}", "lo"),
    ("stall_sleeper_ms", "stall: sleeper's click (ms)", "{:.0f}", ""),
    ("idle_kib_per_session", "idle memory KiB/session", "{:.1f}", "lo"),
    ("sessions_held", "sessions held", "{:.0f}", ""),
    ("client_busiest_50", "client: busiest process, % of a core (N=50)", "{:.0%}", ""),
    ("client_busiest_200", "client: busiest process, % of a core (N=200)", "{:.0%}", ""),
    ("client_cpu_ms_per_click_50", "client CPU ms/click, N=50", "{:.3f}", ""),
    ("foreign_load_50", "other load on the box, % (N=50)", "{:.0f}", ""),
    ("foreign_load_200", "other load on the box, % (N=200)", "{:.0f}", ""),
]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    rounds: list[dict[str, dict[str, float]]], floors: list[float], kinds: list[ServerKind]
) -> dict[str, Any]:
    floor = median(floors)
    for rnd, f in zip(rounds, floors or [None] * len(rounds), strict=False):
        for r in rnd.values():
            if f and "cpu_ms_per_click_50" in r:
                r["transport_overhead_50"] = r["cpu_ms_per_click_50"] / f - 1
    med: dict[str, dict[str, float | None]] = {}
    ratio: dict[str, dict[str, float | None]] = {}
    spread: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in kinds:
        med[kind.name], ratio[kind.name], spread[kind.name] = {}, {}, {}
        for key, *_ in ROWS:
            values = [rnd[kind.name][key] for rnd in rounds if key in rnd.get(kind.name, {})]
            med[kind.name][key] = median(values)
            if values:
                spread[kind.name][key] = (min(values), max(values))
            # median of per-round ratios: both sides measured minutes apart at most
            ratios = [
                rnd[kind.name][key] / rnd["official"][key]
                for rnd in rounds
                if key in rnd.get(kind.name, {}) and rnd.get("official", {}).get(key)
            ]
            ratio[kind.name][key] = median(ratios)
        # --workers 2 is compared with the official single worker
    return {"median": med, "ratio": ratio, "spread": spread, "floor_cpu_ms_per_click": floor}


def table(summary: dict[str, Any], kinds: list[ServerKind], runs: int) -> str:
    med, ratio = summary["median"], summary["ratio"]
    ours = [k for k in kinds if k.name != "official"]
    head = ["metric", *(k.name for k in kinds), *(f"{k.name}/off" for k in ours)]
    lines = [head]
    for key, label, fmt, better in ROWS:
        row = [label]
        if all(med[k.name].get(key) is None for k in kinds):
            continue
        for k in kinds:
            v = med[k.name].get(key)
            row.append("-" if v is None else fmt.format(v))
        for k in ours:
            rv = ratio[k.name].get(key)
            if client_bound(med, k.name, key):
                row.append("client-bound")
            else:
                row.append("-" if rv is None or not better else f"{rv:.2f}x")
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    spread = summary["spread"]
    for key in ("clicks_per_s_50", "clicks_per_s_200", "cpu_ms_per_click_50"):
        ranges = [
            f"{k.name} {lo:.4g}-{hi:.4g}"
            for k in kinds
            if key in spread[k.name]
            for lo, hi in [spread[k.name][key]]
        ]
        if ranges and runs > 1:
            out.append(f"range over rounds, {key}: " + ", ".join(ranges))
    floor = summary["floor_cpu_ms_per_click"]
    if floor is not None:
        out.append(f"\nin-process floor (flet's own work): {floor:.3f} ms CPU per click")
    out.append(f"medians of {runs} round(s); ratios are medians of per-round ratios ours/official")
    return "\n".join(out)


def client_bound(med: dict[str, dict[str, float | None]], name: str, key: str) -> bool:
    """A clicks figure of ``name`` or of the official whose busiest client
    process was near a whole core: the ratio would measure the client."""
    if not key.startswith("clicks_per_s_"):
        return False
    n = key.rsplit("_", 1)[1]
    shares = [med.get(side, {}).get(f"client_busiest_{n}") for side in (name, "official")]
    return any(share is not None and share >= SATURATED for share in shares)


def targets(summary: dict[str, Any]) -> list[str]:
    med, ratio = summary["median"], summary["ratio"]
    lines = []

    def check(what: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        if value is None:
            return
        lines.append(f"{'MET ' if ok(value) else 'MISS'} {what}: {fmt.format(value)}")

    fmt_ratio = "{:.3f}x"

    for n in (50, 200):
        for name, goal in (("ours-uvloop", 2.5), ("ours-w2", 3.5)):
            key = f"clicks_per_s_{n}"
            if client_bound(med, name, key):
                lines.append(f"CLIENT-BOUND {name} clicks/s at N={n}: no ratio")
                continue
            check(
                f"{name} clicks/s >= {goal}x official (one uvicorn process) at N={n}",
                ratio.get(name, {}).get(key),
                lambda v, goal=goal: v >= goal,
                fmt_ratio,
            )
    check(
        "idle memory per session <= official",
        ratio.get("ours-uvloop", {}).get("idle_kib_per_session"),
        lambda v: v <= 1.0,
        fmt_ratio,
    )
    check(
        "transport adds <= 20% CPU per click over the floor (uvloop, N=50)",
        med.get("ours-uvloop", {}).get("transport_overhead_50"),
        lambda v: v <= 0.20,
        "{:+.0%}",
    )
    check(
        "0 of 20 other sessions over 500 ms during a 1 s sync handler (uvloop)",
        med.get("ours-uvloop", {}).get("stall_slow_others"),
        lambda v: v == 0,
        "{:.0f}",
    )
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = f"Python {platform.python_version()}, " + ", ".join(
        f"{name} {_dist(name)}"
        for name in ("flet", "quart", "hypercorn", "wsproto", "uvicorn", "websockets", "uvloop")
    )
    return (
        f"{psutil.cpu_count()} cores ({cpu}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} "
        f"{platform.release()}; {versions}"
    )


def _dist(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description="quart-flet vs the official flet_web.fastapi, one run, ratios"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round, smaller loads")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--sizes", default="50,200", help="session counts for the click phase")
    parser.add_argument("--chunks", type=int, default=4, help="click chunks per server and N")
    parser.add_argument("--chunk-seconds", type=float, default=1.5)
    parser.add_argument("--idle-sessions", type=int, default=1000)
    parser.add_argument(
        "--client-processes",
        type=int,
        default=default_processes(),
        help="load-client processes the click phase spreads its sessions over",
    )
    parser.add_argument("--skip-clicks", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-stall", action="store_true")
    parser.add_argument("--skip-echo", action="store_true")
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="then the scale part (issue 16): 10,000 idle sessions, fan-out to 1,000, "
        "first load at 10 Mbit/s; about 25 minutes more",
    )
    parser.add_argument("--scale-only", action="store_true", help="the scale part alone")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.chunks, args.chunk_seconds, args.idle_sessions = 1, 2, 1.0, 300
    args.sizes = [int(n) for n in args.sizes.split(",")]
    names = args.servers.split(",")
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {list(SERVERS)}")
    if "official" not in names:
        names.insert(0, "official")  # ratios need it
    kinds = [SERVERS[n] for n in names]

    log_dir = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every `serving` block stops its server
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)

    print(machine())
    print(f"load average at start: {os.getloadavg()}; logs in {log_dir}", flush=True)
    if args.scale_only:
        run_scale(args, log_dir)
        return
    rounds: list[dict[str, dict[str, float]]] = []
    floors: list[float] = []
    ours_floors: list[float] = []  # the same clicks through quart_flet.runtime.dispatch
    started = time.perf_counter()
    for i in range(args.rounds):
        shift = i % len(kinds)
        order = kinds[shift:] + kinds[:shift]
        print(f"round {i + 1}/{args.rounds}: {', '.join(k.name for k in order)}", flush=True)
        rounds.append(run_round(order, args, log_dir))
        if not args.skip_floor:
            floor = run_floor(50, 4000)
            floors.append(floor["cpu_ms_per_click"])
            ours = run_floor(50, 4000, dispatcher="quart_flet")
            ours_floors.append(ours["cpu_ms_per_click"])
            print(
                f"  floor: {floor['cpu_ms_per_click']:.3f} ms CPU/click (flet's dispatch), "
                f"{ours['cpu_ms_per_click']:.3f} (quart_flet's dispatch)",
                flush=True,
            )
    summary = summarize(rounds, floors, kinds)
    print(f"\nload average at end: {os.getloadavg()}; {time.perf_counter() - started:.0f} s\n")
    print(table(summary, kinds, args.rounds))
    if ours_floors:
        print(
            f"in-process, quart_flet's dispatch (cached event types): "
            f"{median(ours_floors):.3f} ms CPU per click"
        )
    print()
    print("\n".join(targets(summary)))
    payload = {
        "machine": machine(),
        "rounds": rounds,
        "floors": floors,
        "ours_floors": ours_floors,
        "summary": summary,
    }
    (log_dir / "results.json").write_text(json.dumps(payload, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    if args.scale:
        run_scale(args, log_dir)


def run_scale(args: argparse.Namespace, log_dir: Path) -> None:
    """The scale part: each its own side-by-side run against the official,
    printed as it finishes and kept in ``scale.md`` beside the logs."""
    from bench.first_load import run_first_load
    from bench.idle_scale import run_idle_scale
    from bench.pubsub_fanout import run_fanout

    rounds = 1 if args.quick else 3
    parts = [
        (
            "10,000 idle sessions",
            lambda: run_idle_scale(2000 if args.quick else 10000, rounds, log_dir),
        ),
        (
            "fan-out to 1,000 sessions",
            lambda: run_fanout(1000, 3 if args.quick else 10, log_dir, quick=args.quick),
        ),
        ("first load at 10 Mbit/s", lambda: run_first_load(rounds, log_dir)),
    ]
    report = []
    for title, part in parts:
        print(f"\n## {title}\n", flush=True)
        started = time.perf_counter()
        text = part()
        print(text, f"\n({time.perf_counter() - started:.0f} s)", flush=True)
        report.append(f"## {title}\n\n{text}\n")
    (log_dir / "scale.md").write_text("\n".join(report))


if __name__ == "__main__":
    main()
