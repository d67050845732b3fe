"""Connections that never become a session leave nothing behind on a real
Hypercorn (issue 21): TCP connections that send nothing or half a request,
WebSockets that never send REGISTER_CLIENT or send junk. After each batch
the server's open files, asyncio tasks, Flet connections and sessions are
back at their baseline, and so is what Python objects hold (tracemalloc).

RSS is not asserted here: what glibc keeps of a freed heap varies from run
to run (malloc_trim gives most of it back, and it levels off after a few
batches), while the Python heap returns to its baseline every time.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import httpx
import pytest

BATCH = 200
KINDS = 4


async def junk_connection(port: int, kind: int) -> None:
    """0: TCP, nothing sent; 1: half an HTTP request; 2: a WebSocket that
    never registers; 3: a WebSocket that sends a junk frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == 1:
            writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        elif kind >= 2:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
            if kind == 3:  # a masked binary frame of an unknown packet type
                writer.write(b"\x82\x85" + bytes(4) + b"junk!")
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def junk_batch(port: int) -> None:
    await asyncio.gather(*(junk_connection(port, i % KINDS) for i in range(BATCH)))


async def settled(http: httpx.AsyncClient, baseline: dict[str, Any]) -> dict[str, Any]:
    """/stats once the server has let go of the batch (bounded polling)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        stats: dict[str, Any] = (await http.get("/stats", params={"collect": 1})).json()
        if all(stats[key] <= baseline[key] for key in ("fds", "tasks", "connections")):
            return stats
        assert asyncio.get_running_loop().time() < deadline, (baseline, stats)
        await asyncio.sleep(0.05)


@pytest.mark.server
async def test_junk_connections_leave_no_files_tasks_sessions_or_python_objects(
    hypercorn: Any,
) -> None:
    server = hypercorn(
        "tests/apps/slowreader.py:app", env={"PYTHONTRACEMALLOC": "1"}, path="/stats"
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        await junk_batch(server.port)  # the first batch fills caches for good
        baseline = await settled(http, (await http.get("/stats")).json())
        for _ in range(2):
            await junk_batch(server.port)
            after = await settled(http, baseline)
            assert after["fds"] == baseline["fds"]
            assert after["tasks"] == baseline["tasks"]
            assert after["connections"] == after["sessions"] == 0
            # a leak of even 100 bytes a connection would show as 20 KB here
            assert after["traced"] - baseline["traced"] < 16 * 1024, (baseline, after)
            assert after["objects"] - baseline["objects"] < 200, (baseline, after)
    assert "Traceback" not in server.log()
