"""The counter with readiness on and a drain (FLET_DRAIN_SECONDS), whose
``on_drain`` hook shows a notice on the page; plus a test-only route: an
in-flight readiness probe that answers once a graceful stop began, with the
worker's pid and the wall-clock time readiness turned off in it. One probe
waits per worker; a second one in the same worker is answered 409 at once, so
a test can keep asking until every worker holds one.

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
stop_began: asyncio.Event | None = None  # made in the worker's serving loop
_server_stopping = registry.server_stopping


def _recording_server_stopping() -> None:
    stopped_at.append(time.time())
    _server_stopping()
    if stop_began is not None:
        stop_began.set()


registry.server_stopping = _recording_server_stopping  # type: ignore[method-assign]


@app.get("/_probe/ready-once-stopping")
async def ready_once_stopping() -> Response:
    global stop_began
    if stop_began is not None:
        return Response("a probe already waits in this worker", 409)
    stop_began = asyncio.Event()
    if registry.stopping:
        stop_began.set()
    print(f"probe waiting for the stop in {os.getpid()}", flush=True)
    try:
        await asyncio.wait_for(stop_began.wait(), 20)
    except TimeoutError:
        pass  # readiness then still answers 200, which the test reports
    response = await QuartFlet.readiness()
    response.headers["X-Worker"] = str(os.getpid())
    response.headers["X-Stopped-At"] = repr(stopped_at[0] if stopped_at else None)
    return response
