"""The examples on a real Hypercorn server (subprocess), hit with real
clients: httpx for HTTP and `websockets` speaking the Flet protocol."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from conftest import (
    PATCH_CONTROL,
    REGISTER_CLIENT,
    contains,
    decode,
    encode,
    find_controls,
    register_frame,
)
from websockets.asyncio.client import ClientConnection, connect

pytestmark = pytest.mark.server

CONTROL_EVENT = 3


def base_href(html: str) -> str:
    found = re.search(r'<base href="([^"]*)"', html)
    assert found is not None, html[:500]
    return found.group(1)


async def receive_until(ws: ClientConnection, predicate: Any, timeout: float = 15) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            message = decode(await ws.recv())
            if predicate(message):
                return message


async def register_and_render(ws_url: str, text: str) -> tuple[ClientConnection, Any]:
    """Register a new session and wait for main's first render containing ``text``."""
    ws = await connect(ws_url, max_size=None)
    await ws.send(register_frame())
    reply = await receive_until(ws, lambda m: m[0] == REGISTER_CLIENT)
    assert reply[1]["error"] == ""
    assert reply[1]["session_id"]
    render = await receive_until(ws, lambda m: m[0] == PATCH_CONTROL and contains(m[1], text))
    return ws, render


async def test_counter_serves_index_and_counts_over_a_real_websocket(hypercorn: Any) -> None:
    server = hypercorn("examples.counter:app")
    async with httpx.AsyncClient(base_url=server.url) as http:
        index = await http.get("/")
        assert index.status_code == 200
        assert base_href(index.text) == "/"
        assert 'flet.webSocketEndpoint="/ws"' in index.text
        wasm = await http.get("/main.dart.wasm")
        assert wasm.status_code == 200
        assert wasm.headers["content-type"] == "application/wasm"
        assert (await http.get("/nope.js")).status_code == 404

    ws, render = await register_and_render(server.url.replace("http", "ws") + "/ws", "Counter:")
    try:
        (fab,) = find_controls(render, _c="FloatingActionButton")
        (counter,) = find_controls(render, key="counter")
        assert counter["value"] == "0"
        await ws.send(encode(CONTROL_EVENT, {"target": fab["_i"], "name": "click", "data": None}))
        patch = await receive_until(ws, lambda m: m[0] == PATCH_CONTROL and contains(m[1], "1"))
        assert patch[1]["id"] == counter["_i"]
        assert [0, 0, "value", "1"] in patch[1]["patch"]
    finally:
        await ws.close()
    assert "Traceback" not in server.log()


async def test_two_apps_are_both_reachable(hypercorn: Any) -> None:
    server = hypercorn("examples.two_apps:app")
    async with httpx.AsyncClient(base_url=server.url) as http:
        root = await http.get("/")
        sub = await http.get("/sub-app/")
        assert base_href(root.text) == "/"
        assert base_href(sub.text) == "/sub-app/"
        assert 'flet.webSocketEndpoint="/sub-app/ws"' in sub.text
        redirect = await http.get("/sub-app?x=1")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == "/sub-app/?x=1"

    ws_base = server.url.replace("http", "ws")
    counter_ws, _ = await register_and_render(ws_base + "/ws", "Counter:")
    greeter_ws, render = await register_and_render(ws_base + "/sub-app/ws", "Greeter")
    try:
        assert not contains(render, "Counter:")
    finally:
        await counter_ws.close()
        await greeter_ws.close()


async def test_root_path_reaches_the_index_and_websocket(hypercorn: Any) -> None:
    server = hypercorn("examples.counter:app", "--root-path", "/root", path="/root/")
    async with httpx.AsyncClient(base_url=server.url) as http:
        index = await http.get("/root/")
        assert index.status_code == 200
        assert base_href(index.text) == "/root/"
        assert 'flet.webSocketEndpoint="/root/ws"' in index.text
        assert (await http.get("/root/flutter.js")).status_code == 200

    ws, _ = await register_and_render(server.url.replace("http", "ws") + "/root/ws", "Counter:")
    await ws.close()
