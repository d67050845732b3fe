"""The sticky counter (its page shows the pid of the worker holding the
session) and a ``POST /drop`` that closes every Flet socket of the worker
that takes the request with 1012, as a restart or a network blip would: the
Flet client reconnects with its session id.

Run: hypercorn --workers 2 tests.apps.workers:app
"""

from __future__ import annotations

import os

from quart_flet import quart_app
from quart_flet.session.registry import get_registry
from tests.apps.sticky import main

app = quart_app(main)


@app.post("/drop")
async def drop() -> dict[str, int]:
    registry = get_registry(app)
    dropped = len(registry.connections)
    registry.close_connections(1012, "dropped by the test")
    return {"pid": os.getpid(), "dropped": dropped}
