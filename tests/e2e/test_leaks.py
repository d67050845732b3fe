"""Issue 21, deterministic leak checks: after N sessions come and go on a real
Hypercorn server, what they used is given back.

A warm-up cycle first (lazy imports, the pool's first threads), then a
baseline; then SESSIONS sessions, ten at a time: each registers, clicks (a
sync handler, on the pool), sends a pubsub message to everyone (and on a
topic), and leaves: most with a close frame, some resume with their session
id on a new socket first, some vanish without a close frame (the socket
closed, half of them with RST). Their sessions are held for
LEAKS_SESSION_TIMEOUT (1 s) and then end. The test waits for that through
the health route (no held or live session, no connection left, bounded
polling), then polls the server's own figures until they are back at the
baseline or the deadline passes, and compares:

- open fds and OS threads of the serving process, read from /proc;
- asyncio tasks of its loop and flet Session objects alive after a full
  collection (tests/apps/leaks.py's /leak-stats);
- the registry's sessions, connections and background tasks.

No tolerance but one: thread pools (the Flet pool, and the loop's default
executor that serves Quart's file bodies) start threads on demand and keep
them idle, so their threads may outnumber the baseline's up to the pools'
sizes; every other OS thread must be back. Everything else must equal the
baseline exactly: the test polls until teardown has ended instead of allowing
slack, so one task, fd or Session kept by any of the 50 sessions fails it
(checked by planting each in the app once).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PATCH_CONTROL,
    REGISTER_CLIENT,
    FletTestClient,
    WebsocketsSocket,
    encode,
    find_controls,
)
from websockets.asyncio.client import ClientConnection, connect

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

SESSIONS = 50
BATCH = 10
DEADLINE = 30.0  # seconds for everything to be given back after the last session left


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def process_figures(pid: int) -> dict[str, int]:
    """Open fds and OS threads of ``pid``, read from /proc."""
    threads = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def figures(url: str) -> dict[str, Any]:
    stats = get_json(url + "/leak-stats")
    return {**stats, **process_figures(stats["pid"])}


def wait_until_idle(url: str) -> None:
    """Bounded polling on the health route until no session and no connection is left."""
    deadline = time.monotonic() + DEADLINE
    while True:
        body = get_json(url + "/healthz")
        if body["sessions"] == {"live": 0, "held": 0} and body["connections"] == 0:
            return
        assert time.monotonic() < deadline, f"sessions never ended: {body}"
        time.sleep(0.05)


def excess(now: dict[str, Any], base: dict[str, Any]) -> dict[str, int]:
    """What ``now`` holds beyond ``base`` and the tolerances; empty when nothing."""
    over = {
        "fds": now["fds"] - base["fds"],
        "tasks": now["tasks"] - base["tasks"],
        "sessions": now["sessions"] - base["sessions"],
        # threads other than the pools' are back exactly; the pools stay within their sizes
        "other_threads": (now["threads"] - now["pool_threads"])
        - (base["threads"] - base["pool_threads"]),
        "pool_threads": now["pool_threads"] - now["max_threads"],
    }
    over.update({f"registry_{k}": v for k, v in now["registry"].items()})
    return {k: v for k, v in over.items() if v > 0}


def browser_cookies(url: str) -> dict[str, str]:
    """What a browser loading the index would send on its WebSocket: the
    cookies the index sets, if any (a resume may be bound to them)."""
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        cookies = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []]
    return {"Cookie": "; ".join(cookies)} if cookies else {}


async def visit(ws_url: str, number: int) -> None:
    """One session: register, click, send to everyone, then leave its way."""
    how = ("close", "close", "resume", "drop_fin", "drop_rst")[number % 5]
    headers = await asyncio.to_thread(
        browser_cookies, ws_url.replace("ws", "http", 1)[: -len("/ws")]
    )
    async with connect(ws_url, max_size=None, additional_headers=headers) as ws:
        client = FletTestClient(WebsocketsSocket(ws))
        await client.register()
        render = await client.receive_until(
            lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], key="add")
        )
        (add,) = find_controls(render, key="add")
        (send,) = find_controls(render, key="send")
        await client.click(add["_i"])
        await client.patch_with("1")
        await client.click(send["_i"])
        assert client.session_id is not None
        await client.patch_with(f"all:from-{client.session_id[:8]}")
        if how.startswith("drop"):
            drop(ws, rst=how == "drop_rst")
            return
    if how == "resume":
        async with connect(ws_url, max_size=None, additional_headers=headers) as ws:
            resumed = FletTestClient(WebsocketsSocket(ws))
            await ws.send(
                encode(REGISTER_CLIENT, {"session_id": client.session_id, "page_name": "",
                                         "page": {"route": "/", "width": 800, "height": 600}})
            )  # fmt: skip
            reply = await resumed.receive_until(lambda m: m[0] == REGISTER_CLIENT)
            assert reply[1]["session_id"] == client.session_id, reply
            await resumed.click(add["_i"])
            await resumed.patch_with("2")


def drop(ws: ClientConnection, rst: bool) -> None:
    """Gone without a close frame: the TCP connection just ends (RST with ``rst``)."""
    sock = ws.transport.get_extra_info("socket")
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


async def churn(ws_url: str, count: int) -> None:
    for start in range(0, count, BATCH):
        await asyncio.wait_for(
            asyncio.gather(*(visit(ws_url, n) for n in range(start, min(count, start + BATCH)))),
            60,
        )


async def baseline(url: str) -> dict[str, Any]:
    """The figures once idle and steady: two polls in a row agree (bounded)."""
    await asyncio.to_thread(wait_until_idle, url)
    deadline = time.monotonic() + DEADLINE
    last = await asyncio.to_thread(figures, url)
    while True:
        now = await asyncio.to_thread(figures, url)
        if now == last or time.monotonic() > deadline:
            return now
        last = now
        await asyncio.sleep(0.1)  # polling a bounded condition, not a synchronisation sleep


async def settle(url: str, base: dict[str, Any]) -> dict[str, Any]:
    """Bounded polling until nothing is held beyond the baseline (or the
    deadline); the last figures."""
    await asyncio.to_thread(wait_until_idle, url)
    deadline = time.monotonic() + DEADLINE
    while True:
        now = await asyncio.to_thread(figures, url)
        if not excess(now, base) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)  # polling a bounded condition, not a synchronisation sleep


async def test_sessions_that_come_and_go_give_back_tasks_fds_threads_and_entries(
    hypercorn: Any,
) -> None:
    server = hypercorn("tests.apps.leaks:app", "-k", "uvloop", env={"FLET_MAX_THREADS": "4"})
    ws_url = server.url.replace("http", "ws") + "/ws"
    await churn(ws_url, BATCH)  # warm-up: imports, the first pool threads
    base = await baseline(server.url)
    assert base["sessions"] == 0 and not any(base["registry"].values()), base

    await churn(ws_url, SESSIONS)
    after = await settle(server.url, base)
    assert not excess(after, base), (
        f"held beyond the baseline: {excess(after, base)}\nbaseline {base}\nafter {after}"
    )
