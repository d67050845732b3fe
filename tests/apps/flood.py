"""A Flet app that floods its client, for the slow-consumer test.

A session registered at route "/flood" gets FLOOD_FRAMES updates of about
FLOOD_SIZE bytes each, as fast as the server can produce them; any other route
gets the counter. ``GET /stats`` reports what the test waits on and measures:
live connections and sessions, floods done, and this process's memory.

Run: hypercorn tests/apps/flood.py:app
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import flet as ft
from quart import Quart

from examples.counter import main as counter_main
from quart_flet import flet_blueprint

FRAMES = int(os.environ.get("FLOOD_FRAMES", "400"))
SIZE = int(os.environ.get("FLOOD_SIZE", str(256 * 1024)))

floods = {"started": 0, "done": 0, "updates": 0}


async def main(page: ft.Page) -> None:
    if page.route != "/flood":
        await counter_main(page)
        return
    floods["started"] += 1
    text = ft.Text("", key="flood")
    page.add(text)
    try:
        for _ in range(FRAMES):
            # random text: permessage-deflate cannot shrink it on the wire
            text.value = secrets.token_urlsafe(SIZE * 3 // 4)
            text.update()
            floods["updates"] += 1
            await asyncio.sleep(0)  # let the send loop and other clients run
    finally:
        floods["done"] += 1


app = Quart(__name__, static_folder=None)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    registry = app.extensions["quart_flet"]
    memory = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                memory[name] = int(value.split()[0]) * 1024
    return {
        "connections": len(registry.connections),
        "sessions": len(registry.sessions),
        **floods,
        "rss": memory["VmRSS"],
        "peak_rss": memory["VmHWM"],
    }


app.register_blueprint(
    flet_blueprint(
        main,
        max_send_buffer=int(os.environ.get("FLOOD_MAX_SEND_BUFFER", str(1024 * 1024))),
        max_message_size=int(os.environ.get("FLOOD_MAX_MESSAGE_SIZE", str(64 * 1024))),
    )
)
