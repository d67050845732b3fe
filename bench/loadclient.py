"""A protocol-level Flet load client: many sessions in one asyncio process.

Each session is a raw WebSocket (RFC 6455 framing written out here, on an
asyncio Protocol, so the client spends as little CPU per click as possible and
leaves the cores to the server under test). It speaks the Flet 1.0 wire
protocol: ``b"\\x00" + msgpack([action, body])``. It registers, finds the
FloatingActionButton in the first PATCH_CONTROL, then clicks it and waits for
the PATCH_CONTROL that answers each click.

Every wait is bounded (``timeout``); only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import statistics
import struct
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack

REGISTER_CLIENT, PATCH_CONTROL, CONTROL_EVENT = 1, 2, 3
_PATCH_PREFIX = b"\x00\x92\x02"  # [0x00] + msgpack fixarray(2) + action 2
HOST = "127.0.0.1"


def encode(action: int, body: Any) -> bytes:
    return b"\x00" + msgpack.packb([action, body])


def decode(frame: bytes) -> Any:
    return msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=lambda code, data: None)


REGISTER_FRAME = encode(
    REGISTER_CLIENT,
    {"session_id": None, "page_name": "", "page": {"route": "/", "width": 800, "height": 600}},
)


def find_control(tree: Any, **match: Any) -> dict[str, Any] | None:
    """The first control dict (has ``_c``) in a patch whose fields match."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "_c" in node and all(node.get(k) == v for k, v in match.items()):
                return node
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
    return None


