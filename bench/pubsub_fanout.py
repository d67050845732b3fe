"""Pubsub fan-out latency: one ``send_all`` reaching 1,000 Flet sessions.

Two set-ups, one run, the same app (tests/apps/chat.py) and the same load:
- memory: one Hypercorn process, all sessions on it, pubsub in memory;
- redis:  two Hypercorn processes sharing a redis-server started here, half
  the sessions on each; the sender lives on the first.

Sessions are protocol-level WebSocket clients in this one asyncio process.
Latency is from sending the click that calls ``page.pubsub.send_all`` to each
session receiving the patch that shows the message. The chat's global handler
is sync, so this includes a hop through the app's thread pool; ``--topic``
measures ``send_all_on_topic`` to the chat's async "room" handler instead.

Run: python bench/pubsub_fanout.py [--sessions 1000] [--rounds 10] [--topic]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.apps.chat:app"
REGISTER, PATCH, EVENT, PROPS = 1, 2, 3, 4


def encode(action: int, body: Any) -> bytes:
    return b"\x00" + msgpack.packb([action, body])


def decode(frame: bytes) -> Any:
    return msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=lambda code, data: None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


def start_redis(stack: ExitStack, log_dir: Path) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--logfile", str(log_dir / "redis.log")]
    proc = subprocess.Popen(command)
    stack.callback(lambda: (proc.kill(), proc.wait()))

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(7) == b"+PONG\r\n"
        except OSError:
            return False

    wait_until(answers, "redis-server")
    return f"redis://127.0.0.1:{port}/0"


def start_server(stack: ExitStack, log_dir: Path, env: dict[str, str]) -> str:
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", APP, "--bind", f"127.0.0.1:{port}"]
    try:
        import uvloop  # noqa: F401

        command += ["--worker-class", "uvloop"]
    except ImportError:
        pass
    log = open(log_dir / f"hypercorn-{port}.log", "wb")
    proc = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    stack.callback(stop)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            return True
        except OSError:
            return proc.poll() is not None  # let wait_until end; checked below

    wait_until(answers, "hypercorn")
    if proc.poll() is not None:
        raise RuntimeError((log_dir / f"hypercorn-{port}.log").read_text())
    return url.replace("http", "ws") + "/ws"


class Session:
    """One chat session; records when each round's line arrives."""

    def __init__(self, ws: ClientConnection, ids: dict[str, int]) -> None:
        self.ws = ws
        self.ids = ids
        self.expected = b""
        self.arrived = asyncio.Event()
        self.at = 0.0

    @classmethod
    async def join(cls, url: str) -> Session:
        ws = await connect(url, max_size=None, ping_interval=None)
        page = {"route": "/", "width": 800, "height": 600, "platform": "linux", "web": True}
        await ws.send(encode(REGISTER, {"session_id": None, "page_name": "", "page": page}))
        ids: dict[str, int] = {}
        while "all" not in ids:
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            if b"TextField" in frame:
                _collect_ids(decode(frame), ids)
        return cls(ws, ids)

    async def read_forever(self) -> None:
        async for frame in self.ws:
            if self.expected and isinstance(frame, bytes) and self.expected in frame:
                self.at = time.perf_counter()
                self.expected = b""
                self.arrived.set()

    async def send(self, button: str, text: str) -> None:
        props = {"id": self.ids["text"], "props": {"value": text}}
        await self.ws.send(encode(PROPS, props))
        await self.ws.send(
            encode(EVENT, {"target": self.ids[button], "name": "click", "data": None})
        )


def _collect_ids(node: Any, ids: dict[str, int]) -> None:
    if isinstance(node, dict):
        if node.get("_c") == "TextField":
            ids["text"] = node["_i"]
        elif node.get("_c") == "Button":
            ids[node["content"]] = node["_i"]
        for value in node.values():
            _collect_ids(value, ids)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _collect_ids(value, ids)


async def measure(urls: list[str], sessions: int, rounds: int, button: str) -> list[float]:
    """Latencies in ms of ``rounds`` send_all's to ``sessions`` sessions
    spread evenly over ``urls``; the sender is the first session."""
    joining = asyncio.Semaphore(50)

    async def join(n: int) -> Session:
        async with joining:
            return await Session.join(urls[n % len(urls)])

    clients = await asyncio.gather(*(join(n) for n in range(sessions)))
    readers = [asyncio.create_task(c.read_forever()) for c in clients]
    latencies: list[float] = []
    try:
        for round_no in range(rounds + 1):  # round 0 warms up
            text = f"r{round_no}-{time.time_ns()}"
            line = f"{button}:{text}"
            for client in clients:
                client.expected = line.encode()
                client.arrived.clear()
            started = time.perf_counter()
            await clients[0].send(button, text)
            await asyncio.wait_for(asyncio.gather(*(c.arrived.wait() for c in clients)), 60)
            if round_no:
                latencies += [(c.at - started) * 1000 for c in clients]
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
    return latencies


def summary(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{name:<32} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   max {ordered[-1]:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--topic", action="store_true", help="the async topic handler")
    args = parser.parse_args()
    button = "room" if args.topic else "all"
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="pubsub_fanout_") as tmp, ExitStack() as stack:
        log_dir = Path(tmp)
        memory_url = start_server(stack, log_dir, {"FLET_REDIS_URL": ""})
        results["memory, 1 process"] = asyncio.run(
            measure([memory_url], args.sessions, args.rounds, button)
        )
        stack.close()
        redis_url = start_redis(stack, log_dir)
        env = {"FLET_REDIS_URL": redis_url, "FLET_SECRET_KEY": "bench-key"}
        urls = [start_server(stack, log_dir, env) for _ in range(2)]
        results["redis, 2 processes"] = asyncio.run(
            measure(urls, args.sessions, args.rounds, button)
        )
    kind = "send_all_on_topic, async handler" if args.topic else "send_all, sync handler"
    print(f"pubsub fan-out: {kind}, {args.sessions} sessions, {args.rounds} rounds")
    for name, latencies in results.items():
        print(summary(name, latencies))
    memory_p50 = statistics.median(results["memory, 1 process"])
    redis_p50 = statistics.median(results["redis, 2 processes"])
    print(f"redis/memory p50 ratio: {redis_p50 / memory_p50:.2f}")


if __name__ == "__main__":
    main()
