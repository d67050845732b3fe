"""A Flet app for the leak checks (tests/e2e/test_leaks.py): a counter with a
sync click handler (it runs on the thread pool), a pubsub subscription (global
and on a topic) with a button that sends to everyone, and held sessions that
expire after LEAKS_SESSION_TIMEOUT seconds (default 1).

``GET /leak-stats`` answers what the test compares with its baseline, counted
inside the serving process: its pid (the test reads its fds and threads from
/proc), the loop's asyncio tasks, the executors' threads, flet Session objects
still alive after a full collection, and the registry's entries.

Run: hypercorn tests.apps.leaks:app
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

import flet as ft
from flet.messaging.session import Session
from quart import Quart, current_app

from quart_flet import QuartFlet, flet_blueprint
from quart_flet.session.registry import get_registry

POOLS = ("quart_flet", "asyncio_", "uvloop_", "ThreadPoolExecutor-")
TIMEOUT = float(os.environ.get("LEAKS_SESSION_TIMEOUT", "1"))


async def main(page: ft.Page) -> None:
    counter = ft.Text("0", key="counter")
    log = ft.Column(key="log")

    def increment(e: ft.Event[ft.Button]) -> None:  # sync: the pool runs it
        counter.value = str(int(counter.value or "0") + 1)
        counter.update()

    def on_message(message: str) -> None:
        log.controls[:] = [ft.Text(f"all:{message}")]
        log.update()

    def on_topic(topic: str, message: str) -> None:
        pass

    def send(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all(f"from-{page.session.id[:8]}")
        page.pubsub.send_all_on_topic("news", "x")

    page.pubsub.subscribe(on_message)
    page.pubsub.subscribe_topic("news", on_topic)
    page.add(
        counter,
        ft.Button("add", key="add", on_click=increment),
        ft.Button("send", key="send", on_click=send),
        log,
    )


app = Quart(__name__, static_folder=None)
QuartFlet(app, health_path="/healthz")
app.register_blueprint(flet_blueprint(main, session_timeout_seconds=TIMEOUT))


@app.route("/leak-stats")
async def leak_stats() -> dict[str, Any]:
    gc.collect()
    registry = get_registry(current_app)
    return {
        "pid": os.getpid(),
        "tasks": len(asyncio.all_tasks()),
        # started on demand, kept idle: the Flet pool's and the loop's default
        # executor's (Quart's file bodies; named asyncio_N, or uvloop_N)
        "pool_threads": sum(t.name.startswith(POOLS) for t in threading.enumerate()),
        "max_threads": (registry.executor.max_threads if registry.executor else 0)
        + min(32, (os.cpu_count() or 1) + 4),  # ThreadPoolExecutor's default size
        "sessions": sum(isinstance(o, Session) for o in gc.get_objects()),
        "registry": {
            "sessions": len(registry.sessions),
            "connections": len(registry.connections),
            "tasks": len(registry.tasks),
        },
    }