class WebSocketClient(asyncio.Protocol):
    """The client side of one WebSocket: binary messages only, no extensions."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.messages: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.closed = False
        self.upgraded = False
        self.set_cookies: list[str] = []  # name=value of each Set-Cookie in the upgrade answer

    @classmethod
    async def connect(
        cls, port: int, path: str = "/ws", timeout: float = 30, cookies: str = ""
    ) -> WebSocketClient:
        """``cookies``: a Cookie header's value, as a browser sends what the
        server set (a resume is bound to the browser-id cookie)."""
        loop = asyncio.get_running_loop()
        _, client = await asyncio.wait_for(loop.create_connection(cls, HOST, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        assert client.transport is not None
        cookie_line = f"Cookie: {cookies}\r\n" if cookies else ""
        client.transport.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{cookie_line}"
                "Sec-WebSocket-Version: 13\r\nUser-Agent: quart-flet-bench\r\n\r\n"
            ).encode()
        )
        await asyncio.wait_for(client.handshake, timeout)
        return client

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            status = head[0].encode("latin-1")
            self.set_cookies = [
                line.split(":", 1)[1].split(";", 1)[0].strip()
                for line in head[1:]
                if line.lower().startswith("set-cookie:")
            ]
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.handshake.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                self._lost()
                return
            self.upgraded = True
            self.handshake.set_result(None)
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("connection lost in the handshake"))
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _parse(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, start = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            opcode = b0 & 0x0F
            if opcode in (0, 1, 2):
                self.fragments.append(payload)
                if b0 & 0x80:
                    message = b"".join(self.fragments) if len(self.fragments) > 1 else payload
                    self.fragments = []
                    self.messages.append(message)
                    self._wake()
            elif opcode == 8:  # close: answer and drop
                self._send_frame(0x88, payload[:2])
                self._lost()
                return
            elif opcode == 9:  # ping
                self._send_frame(0x8A, payload)

    # ---- API -----------------------------------------------------------

    def _send_frame(self, first: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = bytes((first, 0x80 | n))
        elif n < 65536:
            header = bytes((first, 0xFE)) + struct.pack("!H", n)
        else:
            header = bytes((first, 0xFF)) + struct.pack("!Q", n)
        if n:
            repeated = (mask * (n // 4 + 1))[:n]
            masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
                n, "big"
            )
        else:
            masked = b""
        self.transport.write(header + mask + masked)

    def send(self, payload: bytes) -> None:
        self._send_frame(0x82, payload)

    async def recv(self, timeout: float = 30) -> bytes:
        if self.messages:
            return self.messages.popleft()
        if self.closed:
            raise ConnectionError("websocket closed")
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.waiter, timeout)
        finally:
            self.waiter = None
        if self.messages:
            return self.messages.popleft()
        raise ConnectionError("websocket closed")

    def close(self) -> None:
        if not self.closed:
            self._send_frame(0x88, struct.pack("!H", 1000))
            self.closed = True
            assert self.transport is not None
            self.transport.close()


@dataclass
class FletSession:
    """One registered Flet session and the frames it clicks with."""

    ws: WebSocketClient
    session_id: str
    fab_click: bytes
    sleep_click: bytes | None = None
    clicks: int = 0
    last: bytes = b""
    latencies: list[float] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int, timeout: float = 30) -> FletSession:
        ws = await WebSocketClient.connect(port, timeout=timeout)
        try:
            ws.send(REGISTER_FRAME)
            reply = decode(await ws.recv(timeout))
            assert reply[0] == REGISTER_CLIENT and not reply[1].get("error"), reply
            session_id = reply[1]["session_id"]
            # main() sends the page's controls in the first PATCH_CONTROL
            while True:
                message = decode(await ws.recv(timeout))
                if message[0] == PATCH_CONTROL:
                    break
            fab = find_control(message[1], _c="FloatingActionButton")
            assert fab is not None, message
            sleeper = find_control(message[1], key="sleep")
            return cls(
                ws,
                session_id,
                click_frame(fab["_i"]),
                click_frame(sleeper["_i"]) if sleeper else None,
            )
        except BaseException:
            ws.close()
            raise

    async def click(self, timeout: float = 30, frame: bytes | None = None) -> bytes:
        """One round trip: a click and the PATCH_CONTROL that answers it."""
        self.ws.send(frame or self.fab_click)
        while True:
            reply = await self.ws.recv(timeout)
            if reply.startswith(_PATCH_PREFIX):
                self.clicks += 1
                self.last = reply
                return reply

    def close(self) -> None:
        self.ws.close()


def click_frame(target: int) -> bytes:
    return encode(CONTROL_EVENT, {"target": target, "name": "click", "data": None})


async def open_sessions(port: int, n: int, timeout: float = 60) -> list[FletSession]:
    """Open ``n`` sessions concurrently; all of them or an exception."""
    results = await asyncio.gather(
        *(FletSession.open(port, timeout) for _ in range(n)), return_exceptions=True
    )
    sessions = [r for r in results if isinstance(r, FletSession)]
    errors = [r for r in results if not isinstance(r, FletSession)]
    if errors:
        close_all(sessions)
        raise RuntimeError(f"{len(errors)} of {n} sessions failed to open: {errors[0]!r}")
    return sessions


def close_all(sessions: list[FletSession]) -> None:
    for session in sessions:
        session.close()


async def click_rounds(sessions: list[FletSession], k: int, timeout: float = 30) -> float:
    """Every session makes ``k`` sequential click round trips, all sessions at
    once. Returns the elapsed seconds; checks each counter reached ``k``."""

    async def run(session: FletSession) -> None:
        for _ in range(k):
            await session.click(timeout)

    started = time.perf_counter()
    await asyncio.gather(*(run(s) for s in sessions))
    elapsed = time.perf_counter() - started
    check_counters(sessions)
    return elapsed


async def click_for(
    sessions: list[FletSession], seconds: float, timeout: float = 30
) -> tuple[int, float]:
    """Every session clicks back to back for ``seconds``, all at once. Returns
    (round trips completed, elapsed seconds until the last one came back).

    Time-boxed rather than K clicks each: with ``--workers 2`` the sessions of
    a less loaded worker would finish their K early and leave it idle while
    the other worker still works, measuring the slower worker only."""
    before = sum(s.clicks for s in sessions)
    started = time.perf_counter()
    stop = started + seconds

    async def run(session: FletSession) -> None:
        while time.perf_counter() < stop:
            await session.click(timeout)

    await asyncio.gather(*(run(s) for s in sessions))
    elapsed = time.perf_counter() - started
    check_counters(sessions)
    return sum(s.clicks for s in sessions) - before, elapsed


def check_counters(sessions: list[FletSession]) -> None:
    """Each session's counter shows how many times it clicked: no click lost."""
    for session in sessions:
        if session.clicks and str(session.clicks).encode() not in session.last:
            raise AssertionError(f"counter != {session.clicks}: {session.last[:80]!r}")


async def echo_for(port: int, n: int, seconds: float, timeout: float = 30) -> int:
    """``n`` raw WebSockets send a 50-byte frame and wait for it back, back to
    back, for ``seconds``. Returns the round trips made."""
    clients = await asyncio.gather(*(WebSocketClient.connect(port) for _ in range(n)))
    payload = b"\x00" + b"x" * 49
    stop = time.perf_counter() + seconds
    counts = [0] * n

    async def run(i: int, client: WebSocketClient) -> None:
        while time.perf_counter() < stop:
            client.send(payload)
            if await client.recv(timeout) != payload:
                raise AssertionError("echo changed the frame")
            counts[i] += 1

    try:
        await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    finally:
        for client in clients:
            client.close()
    return sum(counts)


