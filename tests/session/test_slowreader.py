"""A browser that stops reading costs the server at most ``max_send_buffer``
(issue 21): frames in our outbox, the frame handed to the server, pubsub
messages waiting for its session, all count; past the bound its connection
closes with 1008 and what waited for it is dropped.

At the protocol level, each of those counts; on a real Hypercorn, the server
process's RSS is measured while clients that open a WebSocket by hand,
register, and never read a byte again are flooded over pubsub.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import flet as ft
import httpx
import pytest
from conftest import (
    PATCH_CONTROL,
    FletTestClient,
    WebsocketsSocket,
    find_controls,
    register_frame,
)
from quart import Quart
from test_malformed import expect_close
from websockets.asyncio.client import connect

from quart_flet import flet_blueprint
from quart_flet.runtime.pubsub import FletPubSub, message_size
from quart_flet.session import connection
from quart_flet.session.registry import get_registry
from quart_flet.stats import STATS

KiB, MiB = 1024, 1024 * 1024


# ---- what counts: the frame the server is writing ------------------------------


async def test_the_frame_the_server_is_writing_counts_against_the_send_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frame handed to the server is its until the write returns, which
    waits while the client's socket is full: two 40 KiB frames, one of them
    written, exceed a 64 KiB buffer."""
    handed, written = asyncio.Event(), asyncio.Event()  # written: never, nothing is read
    queues = connection.websocket_queues

    def stalled(ws: Any) -> Any:
        receive, send = queues(ws)

        async def stalled_send(frame: bytes) -> None:
            if len(frame) > KiB:  # the register answer goes through
                handed.set()
                await written.wait()
            await send(frame)

        return receive, stalled_send

    monkeypatch.setattr(connection, "websocket_queues", stalled)

    async def main(page: ft.Page) -> None:
        text = ft.Text("a" * 40 * KiB)
        page.add(text)
        await handed.wait()  # the server has it, and waits
        text.value = "b" * 40 * KiB
        text.update()  # 80 KiB wait for the client

    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, max_send_buffer=64 * KiB))
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            await client.register()
            assert await expect_close(client) == 1008


# ---- what counts: pubsub messages waiting for the session's handlers --------------

GATE = threading.Event()  # holds the first handler, so messages wait behind it
BIG = 10 * KiB  # a message; six and a half fill the 64 KiB of the apps below


def backlog_app(handled: list[str]) -> Quart:
    """A session's pubsub handler (sync: on the pool) records what it
    handled, and blocks on GATE for the message "wait"."""

    async def main(page: ft.Page) -> None:
        seen = ft.Text("", key="seen")

        def on_topic(topic: str, message: str) -> None:
            if message == "wait":
                GATE.wait(10)
            handled.append(message[:4])
            seen.value = message[:4]
            page.update()

        page.pubsub.subscribe_topic("t", on_topic)
        page.add(seen)

    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, max_send_buffer=64 * KiB))
    return app


