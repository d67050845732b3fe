"""Issue 25: a restart under load. Sessions click a counter (5 clicks/s each)
while its server is replaced by a new one. The old one gets SIGTERM, drains
(``drain_seconds``, its sessions keep clicking), saves each session's count
(``on_session_save``, or not) and closes the sockets with 1012. Each
session reconnects as the Flet client does (its old session id, again and
again until a server takes it). Two ways to replace it:

- ``same-port``: the new server starts as soon as the old one stops
  listening, on its port (a restart in place, a systemd unit say);
- ``nginx``: behind docs/how-to/scale-out.md's nginx recipe, as Kubernetes
  rolls a Deployment: the new server starts and is ready, nginx is reloaded
  with both, then the old one gets SIGTERM. Meanwhile new users arrive
  (the index, and a new Flet session, 20 a second in all), whose failures
  are counted.

Printed, with the save hook and without: clicks sent and clicks that never
got their answer, sessions whose count came back, the seconds from the
SIGTERM until every session was back and had its next click answered, and
the client's CPU share (it is not the limit).

Run: python -m bench.rolling_restart [--sessions 200] [--drain 2] [--behind nginx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.loadclient import (
    PATCH_CONTROL,
    REGISTER_CLIENT,
    WebSocketClient,
    click_frame,
    decode,
    find_control,
)
from bench.servers import Nginx, Server, free_port
from bench.worker_relay import LOG_CONFIG, Tab, in_batches, register_frame

_PATCH = b"\x00\x92\x02"
RETRY_SECONDS = 0.1  # between two reconnects that found no server
PACE_SECONDS = 0.2  # between a click's answer and the next click: 5 clicks/s each


class Clicker:
    """One browser that clicks as fast as its answers come, and reconnects."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.sent = self.failed = 0
        self.back_at: float | None = None  # reconnected and a click answered
        self.kept: bool | None = None  # its count came back after the restart
        self.stop = False

    async def run(self, restarted: asyncio.Event) -> None:
        while not self.stop:
            if self.tab.ws is None or self.tab.ws.closed:  # as the client knows it
                await self._reconnect()
                continue
            try:
                await self._click()
                await asyncio.sleep(PACE_SECONDS)
                if restarted.is_set() and self.back_at is None and self.kept is not None:
                    self.back_at = time.monotonic()
            except (ConnectionError, EOFError):
                self.failed += 1
                await self._reconnect()

    async def _click(self) -> None:
        ws = self.tab.ws
        assert ws is not None
        self.sent += 1
        ws.send(self.tab.fab)
        while True:
            frame = await ws.recv()
            if frame.startswith(_PATCH):
                self.tab.count += 1
                return

    async def _reconnect(self) -> None:
        self.tab.close()
        while not self.stop:
            try:
                self.kept = await self._open()
                return
            except (TimeoutError, OSError, ConnectionError, EOFError, AssertionError):
                self.tab.close()
                await asyncio.sleep(RETRY_SECONDS)

    async def _open(self) -> bool:
        """Register with the old session id; whether the count came back."""
        tab = self.tab
        tab.ws = await WebSocketClient.connect(tab.port, cookies=tab.cookies, timeout=5)
        tab.ws.send(register_frame(tab.session_id))
        reply = decode(await asyncio.wait_for(tab.ws.recv(), 5))
        assert reply[0] == REGISTER_CLIENT and not reply[1].get("error"), reply
        tab.session_id = reply[1]["session_id"]
        page = reply[1].get("page_patch")
        text = find_control(page, key="counter")
        while text is None:  # a new session: main sends the page
            message = decode(await asyncio.wait_for(tab.ws.recv(), 5))
            if message[0] == PATCH_CONTROL:
                text = find_control(message[1], key="counter")
                page = message[1]
        fab = find_control(page, _c="FloatingActionButton")
        assert fab is not None
        tab.fab = click_frame(fab["_i"])
        kept = text.get("value") == str(tab.count)
        tab.count = int(text.get("value") or 0)
        return kept


def _server(port: int, log_dir: Path, name: str, save: bool, drain: float) -> Server:
    log_config = log_dir / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    graceful = str(int(drain) + 3)
    argv = [sys.executable, "-m", "hypercorn", "bench.apps.saved_counter:app", "-k", "uvloop",
            "--workers", "0", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", graceful,
            "--backlog", "2048", "--log-config", f"json:{log_config}"]  # fmt: skip
    env = {"BENCH_SAVE": "1" if save else "0", "FLET_DRAIN_SECONDS": str(drain),
           "TMPDIR": str(log_dir)}  # fmt: skip
    return Server(argv, log_dir / f"{name}.log", env=env)


class NewUsers:
    """New browsers all along: the index, and every other time a new Flet
    session (registered, its page received, then closed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.done = self.failed = 0
        self.errors: list[str] = []
        self.stop = False

    async def run(self) -> None:
        turn = 0
        while not self.stop:
            turn += 1
            try:
                if turn % 2:
                    await asyncio.to_thread(_get_index, self.port)
                else:
                    tab = Tab(self.port, cookies=_sticky())
                    try:
                        await asyncio.wait_for(tab.open(), 10)
                    finally:
                        tab.close()
                self.done += 1
            except Exception as error:  # counted: what a new user would have seen fail
                self.failed += 1
                self.errors.append(f"{type(error).__name__}: {error}")
            await asyncio.sleep(0.05)


def _get_index(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
        answer.read()


def _sticky() -> str:
    """What the index would have set for the nginx recipe's hash."""
    return f"flet_client={secrets.token_urlsafe(12)}"


