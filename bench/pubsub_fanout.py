"""Pubsub fan-out latency: one ``page.pubsub.send_all`` reaching N Flet sessions,
the official integration and ours side by side in one run.

Patterns (``--patterns``): the chat's pubsub handler sync or async, showing
the message with ``control.update()``, ``page.update()`` or by appending a
control and ``page.update()`` (bench/apps/chat.py): ``sync-control``,
``sync-page``, ``sync-append``, ``async-control``, ``async-page``,
``async-append``; and ``sync-topic``/``async-topic``, ``control.update()``
in the sessions subscribed to a topic (one in four), the click sending on it.

Set-ups, all serving the same chat to the same load:
- official:   flet_web.fastapi on one uvicorn process (its hub is in memory;
  it has no multi-process pubsub);
- ours:       quart-flet on one Hypercorn process (uvloop worker);
- ours-redis: quart-flet on two Hypercorn processes sharing a redis-server
  started here (127.0.0.1, its own temp dir), half the sessions on each;
- ours-w2:    ``quart-flet run --workers 2`` on one port, no Redis: the
  kernel spreads the sessions over the two workers, and a send crosses to
  the other worker over the workers' relay sockets;
- ours-alt, ours-redis-alt, ours-w2-alt: as the set-up without ``-alt``,
  with quart_flet imported from the source tree ``$BENCH_ALT_SRC`` (a
  change's worktree's ``src``): a change against the installed package,
  round by round in one run.

The N receiving sessions are protocol-level WebSockets spread over several
client processes (bench.clientpool, bench/fanout_client.py); one more session,
in this process, types a text and clicks "all". Latency is from just before
that click is sent to each session receiving the patch that shows the text,
both stamped with ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every
process of the machine). For each set-up every server is up at once and the
rounds alternate between set-ups in a rotating order, so a busy spell of the
machine falls on all of them alike. Per round: p50, p99 and max over the
sessions; printed: their medians over the rounds, the busiest client
process's CPU share during the fan-out, and the median of per-round ratios
ours/official, and the server's CPU per delivery (its processes' CPU time
from the click until the last session has the message, over the sessions).
A figure whose client was saturated says so instead of a ratio.

Run: python -m bench.pubsub_fanout [--sessions 1000] [--rounds 10]
[--patterns sync-control,...] [--setups official,ours]

Servers run in their own process group and are stopped (SIGTERM, then
SIGKILL) whatever happens; every wait is bounded. Not a test: never in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import clientpool
from bench.loadclient import (
    CONTROL_EVENT,
    PATCH_CONTROL,
    REGISTER_CLIENT,
    REGISTER_FRAME,
    WebSocketClient,
    decode,
    encode,
    find_control,
)
from bench.servers import Server, free_port

PY = sys.executable
UPDATE_CONTROL_PROPS = 4
SETUPS = ("official", "ours", "ours-redis", "ours-w2")
ALT_SETUPS = tuple(f"{setup}-alt" for setup in SETUPS[1:])
HANDLERS = ("sync", "async")
UPDATES = ("control", "page", "append", "topic")
PATTERNS = tuple(f"{h}-{u}" for h in HANDLERS for u in UPDATES)
#: the issue's targets: p99 ours/official
TARGETS = {"ours": 0.6, "ours-redis": 0.4}
ROUND_TIMEOUT = 60.0  # seconds for one fan-out to reach every session


# ---- servers ------------------------------------------------------------------


def _uvicorn(app: str, port: int) -> list[str]:
    # the official way: uvicorn's defaults (uvloop, httptools, websockets)
    return [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def _hypercorn(app: str, port: int) -> list[str]:
    return [PY, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--backlog", "2048",
            "-k", "uvloop"]  # fmt: skip


def _start(stack: ExitStack, argv: list[str], log: Path, env: dict[str, str]) -> Server:
    server = Server(argv, log, env)
    stack.callback(server.stop)
    return server


def start_redis(stack: ExitStack, log_dir: Path) -> str:
    """A redis-server on a free loopback port, in its own directory under
    ``log_dir``, persisting nothing; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    data = log_dir / f"redis-{port}"
    data.mkdir()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", str(data), "--logfile", str(data / "redis.log")]  # fmt: skip
    server = _start(stack, argv, data / "stdout.log", {})

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(7) == b"+PONG\r\n"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while not answers():
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start; see {data}")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def start_setup(
    stack: ExitStack, setup: str, pattern: str, log_dir: Path
) -> list[tuple[Server, int]]:
    """The servers of ``setup`` serving the chat of ``pattern``, with their
    ports (the sender's first)."""
    attr = pattern.replace("-", "_") + "_app"
    base, alt = setup.removesuffix("-alt"), {}
    if setup in ALT_SETUPS:
        source = os.environ.get("BENCH_ALT_SRC")
        if not source or not (Path(source) / "quart_flet").is_dir():
            raise SystemExit(f"{setup} needs BENCH_ALT_SRC: a source tree holding quart_flet/")
        alt = {"PYTHONPATH": source}
    if base == "official":
        runs = [(_uvicorn(f"bench.apps.official_chat:{attr}", port := free_port()), port, {})]
    elif base == "ours":
        env = {"FLET_REDIS_URL": "", **alt}
        runs = [(_hypercorn(f"bench.apps.ours_chat:{attr}", port := free_port()), port, env)]
    elif base == "ours-redis":
        env = {"FLET_REDIS_URL": start_redis(stack, log_dir), "FLET_SECRET_KEY": "bench-key", **alt}
        runs = []
        for _ in range(2):
            port = free_port()
            runs.append((_hypercorn(f"bench.apps.ours_chat:{attr}", port), port, env))
    elif base == "ours-w2":
        env = {"FLET_REDIS_URL": "", **alt}
        argv = [PY, "-m", "quart_flet.cli", "run", f"bench.apps.ours_chat:{attr}",
                "--port", str(port := free_port()), "--workers", "2"]  # fmt: skip
        runs = [(argv, port, env)]
    else:
        raise ValueError(f"unknown set-up {setup!r}")
    servers = [
        (_start(stack, argv, log_dir / f"{setup}-{pattern}-{port}.log", env), port)
        for argv, port, env in runs
    ]
    for server, port in servers:
        server.wait_ready(port)
    return servers


