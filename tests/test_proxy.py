"""Behind a proxy at a sub-path: hypercorn --root-path plus a url_prefix,
with X-Forwarded-* through ProxyFixMiddleware. The index, the WebSocket URL,
the service worker and the Origin check all follow the public address."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import REGISTER_CLIENT, decode, register_frame
from hypercorn.middleware import ProxyFixMiddleware
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from quart_flet.proxy import proxy_fix

FORWARDED = {"X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"}


@pytest.mark.server
async def test_index_websocket_and_service_worker_behind_a_proxy(hypercorn: Any) -> None:
    server = hypercorn("tests.apps.behind_proxy:app", "--root-path", "/sub", path="/sub/flet-app/")
    async with httpx.AsyncClient(base_url=server.url, headers=FORWARDED) as client:
        index = (await client.get("/sub/flet-app/settings")).text  # a client-side route
        worker = await client.get("/sub/flet-app/flutter_service_worker.js?v=1804020039")
        redirect = await client.get("/sub/flet-app")
    assert re.search(r'<base href="/sub/flet-app/">', index)
    assert 'flet.webSocketEndpoint="/sub/flet-app/ws"' in index
    assert 'flet.canvasKitBaseUrl="/sub/flet-app/canvaskit/"' in index
    assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]
    assert worker.headers["cache-control"] == "no-cache"
    assert redirect.status_code == 308 and redirect.headers["location"].endswith("/sub/flet-app/")

    ws_url = server.url.replace("http", "ws") + "/sub/flet-app/ws"
    async with connect(
        ws_url,
        origin="https://public.example",
        additional_headers=FORWARDED,  # type: ignore[arg-type]
    ) as ws:
        await ws.send(register_frame())
        assert decode(await ws.recv())[0] == REGISTER_CLIENT
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url,
            origin="https://evil.example",
            additional_headers=FORWARDED,  # type: ignore[arg-type]
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_plain_proxy_fix_middleware_breaks_websockets_ours_does_not() -> None:
    """Why quart_flet.proxy exists: X-Forwarded-Proto https turns a WebSocket
    scope's scheme into https, and Quart then routes it as HTTP."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    scope = {"type": "websocket", "scheme": "ws", "headers": [(b"x-forwarded-proto", b"https")]}
    await ProxyFixMiddleware(app)(scope, None, None)
    await proxy_fix(app)(scope, None, None)
    assert seen == ["https", "wss"]