async def until(done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # bounded polling
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def the_hub(app: Quart) -> FletPubSub:
    registry = get_registry(app)
    return registry.hub(next(iter(registry.mounts)))


async def test_pubsub_messages_waiting_for_a_session_count_against_its_send_buffer() -> None:
    """Past the bound the connection closes with 1008 and the messages that
    waited are dropped; the session goes on with the later ones, as any
    session whose browser left."""
    handled: list[str] = []
    app = backlog_app(handled)
    GATE.clear()
    try:
        async with app.test_app() as test_app:
            async with test_app.test_client().websocket("/ws") as ws:
                client = FletTestClient(ws)
                await client.register()
                assert client.session_id is not None
                await client.receive_until(lambda m: m[0] == PATCH_CONTROL)
                hub, dropped = the_hub(app), STATS.pubsub_dropped
                hub.send_all_on_topic("t", "wait")
                sent = [f"{i:04d}" for i in range(10)]
                for number in sent:
                    hub.send_all_on_topic("t", number + "x" * BIG)
                assert await expect_close(client) == 1008
                GATE.set()
                await until(lambda: hub.backlog(client.session_id or "") == 0)
        later = handled[1:]
        assert handled[0] == "wait" and later and later == sent[-len(later) :]
        assert STATS.pubsub_dropped - dropped == len(sent) - len(later)
    finally:
        GATE.set()


async def test_a_session_without_a_connection_drops_pubsub_messages_past_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing to close: the later messages are dropped (and said so, once)
    until its handlers have caught up; then they are handled again."""
    handled: list[str] = []
    app = backlog_app(handled)
    GATE.clear()
    try:
        async with app.test_app() as test_app:
            async with test_app.test_client().websocket("/ws") as ws:
                client = FletTestClient(ws)
                await client.register()
                await client.receive_until(lambda m: m[0] == PATCH_CONTROL)
            session_id = client.session_id or ""
            registry, hub = get_registry(app), the_hub(app)
            await until(lambda: not registry.connections)  # the browser left
            dropped = STATS.pubsub_dropped
            hub.send_all_on_topic("t", "wait")
            sent = [f"{i:04d}" for i in range(10)]
            with caplog.at_level(logging.WARNING, "quart_flet"):
                for number in sent:
                    hub.send_all_on_topic("t", number + "x" * BIG)
            assert 64 * KiB - BIG < hub.backlog(session_id) <= 64 * KiB
            GATE.set()
            await until(lambda: hub.backlog(session_id) == 0)
            kept = handled[1:]
            assert handled[0] == "wait" and kept and kept == sent[: len(kept)]
            assert STATS.pubsub_dropped - dropped == len(sent) - len(kept)
            dropping = [r for r in caplog.records if "dropping messages" in r.getMessage()]
            assert len(dropping) == 1 and session_id in dropping[0].getMessage()

            hub.send_all_on_topic("t", "next")  # caught up: handled again
            await until(lambda: handled[-1] == "next")
    finally:
        GATE.set()


class Receiver:
    """A live connection as the hub sees it: ``queued`` bytes not yet sent."""

    def __init__(self, hub: FletPubSub, queued: int) -> None:
        self.hub, self.queued_bytes, self.overflows = hub, queued, 0

    def overflow(self) -> None:
        self.overflows += 1
        self.hub.drop_backlog("s")


async def test_a_sessions_unsent_frames_and_pubsub_backlog_share_one_bound() -> None:
    handled: list[tuple[str, str]] = []
    with ThreadPoolExecutor(2) as pool:
        hub = FletPubSub("bound", asyncio.get_running_loop(), pool, max_backlog=100 * KiB)
        receiver = Receiver(hub, queued=95 * KiB)
        hub.receiver_of = lambda session_id: receiver if session_id == "s" else None

        def recorder(session_id: str) -> Callable[[str], Any]:
            async def on_message(message: str) -> None:
                handled.append((session_id, message[0]))

            return on_message

        hub.subscribe("s", recorder("s"))
        hub.subscribe("other", recorder("other"))
        hub.send_all("x" * 4 * KiB)  # 99 KiB wait for "s": taken
        hub.send_all("y" * 4 * KiB)  # 103 KiB: over, and "x" (not handled yet) dropped
        assert receiver.overflows == 1
        await until(lambda: len(handled) == 2)
        assert sorted(handled) == [("other", "x"), ("other", "y")]
        assert hub.backlog("s") == hub.backlog("other") == 0

        receiver.queued_bytes = 0  # a message over the bound, alone, still goes
        hub.send_all("z" * 200 * KiB)
        await until(lambda: len(handled) == 4)
        assert sorted(handled[2:]) == [("other", "z"), ("s", "z")]
        assert receiver.overflows == 1


def test_message_size_counts_what_a_message_holds() -> None:
    @dataclass
    class Line:
        user: str
        text: str

    text = "x" * 100_000
    assert 100_000 <= message_size(text) < 100_200
    assert 100_000 <= message_size(Line("ann", text)) < 101_000
    assert 200_000 <= message_size({"a": [text, (text.upper(),)]}) < 201_000
    looped: list[Any] = []
    looped.append(looped)
    assert message_size(looped) < 100_000  # a cycle ends the walk
    many = list(range(1_000_000))
    started = time.perf_counter()
    message_size(many)  # a look at 1,000 of them only
    assert time.perf_counter() - started < 0.01


# ---- a real server: RSS with browsers that never read ------------------------------

MAX_SEND_BUFFER = 2 * MiB  # small, so the test is quick
SLACK = 8 * MiB  # the interpreter's and the allocator's share of a flood
FLOOD_MESSAGES, FLOOD_SIZE = 500, 256 * 1024  # 125 MiB aimed at each silent browser


def silent_websocket(port: int, route: str) -> socket.socket:
    """A WebSocket opened by hand, registered at ``route``, that never reads
    again (a client library would read in the background): its receive
    buffer is as small as the kernel allows, so the server's writes stall."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        # as a browser asks: the server then keeps a compressor for it too
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # the handshake's answer, byte by byte
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    sock.sendall(masked_frame(register_frame(route=route)))
    return sock


def masked_frame(payload: bytes) -> bytes:
    """One binary client frame (RFC 6455: masked), payload under 64 KiB."""
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return b"\x82" + length + mask + masked


class Chatter:
    """A healthy session of the chat: says numbered lines, sees everyone's."""

    def __init__(self, ws: Any, client: FletTestClient, say: int) -> None:
        self.ws, self.client, self.say_button, self.said = ws, client, say, 0

    @classmethod
    async def join(cls, ws_url: str, route: str = "/") -> Chatter:
        ws = await connect(ws_url, max_size=None, max_queue=None)  # reads all it is sent
        client = FletTestClient(WebsocketsSocket(ws))
        await client.register(route=route)
        render = await client.receive_until(
            lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], key="say")
        )
        (say,) = find_controls(render, key="say")
        return cls(ws, client, int(say["_i"]))

    async def say(self, *listeners: Chatter, timeout: float = 5) -> float:
        """Say the next line; it reaches this session and ``listeners`` in
        time. Returns the seconds that took."""
        started = time.perf_counter()
        self.said += 1
        assert self.client.session_id is not None
        line = f"{self.client.session_id[:8]}:{self.said}"
        await self.client.click(self.say_button)
        for chatter in (self, *listeners):
            await chatter.client.patch_with(line, timeout=timeout)
        return time.perf_counter() - started


