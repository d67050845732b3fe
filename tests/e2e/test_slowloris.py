"""A slowloris client (many connections trickling request headers) against
a real Hypercorn with the Procfile's settings: Hypercorn's limits hold, and
other users are served as usual meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_robustness import click_and_see, counter_session

TRICKLERS = 200
PROCFILE_SETTINGS = [
    "--workers",
    "0",
    "--backlog",
    "2048",
    "--websocket-ping-interval",
    "20",
    "--graceful-timeout",
    "5",
]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def trickle(port: int, stop: asyncio.Event, opened: list[int]) -> bool:
    """Send a request's headers one byte at a time, never finishing them;
    True if the server closed the connection first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(1)
    header = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
    try:
        for byte in header:
            if stop.is_set():
                return False
            writer.write(bytes([byte]))
            await writer.drain()
            # the trickle's pace is the load itself, not a wait for an event
            await asyncio.sleep(0.2)
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        writer.close()


@pytest.mark.server
async def test_a_slowloris_crowd_does_not_slow_other_users(hypercorn: Any) -> None:
    server = hypercorn("examples.counter:app", *PROCFILE_SETTINGS, "--read-timeout", "60")
    ws_url = server.url.replace("http", "ws") + "/ws"
    user, fab = await counter_session(ws_url)
    before = rss(server.proc.pid)
    stop, opened = asyncio.Event(), []
    crowd = [asyncio.create_task(trickle(server.port, stop, opened)) for _ in range(TRICKLERS)]
    try:
        while len(opened) < TRICKLERS:
            await asyncio.sleep(0.01)  # bounded below: every connection opens
        took = []
        for clicks in range(1, 51):
            started = time.perf_counter()
            await click_and_see(user, fab, str(clicks))
            took.append(time.perf_counter() - started)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            index = await http.get("/")
        grown = rss(server.proc.pid) - before
    finally:
        stop.set()
        await asyncio.gather(*crowd, return_exceptions=True)
        await user.close()
    assert index.status_code == 200 and b"flutter" in index.content
    # the independent check measured a 2.8 ms p99 with 200 tricklers; a
    # stalled server would take seconds (the tricklers' whole lifetime)
    p99 = statistics.quantiles(took, n=100)[98]
    print(f"click p99 {p99 * 1000:.1f} ms, server grew {grown / 1024:.0f} KiB")
    assert p99 < 0.5, f"click p99 {p99:.3f} s with {TRICKLERS} trickling connections"
    # each half-sent request costs a connection's buffers, not a worker
    assert grown < TRICKLERS * 64 * 1024, f"server grew {grown} bytes"
    assert "Traceback" not in server.log()


@pytest.mark.server
async def test_hypercorn_drops_a_trickler_that_goes_silent_after_its_read_timeout(
    hypercorn: Any,
) -> None:
    server = hypercorn("examples.counter:app", *PROCFILE_SETTINGS, "--read-timeout", "2")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    await writer.drain()
    started = time.monotonic()
    # the server closes it: EOF (or a reset) well before our own bound
    try:
        data = await asyncio.wait_for(reader.read(), 30)
    except ConnectionError:
        data = b""
    held = time.monotonic() - started
    writer.close()
    assert b"200 OK" not in data
    assert 1.5 < held < 15, f"held {held:.1f} s with --read-timeout 2"


@pytest.mark.server
async def test_headers_past_hypercorns_limit_are_refused_not_buffered(hypercorn: Any) -> None:
    """h11's limit on an incomplete request (16 KiB): a client that sends
    endless headers is answered with an error and closed."""
    server = hypercorn("examples.counter:app", *PROCFILE_SETTINGS, "--read-timeout", "60")
    before = rss(server.proc.pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    reply = asyncio.create_task(reader.read(4096))
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    sent = 0
    try:
        # up to 4 MiB of headers; the kernel's buffers take some of it even
        # after the server stopped reading, so the bound is on the server's RSS
        while sent < 4 * 1024 * 1024 and not reply.done():
            writer.write(b"X-Pad: " + b"a" * 1000 + b"\r\n")
            await asyncio.wait_for(writer.drain(), 10)
            sent += 1009
    except (ConnectionError, TimeoutError):
        pass  # refused, or no longer read: either way not buffered
    try:
        answer = await asyncio.wait_for(reply, 10)
    except ConnectionError:
        answer = b""
    grown = rss(server.proc.pid) - before
    writer.close()
    assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), answer[:80]
    assert grown < 2 * 1024 * 1024, f"the server grew {grown} bytes for {sent} bytes of headers"
