"""The receiving side of the fan-out bench (bench/pubsub_fanout.py): commands
for bench.clientpool, so the sessions that wait for a ``send_all`` are spread
over several client processes.

A child opens its share of the sessions (:func:`pool_open`), is armed with the
text of the next message (:func:`pool_arm`), and reports when each of its
sessions received it (:func:`pool_collect`) as ``time.monotonic()`` stamps:
CLOCK_MONOTONIC is one clock for every process of the machine on Linux, so
the parent compares them with the moment it sent the click. Each session looks
for the text as its frames arrive (in the protocol's ``data_received``), not
when a command asks, so a stamp is the frame's arrival.

Every wait is bounded; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.loadclient import PATCH_CONTROL, REGISTER_CLIENT, REGISTER_FRAME, WebSocketClient, decode


class FanoutSocket(WebSocketClient):
    """A WebSocket that, once armed with ``marker``, stamps the arrival of the
    first frame containing it and drops the frames before it."""

    def __init__(self) -> None:
        super().__init__()
        self.marker: bytes | None = None
        self.at = 0.0
        self.arrived: asyncio.Future[None] | None = None
        #: its page is subscribed to the topic chat's topic (bench.apps.chat)
        self.on_topic = False

    def arm(self, marker: bytes) -> asyncio.Future[None]:
        self.messages.clear()
        self.marker, self.at = marker, 0.0
        self.arrived = asyncio.get_running_loop().create_future()
        return self.arrived

    def _wake(self) -> None:
        marker = self.marker
        if marker is not None:
            while self.messages:
                if marker in self.messages.popleft():
                    self.at = time.monotonic()
                    self.marker = None
                    if self.arrived is not None and not self.arrived.done():
                        self.arrived.set_result(None)
                    break
            if self.closed and self.arrived is not None and not self.arrived.done():
                self.arrived.set_exception(ConnectionError("closed before the message came"))
        super()._wake()


async def open_receiver(port: int, timeout: float = 60) -> FanoutSocket:
    """One registered chat session, once its main has subscribed (the page's
    first PATCH_CONTROL is sent after ``page.pubsub.subscribe``)."""
    ws = await FanoutSocket.connect(port, timeout=timeout)
    try:
        ws.send(REGISTER_FRAME)
        reply = decode(await ws.recv(timeout))
        assert reply[0] == REGISTER_CLIENT and not reply[1].get("error"), reply
        while True:
            frame = await ws.recv(timeout)
            if decode(frame)[0] == PATCH_CONTROL:
                break
        ws.on_topic = b"topic:yes" in frame
        return ws
    except BaseException:
        ws.close()
        raise


async def pool_open(state: dict[str, Any], key: str, ports: list[int], n: int) -> float:
    """Open this process's ``n`` sessions of set-up ``key``, spread in turn
    over ``ports``."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(50)

    async def one(i: int) -> FanoutSocket:
        async with gate:
            return await open_receiver(ports[i % len(ports)])

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    opened = [r for r in results if isinstance(r, FanoutSocket)]
    state.setdefault(key, []).extend(opened)
    failed = [r for r in results if not isinstance(r, FanoutSocket)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} sessions failed to open: {failed[0]!r}")
    return time.perf_counter() - started


def _receivers(state: dict[str, Any], key: str, topic: bool) -> list[FanoutSocket]:
    sockets: list[FanoutSocket] = state.get(key, [])
    return [ws for ws in sockets if ws.on_topic] if topic else sockets


async def pool_arm(state: dict[str, Any], key: str, marker: bytes, topic: bool = False) -> int:
    """Wait for ``marker`` on every session of ``key`` in this process (from
    now on); with ``topic``, on those subscribed to the topic only."""
    state["waits"] = [ws.arm(marker) for ws in _receivers(state, key, topic)]
    state["cpu0"] = time.process_time()
    return len(state["waits"])


async def pool_collect(
    state: dict[str, Any], key: str, timeout: float, topic: bool = False
) -> tuple[list[float], float]:
    """(each armed session's arrival stamp, this process's CPU seconds since armed)."""
    waits: list[asyncio.Future[None]] = state.pop("waits", [])
    if waits:
        await asyncio.wait_for(asyncio.gather(*waits), timeout)
    cpu = time.process_time() - state.pop("cpu0", time.process_time())
    return [ws.at for ws in _receivers(state, key, topic)], cpu


async def pool_close(state: dict[str, Any], key: str) -> int:
    sockets: list[FanoutSocket] = state.pop(key, [])
    for ws in sockets:
        ws.close()
    return len(sockets)
