"""The counter with readiness on and a drain (FLET_DRAIN_SECONDS), whose
``on_drain`` hook shows a notice on the page; plus a test-only route: an
in-flight readiness probe that answers once a graceful stop began, with the
worker's pid and the wall-clock time readiness turned off in it.

Run: FLET_DRAIN_SECONDS=2 hypercorn tests.apps.drain:app
"""

from __future__ import annotations

import asyncio
import os
import time

import flet as ft
from quart import Quart, Response

from examples.counter import main
from quart_flet import QuartFlet, flet_blueprint
from quart_flet.session.registry import get_registry

app = Quart(__name__, static_folder=None)
QuartFlet(app, ready_path="/readyz")


async def on_drain(page: ft.Page, seconds_left: float) -> None:
    page.add(ft.Text(f"Restarting in {seconds_left:g} s", key="drain-notice"))


app.register_blueprint(flet_blueprint(main, on_drain=on_drain))
registry = get_registry(app)
stopped_at: list[float] = []
_server_stopping = registry.server_stopping


def _recording_server_stopping() -> None:
    stopped_at.append(time.time())
    _server_stopping()


registry.server_stopping = _recording_server_stopping  # type: ignore[method-assign]


@app.get("/_probe/ready-once-stopping")
async def ready_once_stopping() -> Response:
    print(f"probe waiting for the stop in {os.getpid()}", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not registry.stopping and loop.time() < deadline:
        await asyncio.sleep(0.01)  # bounded polling for the stop, not synchronisation
    response = await QuartFlet.readiness()
    response.headers["X-Worker"] = str(os.getpid())
    response.headers["X-Stopped-At"] = repr(stopped_at[0] if stopped_at else None)
    return response