# ---- the sender ---------------------------------------------------------------


@dataclass
class Sender:
    """The session that types a text and clicks "all"."""

    ws: WebSocketClient
    text_id: int
    button_id: int

    @classmethod
    async def open(cls, port: int, timeout: float = 30) -> Sender:
        ws = await WebSocketClient.connect(port, timeout=timeout)
        try:
            ws.send(REGISTER_FRAME)
            reply = decode(await ws.recv(timeout))
            assert reply[0] == REGISTER_CLIENT and not reply[1].get("error"), reply
            while True:
                message = decode(await ws.recv(timeout))
                if message[0] == PATCH_CONTROL:
                    break
            text = find_control(message[1], _c="TextField")
            button = find_control(message[1], _c="Button")
            assert text is not None and button is not None, message
            return cls(ws, int(text["_i"]), int(button["_i"]))
        except BaseException:
            ws.close()
            raise

    def send(self, text: str) -> float:
        """Type ``text`` and click; the monotonic time just before."""
        self.ws.messages.clear()  # its own copies of earlier messages
        props = encode(UPDATE_CONTROL_PROPS, {"id": self.text_id, "props": {"value": text}})
        click = encode(CONTROL_EVENT, {"target": self.button_id, "name": "click", "data": None})
        started = time.monotonic()
        self.ws.send(props)
        self.ws.send(click)
        return started


# ---- measuring -----------------------------------------------------------------


@dataclass
class Round:
    p50: float  # ms
    p99: float
    max: float
    client_share: float  # the busiest client process's CPU, share of one core
    server_cpu_ms: float  # the server's CPU per delivery (all its processes)


@dataclass
class Figures:
    rounds: list[Round] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(r, name) for r in self.rounds)

    @property
    def saturated(self) -> bool:
        return self.median("client_share") >= clientpool.SATURATED


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


async def one_round(
    pool: clientpool.ClientPool,
    setup: str,
    sender: Sender,
    text: str,
    servers: list[Server],
    topic: bool = False,
) -> Round:
    marker = f"all:{text}".encode()
    await pool.call("bench.fanout_client:pool_arm", setup, marker, topic)
    cpu = sum(server.cpu_seconds() for server in servers)
    started = sender.send(text)
    answers = await pool.call("bench.fanout_client:pool_collect", setup, ROUND_TIMEOUT, topic)
    cpu = sum(server.cpu_seconds() for server in servers) - cpu
    stamps = [at for result in answers.results for at in result[0]]
    if not stamps or min(stamps) <= 0:
        raise RuntimeError(f"{setup}: a session has no arrival stamp")
    latencies = sorted((at - started) * 1e3 for at in stamps)
    window = max(stamps) - started
    share = max(result[1] for result in answers.results) / window if window > 0 else 0.0
    return Round(
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies[-1],
        share,
        cpu * 1e3 / len(stamps),
    )


