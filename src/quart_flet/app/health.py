"""Liveness and readiness for probes and load balancers: ``health_path`` and
``ready_path`` of QuartFlet, or these blocks on routes of your own
(``return await liveness()``). Readiness turns 503 the moment a graceful stop
begins (SIGTERM, one process or ``--workers N``), before the Flet sockets close.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Response, current_app, jsonify

from quart_flet.session.registry import EXTENSION_KEY, FletRegistry


def _registry() -> FletRegistry | None:
    registry = current_app.extensions.get(EXTENSION_KEY)
    return registry if isinstance(registry, FletRegistry) else None


def status(registry: FletRegistry | None) -> dict[str, Any]:
    """What a probe's body says: the state and the counts an operator looks at first."""
    if registry is None:
        return {"status": "no Flet app", "sessions": {"live": 0, "held": 0}, "connections": 0}
    live = sum(entry.connection is not None for entry in registry.sessions.values())
    body: dict[str, Any] = {
        "status": "ok" if registry.ready else ("stopping" if registry.stopping else "starting"),
        "sessions": {"live": live, "held": len(registry.sessions) - live},
        "connections": len(registry.connections),
    }
    if registry.executor is not None:
        executor = registry.executor
        body["pool"] = {
            "threads": executor.max_threads,
            "busy": executor.busy,
            "queued": executor.queued,
        }
    connected = getattr(registry.backend, "connected", None)
    if connected is not None:
        body["redis"] = {"connected": connected}
    return body


async def liveness() -> Response:
    """200 while the event loop answers, with how long it took to get a turn
    (a loop kept busy by blocking code answers late, or not at all)."""
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await asyncio.sleep(0)  # one trip through the loop's ready queue
    body = status(_registry())
    body["loop_lag_seconds"] = round(loop.time() - asked, 6)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


async def readiness() -> Response:
    """200 while serving; 503 before startup and from the start of a graceful stop."""
    registry = _registry()
    response = jsonify(status(registry))
    response.status_code = 200 if registry is not None and registry.ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
