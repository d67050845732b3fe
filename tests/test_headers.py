"""Security headers and the WebSocket Origin check: COOP/COEP and CORS only
when asked for, and a WebSocket from a foreign Origin refused with 403."""

from __future__ import annotations

from typing import Any

import flet as ft
import pytest
from conftest import REGISTER_CLIENT, FletTestClient, decode, register_frame
from quart import Quart
from quart.testing import WebsocketResponseError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from quart_flet import flet_app
from quart_flet.security import origin_allowed


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


async def headers_of(app: Quart, path: str, **kwargs: Any) -> Any:
    async with app.test_app() as test_app:
        return (await test_app.test_client().get(path, **kwargs)).headers


@pytest.mark.parametrize("path", ["/", "/flutter_bootstrap.js", "/nope.js"])
async def test_no_isolation_or_cors_headers_by_default(path: str) -> None:
    headers = await headers_of(flet_app(main), path, headers={"Origin": "https://other.example"})
    for name in ("Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy"):
        assert name not in headers
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize("path", ["/", "/main.dart.mjs"])
async def test_cross_origin_isolation_when_asked(path: str) -> None:
    headers = await headers_of(flet_app(main, cross_origin_isolation=True), path)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


async def test_cors_star_only_when_asked() -> None:
    headers = await headers_of(flet_app(main, cors_allow_origin="*"), "/main.dart.mjs")
    assert headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [("https://b.example", "https://b.example"), ("https://evil.example", None)],
)
async def test_cors_list_echoes_a_listed_origin(origin: str, expected: str | None) -> None:
    app = flet_app(main, cors_allow_origin="https://a.example, https://b.example")
    headers = await headers_of(app, "/", headers={"Origin": origin})
    assert headers.get("Access-Control-Allow-Origin") == expected
    assert "Origin" in headers["Vary"]


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed", "ok"),
    [
        (None, "app.example", "ws", (), True),  # not a browser
        ("https://app.example", "app.example", "ws", (), True),  # TLS ended at a proxy
        ("https://app.example", "app.example:443", "wss", (), True),
        ("http://app.example:8080", "app.example:8080", "ws", (), True),
        ("https://APP.example/", "app.example", "wss", (), True),
        ("https://evil.example", "app.example", "wss", (), False),
        ("https://app.example.evil.example", "app.example", "wss", (), False),
        ("http://app.example:8081", "app.example:8080", "ws", (), False),
        ("null", "app.example", "wss", (), False),
        ("https://other.example", "app.example", "wss", ("https://other.example",), True),
        ("https://evil.example", "app.example", "wss", ("*",), True),
    ],
)
def test_origin_rule(
    origin: str | None, host: str, scheme: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_allowed(origin, host, scheme, allowed) is ok


async def test_websocket_from_a_foreign_origin_is_refused_with_403() -> None:
    app = flet_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket("/ws", headers={"Origin": "https://evil.example"}) as ws:
                await ws.send(b"\x00")
        assert refused.value.response.status_code == 403
        # the page's own origin, and a listed one, get through and register
        async with client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
            assert (await FletTestClient(ws).register())[1]["session_id"]


async def test_allowed_origins_admit_another_site() -> None:
    app = flet_app(main, allowed_origins="https://portal.example")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        async with client.websocket("/ws", headers={"Origin": "https://portal.example"}) as ws:
            assert (await FletTestClient(ws).register())[1]["session_id"]


@pytest.mark.server
async def test_real_handshake_from_a_foreign_origin_gets_http_403(hypercorn: Any) -> None:
    server = hypercorn("examples.counter:app")
    ws_url = server.url.replace("http", "ws") + "/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws_url, origin=server.url) as ws:  # type: ignore[arg-type]
        await ws.send(register_frame())
        assert decode(await ws.recv())[0] == REGISTER_CLIENT
