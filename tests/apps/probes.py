"""The counter with quart-flet's probes and metrics on, plus a test-only
route: an in-flight readiness probe that answers once a graceful stop began,
with what readiness said at the moment the Flet sockets started to close.

Run: hypercorn tests.apps.probes:app
"""

from __future__ import annotations

import asyncio

from quart import Quart, Response

from examples.counter import main
from quart_flet import QuartFlet, flet_blueprint
from quart_flet.session.registry import get_registry

app = Quart(__name__, static_folder=None)
QuartFlet(app, health_path="/healthz", ready_path="/readyz", metrics_path="/metrics")
app.register_blueprint(flet_blueprint(main))

registry = get_registry(app)
ready_when_sockets_closed: list[bool] = []
_close_connections = registry.close_connections


def _recording_close_connections() -> None:
    ready_when_sockets_closed.append(registry.ready)
    _close_connections()


registry.close_connections = _recording_close_connections  # type: ignore[method-assign]


@app.get("/_probe/ready-once-stopping")
async def ready_once_stopping() -> Response:
    print("probe waiting for the stop", flush=True)  # the test sends SIGTERM on this line
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not registry.stopping and loop.time() < deadline:
        await asyncio.sleep(0.01)  # bounded polling for the stop, not synchronisation
    response = await QuartFlet.readiness()
    response.headers["X-Ready-When-Sockets-Closed"] = ",".join(
        str(ready) for ready in ready_when_sockets_closed
    )
    return response
