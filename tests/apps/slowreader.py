"""A pubsub chat where one browser is flooded, for the slow-reader tests.

Every session shows the last chat line it received (``say`` sends
``<n>`` to everyone with ``page.pubsub.send_all``; the handler is sync, so
deliveries run in batches on the app's pool). A session at route
``/flood/<topic>`` also subscribes to ``<topic>``, whose handler puts each
message in a Text of its own and updates it: ``POST
/flood?topics=T,U&messages=N&size=S&interval=I`` sends N random texts of S
bytes to each of the topics (a text of its own to each), I seconds apart (by
default as fast as the loop lets it), from a task of the server. ``GET
/stats`` reports what the tests wait on and measure: live connections and
sessions, the flood's progress, close codes, tasks, open files, and this
process's memory (``?collect=1`` collects garbage first, ``?trim=1`` has
glibc give freed heap pages back, ``?reset_peak=1`` starts the peak again
from now; with PYTHONTRACEMALLOC=1, ``traced`` is what Python objects hold).

Run: hypercorn tests/apps/slowreader.py:app
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import gc
import os
import random
import tracemalloc
from typing import Any

import flet as ft
from quart import Quart, request

from quart_flet import flet_blueprint
from quart_flet.stats import STATS

flood = {"sent": 0}

# random text, which permessage-deflate cannot shrink on the wire: a flood's
# texts are copies of stretches of it (a copy is cheaper than new randomness)
RANDOM_TEXT = base64.b64encode(random.randbytes(3 * 1024 * 1024)).decode("ascii")


def random_text(size: int) -> str:
    start = random.randrange(len(RANDOM_TEXT) - size)
    return RANDOM_TEXT[start : start + size]


async def main(page: ft.Page) -> None:
    line = ft.Text("", key="line")
    said = 0

    def on_line(message: str) -> None:  # sync: batched on the pool
        line.value = message
        page.update()

    def say(e: ft.Event[ft.Button]) -> None:
        nonlocal said
        said += 1
        page.pubsub.send_all(f"{page.session.id[:8]}:{said}")

    page.pubsub.subscribe(on_line)
    page.add(line, ft.Button("say", on_click=say, key="say"))
    if page.route.startswith("/flood/"):
        flooded = ft.Text("", key="flood")

        def on_flood(topic: str, message: str) -> None:
            flooded.value = message
            flooded.update()

        page.pubsub.subscribe_topic(page.route.removeprefix("/flood/"), on_flood)
        page.add(flooded)


app = Quart(__name__, static_folder=None)
app.register_blueprint(
    flet_blueprint(
        main,
        max_send_buffer=int(os.environ.get("FLET_MAX_SEND_BUFFER", str(2 * 1024 * 1024))),
    )
)


async def _flood(topics: list[str], messages: int, size: int, interval: float) -> None:
    registry = app.extensions["quart_flet"]
    hub = registry.hub(next(iter(registry.mounts)))  # the one Flet app's
    for _ in range(messages):
        for topic in topics:  # a text of its own for each
            hub.send_all_on_topic(topic, random_text(size))
        flood["sent"] += 1
        await asyncio.sleep(interval)  # 0: let the deliveries and other clients run


@app.post("/flood")
async def start_flood() -> dict[str, Any]:
    topics = request.args.get("topics", "flood").split(",")
    messages = int(request.args.get("messages", "500"))
    size = int(request.args.get("size", str(256 * 1024)))
    interval = float(request.args.get("interval", "0"))
    app.extensions["quart_flet"].spawn(_flood(topics, messages, size, interval))
    return {"topics": topics, "messages": messages, "size": size, "interval": interval}


def _memory() -> dict[str, int]:
    memory = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                memory[name] = int(value.split()[0]) * 1024
    return memory


@app.get("/stats")
async def stats() -> dict[str, Any]:
    registry = app.extensions["quart_flet"]
    objects = None
    if request.args.get("collect"):
        gc.collect()
        objects = len(gc.get_objects())  # every object the collector tracks
    if request.args.get("trim"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give freed heap pages back
    if request.args.get("reset_peak"):
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # VmHWM starts again from VmRSS
    memory = _memory()
    return {
        "connections": len(registry.connections),
        "sessions": len(registry.sessions),
        "flood_sent": flood["sent"],
        "send_buffer_drops": STATS.send_buffer_drops,
        "closes": dict(STATS.closes),
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        # with PYTHONTRACEMALLOC=1: what Python objects hold, whatever the allocator keeps
        "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
        "objects": objects,
        "rss": memory["VmRSS"],
        "peak_rss": memory["VmHWM"],
    }