@dataclass
class StallResult:
    others: int
    slow_others: int  # sessions with a click over the threshold during the sleep
    worst_ms: float
    median_ms: float
    sleeper_ms: float


async def sync_stall(
    port: int,
    others: int = 20,
    threshold: float = 0.5,
    duration: float = 2.5,
    sleep_at: float = 0.5,
    timeout: float = 30,
) -> StallResult:
    """``others`` sessions click nonstop while one more session clicks the
    button whose sync handler sleeps 1 s; count the others that had a click
    round trip over ``threshold`` seconds."""
    sessions = await open_sessions(port, others + 1, timeout)
    sleeper, clickers = sessions[0], sessions[1:]
    assert sleeper.sleep_click is not None, "the app has no button keyed 'sleep'"
    try:
        for s in clickers:  # warm: first click of each session
            await s.click(timeout)
        stop = time.perf_counter() + duration

        async def click_loop(session: FletSession) -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                await session.click(timeout)
                session.latencies.append(time.perf_counter() - t0)

        async def sleep_once() -> float:
            await asyncio.sleep(sleep_at)
            t0 = time.perf_counter()
            reply = await sleeper.click(timeout, sleeper.sleep_click)
            assert b"slept" in reply, reply[:80]
            return time.perf_counter() - t0

        results = await asyncio.gather(sleep_once(), *(click_loop(s) for s in clickers))
        worst = [max(s.latencies) for s in clickers]
        every = [x for s in clickers for x in s.latencies]
        return StallResult(
            others=others,
            slow_others=sum(1 for w in worst if w > threshold),
            worst_ms=max(worst) * 1e3,
            median_ms=statistics.median(every) * 1e3,
            sleeper_ms=results[0] * 1e3,
        )
    finally:
        close_all(sessions)


async def bounded(coro: Awaitable[Any], seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise RuntimeError(f"{what} took over {seconds:.0f} s") from None


# ---- commands for bench.clientpool: the same load, spread over processes ------------


async def pool_open(state: dict[str, Any], port: int, n: int, timeout: float = 60) -> float:
    """Open this process's ``n`` sessions on ``port``; seconds it took."""
    started = time.perf_counter()
    state.setdefault(port, []).extend(await open_sessions(port, n, timeout) if n else [])
    return time.perf_counter() - started


async def pool_click_for(state: dict[str, Any], port: int, seconds: float) -> tuple[int, float]:
    """:func:`click_for` on this process's sessions of ``port``."""
    sessions = state.get(port, [])
    if not sessions:
        return 0, seconds
    gc.collect()
    gc.disable()  # keep the client's own pauses out of the timing
    try:
        return await click_for(sessions, seconds)
    finally:
        gc.enable()


async def pool_click_once(state: dict[str, Any], port: int, count: int) -> list[float]:
    """The first ``count`` sessions of ``port`` click once each, all at once;
    each round trip's latency in seconds."""

    async def one(session: FletSession) -> float:
        started = time.perf_counter()
        await session.click()
        return time.perf_counter() - started

    sessions = state.get(port, [])[:count]
    latencies = list(await asyncio.gather(*(one(s) for s in sessions)))
    check_counters(sessions)
    return latencies


async def pool_alive(state: dict[str, Any], port: int) -> int:
    """How many of this process's sessions of ``port`` still answer a click."""
    sessions = state.get(port, [])
    results = await asyncio.gather(*(s.click() for s in sessions), return_exceptions=True)
    return sum(1 for r in results if isinstance(r, bytes))


async def pool_close(state: dict[str, Any], port: int) -> int:
    sessions = state.pop(port, [])
    close_all(sessions)
    return len(sessions)


async def pool_click_paced(
    state: dict[str, Any], port: int, clicks: int, pace: float, count: int
) -> list[float]:
    """The first ``count`` sessions of ``port`` each click ``clicks`` times,
    one click every ``pace`` seconds (a user, not a flood), starting spread
    over the first ``pace``; each round trip's latency in seconds."""
    sessions = state.get(port, [])[:count]

    async def user(index: int, session: FletSession) -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time() + pace * index / max(1, len(sessions))
        latencies = []
        for k in range(clicks):
            delay = start + k * pace - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the user's think time, not a wait for the server
            started = time.perf_counter()
            await session.click()
            latencies.append(time.perf_counter() - started)
        return latencies

    per_session = await asyncio.gather(*(user(i, s) for i, s in enumerate(sessions)))
    check_counters(sessions)
    return [x for latencies in per_session for x in latencies]
