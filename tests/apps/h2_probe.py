"""The counter app plus a test-only route reporting the HTTP version each
WebSocket arrived on, so a test can tell RFC 8441 (version "2") from h1.1.

Run: hypercorn tests.apps.h2_probe:app --certfile cert.pem --keyfile key.pem
"""

from __future__ import annotations

from quart import Quart, websocket

from examples.counter import main
from quart_flet import flet_blueprint

app = Quart(__name__, static_folder=None)
websocket_versions: list[str] = []


@app.before_websocket
async def record_http_version() -> None:
    websocket_versions.append(websocket.http_version)


@app.get("/_probe/websocket-versions")
async def report() -> dict[str, list[str]]:
    return {"versions": websocket_versions}


app.register_blueprint(flet_blueprint(main))
