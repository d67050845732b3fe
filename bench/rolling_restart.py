"""Issue 25: a restart under load. Sessions click a counter (5 clicks/s each)
while its server is replaced by a new one on the same port: the old one
gets SIGTERM, drains (``drain_seconds``, its sessions keep clicking), saves
each session's count (``on_session_save``, or not) and closes the sockets
with 1012; the new one starts as soon as the old one stops listening. Each
session reconnects as the Flet client does (its old session id, again and
again until a server takes it).

Printed, with the save hook and without: clicks sent and clicks that never
got their answer, sessions whose count came back, and the seconds from the
SIGTERM until every session was back and had its next click answered.

Run: python -m bench.rolling_restart [--sessions 200] [--drain 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
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
from bench.servers import Server, free_port
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


async def run_one(sessions: int, save: bool, drain: float) -> dict[str, Any]:
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
        deadline = time.monotonic() + 60
        while any(c.back_at is None for c in clickers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # bounded polling of the clickers' state
        back = [c.back_at for c in clickers if c.back_at is not None]
        client = me.cpu_times()
        wall = time.monotonic() - sigterm
        for c in clickers:
            c.stop = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for tab in tabs:
            tab.close()
        old_log = (log_dir / "old.log").read_text()
        return {
            "save": save,
            "sessions": sessions,
            "sent": sum(c.sent for c in clickers),
            "failed": sum(c.failed for c in clickers),
            "kept": sum(bool(c.kept) for c in clickers),
            "back": len(back),
            "all_back_s": (max(back) - sigterm) if back else float("nan"),
            "client_share": (
                client.user + client.system - client_before.user - client_before.system
            )
            / wall,
            "saved": next((line for line in old_log.splitlines() if "saved the state" in line), ""),
            "tracebacks": old_log.count("Traceback")
            + (log_dir / "new.log").read_text().count("Traceback"),
        }
    finally:
        old.stop()
        if new is not None:
            new.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--drain", type=float, default=2.0, help="drain_seconds")
    args = parser.parse_args()
    rows = [asyncio.run(run_one(args.sessions, save, args.drain)) for save in (True, False)]
    print(
        "| save hook | sessions | clicks sent | clicks unanswered | counts kept | back "
        "| all back after SIGTERM | client CPU | tracebacks |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {'on' if r['save'] else 'off'} | {r['sessions']} | {r['sent']} | {r['failed']} "
            f"| {r['kept']}/{r['sessions']} | {r['back']}/{r['sessions']} "
            f"| {r['all_back_s']:.2f} s | {r['client_share']:.0%} | {r['tracebacks']} |"
        )


if __name__ == "__main__":
    main()
