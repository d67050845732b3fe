"""A bare WebSocket echo on Quart, reading and sending the way quart_flet's
transport does: the per-message cost of the Hypercorn + Quart stack alone."""

from typing import Any

from quart import Quart, websocket

app = Quart(__name__, static_folder=None)


@app.route("/")
async def index() -> str:
    return "echo"


@app.websocket("/ws")
async def echo() -> None:
    await websocket.accept()
    ws: Any = websocket._get_current_object()  # type: ignore[attr-defined]
    receive, send = ws._receive, ws._send
    while True:
        await send(await receive())