@asynccontextmanager
async def chat_server(hypercorn: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    server = hypercorn(
        "tests/apps/slowreader.py:app",
        env={"FLET_MAX_SEND_BUFFER": str(MAX_SEND_BUFFER)},
        path="/stats",
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield server, http
    assert "Traceback" not in server.log()


async def stats(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.get("/stats", params=params)).json()
    return answer


async def wait_stats(http: httpx.AsyncClient, done: Any, timeout: float = 10) -> dict[str, Any]:
    """GET /stats until ``done(stats)`` (bounded polling)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await stats(http)
        if done(current):
            return current
        assert asyncio.get_running_loop().time() < deadline, current
        await asyncio.sleep(0.05)


async def flood_silent_browsers(hypercorn: Any, count: int) -> None:
    async with chat_server(hypercorn) as (server, http):
        ws_url = server.url.replace("http", "ws") + "/ws"
        alice, bob = await Chatter.join(ws_url), await Chatter.join(ws_url)
        # warm up every path a flood takes with a browser that reads
        reader = await Chatter.join(ws_url, route="/flood/warm")
        warm = {"topics": "warm", "messages": 20, "size": FLOOD_SIZE, "interval": 0.02}
        await http.post("/flood", params=warm)
        await wait_stats(http, lambda s: s["flood_sent"] == 20)
        await reader.say(alice, bob)  # after the flood, in order
        await reader.ws.close()

        topics = [f"silent{i}" for i in range(count)]  # a flood of its own for each
        silent = [silent_websocket(server.port, f"/flood/{topic}") for topic in topics]
        try:
            # registered: alice, bob, the reader's (held) and theirs
            await wait_stats(http, lambda s: s["sessions"] == 3 + count)
            usual = [
                await chatter.say(other) for chatter, other in [(alice, bob), (bob, alice)] * 5
            ]
            before = await stats(http, collect=1, reset_peak=1)
            flood = {"topics": ",".join(topics), "messages": FLOOD_MESSAGES, "size": FLOOD_SIZE}
            await http.post("/flood", params=flood)
            # the healthy two chat throughout
            during: list[float] = []
            while True:
                during.append(await alice.say(bob))
                during.append(await bob.say(alice))
                now = await stats(http)
                if now["flood_sent"] == before["flood_sent"] + FLOOD_MESSAGES:
                    break
            after = await wait_stats(http, lambda s: s["connections"] == 2)
            grown = after["peak_rss"] - before["rss"]
            # their usual latency: the middle line during the flood is about as quick
            middle, usual_middle = statistics.median(during), statistics.median(usual)
            assert middle <= max(0.25, 5 * usual_middle), (usual, during)
            bound = count * (MAX_SEND_BUFFER + SLACK)
            assert grown <= bound, (
                f"the server grew by {grown / MiB:.1f} MiB (at most {bound / MiB:.0f})"
            )
            assert after["closes"].get("1008", 0) == count, after["closes"]
            await alice.say(bob)
            await bob.say(alice)
        finally:
            for sock in silent:
                sock.close()
        await alice.ws.close()
        await bob.ws.close()


@pytest.mark.server
@pytest.mark.timeout(60)
async def test_a_browser_that_stops_reading_costs_at_most_its_send_buffer(hypercorn: Any) -> None:
    await flood_silent_browsers(hypercorn, 1)


@pytest.mark.server
@pytest.mark.timeout(60)
async def test_ten_browsers_that_stop_reading_cost_at_most_ten_send_buffers(hypercorn: Any) -> None:
    await flood_silent_browsers(hypercorn, 10)
