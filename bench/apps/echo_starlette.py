"""A bare WebSocket echo on Starlette (what flet_web.fastapi runs on): the
per-message cost of the uvicorn + Starlette stack alone."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("echo")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_bytes(await websocket.receive_bytes())


app = Starlette(routes=[Route("/", index), WebSocketRoute("/ws", echo)])