async def measure(
    pattern: str,
    setups: list[str],
    sessions: int,
    rounds: int,
    processes: int,
    log_dir: Path,
) -> dict[str, Figures]:
    """Every set-up up at once serving ``pattern``; ``rounds`` fan-outs on
    each, alternating between set-ups (plus one warm-up round each)."""
    figures = {setup: Figures() for setup in setups}
    with ExitStack() as stack:
        servers = {setup: start_setup(stack, setup, pattern, log_dir) for setup in setups}
        ports = {setup: [port for _, port in servers[setup]] for setup in setups}
        pool = stack.enter_context(clientpool.ClientPool(processes))
        senders: dict[str, Sender] = {}
        try:
            shares = clientpool.split(sessions, processes)
            for setup in setups:
                senders[setup] = await Sender.open(ports[setup][0])
                await pool.call(
                    "bench.fanout_client:pool_open", setup, ports[setup], per_process=shares
                )
            for number in range(rounds + 1):  # round 0 warms up
                shift = number % len(setups)
                for setup in setups[shift:] + setups[:shift]:
                    text = f"{pattern}-{number}-{time.time_ns()}"
                    procs = [server for server, _ in servers[setup]]
                    result = await one_round(
                        pool, setup, senders[setup], text, procs, pattern.endswith("-topic")
                    )
                    if number:
                        figures[setup].rounds.append(result)
                    await asyncio.sleep(0.2)  # let the server finish the round's tail
            for setup in setups:
                await pool.call("bench.fanout_client:pool_close", setup)
        finally:
            for sender in senders.values():
                sender.ws.close()
    return figures


# ---- reporting ----------------------------------------------------------------


def table(results: dict[str, dict[str, Figures]], sessions: int, processes: int) -> str:
    head = ["pattern", "set-up", "p50 ms", "p99 ms", "max ms", "CPU ms/delivery", "client CPU",
            "p99/official", "p50/official", "target"]  # fmt: skip
    lines = [head]
    for pattern, figures in results.items():
        official = figures.get("official")
        for setup, fig in figures.items():
            row = [pattern, setup]
            row += [f"{fig.median(name):.0f}" for name in ("p50", "p99", "max")]
            row.append(f"{fig.median('server_cpu_ms'):.2f}")
            busiest = max(r.client_share for r in fig.rounds)
            row.append(f"{fig.median('client_share'):.0%} (max {busiest:.0%})")
            if setup == "official":
                row += ["-", "-", "-"]
            elif fig.saturated or official is None or official.saturated:
                row += ["client saturated", "client saturated", "-"]
            else:
                ratios = {
                    name: statistics.median(
                        getattr(ours, name) / getattr(off, name)
                        for ours, off in zip(fig.rounds, official.rounds, strict=True)
                    )
                    for name in ("p99", "p50")
                }
                goal = TARGETS.get(setup)
                met = "" if goal is None else ("met" if ratios["p99"] <= goal else "MISSED")
                target = "-" if goal is None else f"<= {goal}x {met}"
                row += [f"{ratios['p99']:.2f}x", f"{ratios['p50']:.2f}x", target]
            lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
           for line in lines]  # fmt: skip
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    rounds = len(next(iter(next(iter(results.values())).values())).rounds)
    out.append(
        f"\n{sessions} receiving sessions over {processes} client processes, {rounds} rounds "
        "(+1 warm-up); medians over rounds; ratios are medians of per-round ratios "
        "ours/official; client CPU is the busiest client process's share of one core "
        f"during the fan-out (>= {clientpool.SATURATED:.0%}: saturated, no ratio)"
    )
    return "\n".join(out)


def run_fanout(
    sessions: int,
    rounds: int,
    log_dir: Path,
    quick: bool = False,
    patterns: tuple[str, ...] = PATTERNS,
    setups: tuple[str, ...] = SETUPS,
    processes: int | None = None,
) -> str:
    """The whole fan-out bench; a markdown table of its figures. ``quick``:
    at most 3 rounds."""
    if quick:
        rounds = min(rounds, 3)
    processes = processes or clientpool.default_processes()
    names = list(setups)
    if "official" not in names:
        names.insert(0, "official")  # ratios need it
    results: dict[str, dict[str, Figures]] = {}
    for pattern in patterns:
        results[pattern] = _run(measure(pattern, names, sessions, rounds, processes, log_dir))
        print(f"  {pattern} done", flush=True)
    return table(results, sessions, processes)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


@contextmanager
def _log_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="pubsub_fanout_") as tmp:
            yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--patterns", default=",".join(PATTERNS), help="comma-separated")
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated")
    parser.add_argument("--clients", type=int, default=None, help="client processes")
    parser.add_argument("--quick", action="store_true", help="at most 3 rounds")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the servers' logs here")
    args = parser.parse_args()
    setups = tuple(args.setups.split(","))
    unknown = [s for s in setups if s not in SETUPS + ALT_SETUPS]
    if unknown:
        parser.error(f"unknown set-ups {unknown}; choose from {list(SETUPS + ALT_SETUPS)}")
    patterns = tuple(args.patterns.split(","))
    if any(p not in PATTERNS for p in patterns):
        parser.error(f"unknown patterns; choose from {list(PATTERNS)}")
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every server is stopped
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    started = time.perf_counter()
    with _log_dir(args.log_dir) as log_dir:
        print(f"load average at start: {os.getloadavg()}", flush=True)
        out = run_fanout(
            args.sessions, args.rounds, log_dir, args.quick, patterns, setups, args.clients
        )
    print(f"\npubsub fan-out, {time.perf_counter() - started:.0f} s\n")
    print(out)


if __name__ == "__main__":
    main()
