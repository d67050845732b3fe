"""The in-process floor: what a counter click costs flet itself.

The same clicks the load client makes, dispatched straight to real flet
Sessions whose Connection encodes each outgoing message with msgpack (as both
hosts do) and drops it. No sockets, no server: event dispatch, the handler,
the diff and the encode. Subtract this from a server's CPU per click to see
what its transport costs.

Run alone: python -m bench.floor [--sessions 50] [--clicks 4000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
from flet.controls.base_control import BaseControl
from flet.controls.context import _context_page, context
from flet.messaging.connection import Connection
from flet.messaging.protocol import Message, configure_encode_object_for_msgpack
from flet.messaging.session import Session
from flet.pubsub.pubsub_hub import PubSubHub

from bench.apps.counter import main

_encode_default = configure_encode_object_for_msgpack(BaseControl)


class NoopConnection(Connection):  # type: ignore[misc]
    """Encodes what flet sends, as a transport must, and drops it."""

    def __init__(self, hub: PubSubHub, executor: ThreadPoolExecutor) -> None:
        super().__init__()
        self.loop = asyncio.get_running_loop()
        self.executor = executor
        self.pubsubhub = hub
        self.sent = 0
        self.last = b""

    def send_message(self, message: Message) -> None:
        self.last = b"\x00" + msgpack.packb([message.action, message.body], default=_encode_default)
        self.sent += 1

    def dispose(self) -> None:
        pass


async def _start(hub: PubSubHub, executor: ThreadPoolExecutor) -> tuple[Session, int]:
    connection = NoopConnection(hub, executor)
    session = Session(connection)
    _context_page.set(session.page)
    context.reset_auto_update()
    await main(session.page)
    await session.after_event(session.page)
    fab = session.page.floating_action_button
    assert fab is not None
    return session, fab._i


async def measure(
    sessions: int = 50, clicks: int = 4000, warmup: int = 500, dispatcher: str = "flet"
) -> dict[str, Any]:
    """CPU and wall time per click, round-robin over ``sessions`` sessions.

    ``dispatcher``: "flet" (Session.dispatch_event, the floor) or "quart_flet"
    (quart_flet.runtime.dispatch.dispatch_event, what our server runs per click)."""
    from quart_flet.runtime import dispatch

    executor = ThreadPoolExecutor(2)
    hub = PubSubHub(loop=asyncio.get_running_loop(), executor=executor)
    started: list[tuple[Session, int]] = []
    try:
        for _ in range(sessions):
            started.append(await _start(hub, executor))
        sent_before = sum(s.connection.sent for s, _ in started)

        async def run(count: int) -> None:
            for i in range(count):
                session, fab = started[i % sessions]
                if dispatcher == "flet":
                    await session.dispatch_event(fab, "click", None)
                else:
                    await dispatch.dispatch_event(session, fab, "click", None)

        await run(warmup)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await run(clicks)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sent = sum(s.connection.sent for s, _ in started) - sent_before
        assert sent == warmup + clicks, f"{sent} messages for {warmup + clicks} clicks"
        return {
            "sessions": sessions,
            "clicks": clicks,
            "cpu_ms_per_click": cpu / clicks * 1e3,
            "wall_ms_per_click": wall / clicks * 1e3,
            "clicks_per_s": clicks / wall,
        }
    finally:
        for session, _ in started:
            session.close()
        executor.shutdown(wait=False)


def run_floor(sessions: int = 50, clicks: int = 4000, dispatcher: str = "flet") -> dict[str, Any]:
    coro = measure(sessions, clicks, dispatcher=dispatcher)
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=4000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run_floor(args.sessions, args.clicks)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"floor: {result['cpu_ms_per_click']:.3f} ms CPU per click, "
            f"{result['clicks_per_s']:.0f} clicks/s ({args.sessions} sessions)"
        )


if __name__ == "__main__":
    main_cli()