async def run_one(sessions: int, save: bool, drain: float, behind: str) -> dict[str, Any]:
    if behind == "nginx":
        return await run_nginx(sessions, save, drain)
    return await run_same_port(sessions, save, drain)


async def run_nginx(sessions: int, save: bool, drain: float) -> dict[str, Any]:
    old_port, new_port = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-rolling-"))
    old = _server(old_port, log_dir, "old", save, drain)
    new: Server | None = None
    proxy: Nginx | None = None
    me = psutil.Process()
    try:
        old.wait_ready(old_port)
        proxy = Nginx(log_dir, [old_port])
        tabs = [Tab(proxy.port, cookies=_sticky()) for _ in range(sessions)]
        await in_batches([tab.open() for tab in tabs])
        clickers = [Clicker(tab) for tab in tabs]
        restarted = asyncio.Event()
        tasks = [asyncio.create_task(c.run(restarted)) for c in clickers]
        users = NewUsers(proxy.port)
        tasks.append(asyncio.create_task(users.run()))
        await asyncio.sleep(2)  # clicking at full speed
        new = _server(new_port, log_dir, "new", save, drain)
        await asyncio.to_thread(new.wait_ready, new_port)
        await asyncio.to_thread(proxy.route_to, [old_port, new_port])
        client_before = me.cpu_times()
        sigterm = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        restarted.set()
        result = await _until_back(clickers, sigterm, client_before, me)
        users.stop = True
        await _stop(clickers, tasks, tabs)
        result.update(
            behind="nginx",
            save=save,
            sessions=sessions,
            new_users=users.done,
            new_users_failed=users.failed,
            new_user_errors=sorted(set(users.errors))[:3],
            tracebacks=_tracebacks(log_dir),
        )
        return result
    finally:
        if proxy is not None:
            proxy.stop()
        old.stop()
        if new is not None:
            new.stop()


async def _until_back(
    clickers: list[Clicker], sigterm: float, client_before: Any, me: psutil.Process
) -> dict[str, Any]:
    """Waits (bounded) until every clicker is back; what it cost."""
    deadline = time.monotonic() + 60
    while any(c.back_at is None for c in clickers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # bounded polling of the clickers' state
    back = [c.back_at for c in clickers if c.back_at is not None]
    client = me.cpu_times()
    wall = time.monotonic() - sigterm
    return {
        "sent": sum(c.sent for c in clickers),
        "failed": sum(c.failed for c in clickers),
        "kept": sum(bool(c.kept) for c in clickers),
        "back": len(back),
        "all_back_s": (max(back) - sigterm) if back else float("nan"),
        "client_share": (client.user + client.system - client_before.user - client_before.system)
        / wall,
    }


async def _stop(clickers: list[Clicker], tasks: list[asyncio.Task[Any]], tabs: list[Tab]) -> None:
    """Stop the clickers and the other load tasks, and close the tabs."""
    for c in clickers:
        c.stop = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for tab in tabs:
        tab.close()


def _tracebacks(log_dir: Path) -> int:
    return sum(path.read_text().count("Traceback") for path in log_dir.glob("*.log"))


async def run_same_port(sessions: int, save: bool, drain: float) -> dict[str, Any]:
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-rolling-"))
    old = _server(port, log_dir, "old", save, drain)
    new: Server | None = None
    me = psutil.Process()
    try:
        old.wait_ready(port)
        tabs = [Tab(port) for _ in range(sessions)]
        await in_batches([tab.open() for tab in tabs])
        clickers = [Clicker(tab) for tab in tabs]
        restarted = asyncio.Event()
        tasks = [asyncio.create_task(c.run(restarted)) for c in clickers]
        await asyncio.sleep(2)  # clicking at full speed
        client_before = me.cpu_times()
        sigterm = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        restarted.set()
        # the new server binds as soon as the old one stopped listening
        while new is None or new.proc.poll() is not None:
            new = _server(port, log_dir, "new", save, drain)
            try:
                new.wait_ready(port, timeout=30)
            except RuntimeError:
                new.stop()
                new = None
                await asyncio.sleep(0.05)
        result = await _until_back(clickers, sigterm, client_before, me)
        await _stop(clickers, tasks, tabs)
        result.update(behind="same-port", save=save, sessions=sessions)
        result.update(new_users=0, new_users_failed=0, tracebacks=_tracebacks(log_dir))
        return result
    finally:
        old.stop()
        if new is not None:
            new.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--drain", type=float, default=2.0, help="drain_seconds")
    parser.add_argument("--behind", choices=["same-port", "nginx"], default="same-port")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each (hook on, off)")
    args = parser.parse_args()
    rows = [
        asyncio.run(run_one(args.sessions, save, args.drain, args.behind))
        for _ in range(args.rounds)
        for save in (True, False)
    ]
    print(
        "| replaced | save hook | sessions | clicks sent | clicks unanswered | counts kept "
        "| back | all back after SIGTERM | new users (failed) | client CPU | tracebacks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['behind']} | {'on' if r['save'] else 'off'} | {r['sessions']} | {r['sent']} "
            f"| {r['failed']} | {r['kept']}/{r['sessions']} | {r['back']}/{r['sessions']} "
            f"| {r['all_back_s']:.2f} s | {r['new_users']} ({r['new_users_failed']}) "
            f"| {r['client_share']:.0%} | {r['tracebacks']} |"
        )
    for r in rows:
        for error in r.get("new_user_errors", []):
            print("new user failed:", error)


if __name__ == "__main__":
    main()
