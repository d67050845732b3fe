"""A peer that vanishes without closing (a laptop lid, a phone switching
networks) sends nothing more: no FIN, no pong. Hypercorn on its own never
notices, so the session stays "connected" forever and never expires. With
the settings the Procfile and examples/hypercorn.toml use,
``--websocket-ping-interval`` (Hypercorn pings, a live browser answers) and
``--read-timeout`` (nothing read for that long: the peer is gone), the dead
connection is dropped while a live one, idle all along, stays."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from typing import Any

import pytest
from conftest import REGISTER_CLIENT, decode, register_frame
from websockets.asyncio.client import connect

pytestmark = pytest.mark.server

PING_INTERVAL, READ_TIMEOUT = 1, 3


def masked_binary_frame(payload: bytes) -> bytes:
    """One client-to-server binary frame (RFC 6455: clients mask)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x82, 0x80 | len(payload)]) + mask + body


def dead_peer(port: int) -> socket.socket:
    """Handshake, register, then silence: never reads, never answers a ping."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    sock.sendall(masked_binary_frame(register_frame()))
    return sock


def wait_for_eof(sock: socket.socket, timeout: float) -> float:
    """Read (and drop) what the server sends until it closes; the seconds it took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    while sock.recv(65536):
        pass
    return time.monotonic() - started


async def test_a_vanished_peer_is_dropped_and_a_live_idle_one_kept(hypercorn: Any) -> None:
    server = hypercorn(
        "examples.counter:app",
        "--websocket-ping-interval",
        str(PING_INTERVAL),
        "--read-timeout",
        str(READ_TIMEOUT),
    )
    async with connect(server.url.replace("http", "ws") + "/ws") as live:  # answers pings
        await live.send(register_frame())
        assert decode(await live.recv())[0] == REGISTER_CLIENT
        sock = dead_peer(server.port)
        try:
            took = await asyncio.to_thread(wait_for_eof, sock, READ_TIMEOUT + 10)
        finally:
            sock.close()
        assert READ_TIMEOUT - 1.5 <= took <= READ_TIMEOUT + 5, took  # dropped, not at once
        # the live one was idle just as long, and still works
        await live.ping()
        assert live.state.name == "OPEN"
