"""Security headers and the WebSocket Origin check: COOP same-origin and COEP
credentialless on the web client by default (off or require-corp when asked),
CORS only when asked for, and a WebSocket from a foreign Origin refused with
403."""

from __future__ import annotations

from typing import Any

import flet as ft
import pytest
from conftest import REGISTER_CLIENT, FletTestClient, decode, register_frame
from quart import Quart
from quart.testing import WebsocketResponseError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from quart_flet import OptionError, quart_app
from quart_flet.http.headers import origin_allowed
from quart_flet.options import resolve_options


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


async def headers_of(app: Quart, path: str, **kwargs: Any) -> Any:
    async with app.test_app() as test_app:
        return (await test_app.test_client().get(path, **kwargs)).headers


COOP, COEP = "Cross-Origin-Opener-Policy", "Cross-Origin-Embedder-Policy"
# the index, a client file, a worker script and a deep link (the SPA fallback)
CLIENT_PATHS = ["/", "/flutter_bootstrap.js", "/main.dart.mjs", "/canvaskit/skwasm.js", "/store"]


@pytest.mark.parametrize("path", CLIENT_PATHS)
async def test_web_client_is_cross_origin_isolated_credentialless_by_default(path: str) -> None:
    headers = await headers_of(quart_app(main), path, headers={"Origin": "https://other.example"})
    assert headers[COOP] == "same-origin"
    assert headers[COEP] == "credentialless"
    assert "Access-Control-Allow-Origin" not in headers


async def test_isolation_headers_on_a_304_too() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        etag = (await client.get("/flutter_bootstrap.js")).headers["ETag"]
        again = await client.get("/flutter_bootstrap.js", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers[COEP] == "credentialless"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope.js"), ("POST", "/"), ("PUT", "/upload"), ("GET", "/oauth_callback")],
)
async def test_json_errors_and_other_routes_carry_no_isolation_headers(
    method: str, path: str
) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        response = await test_app.test_client().open(path, method=method)
        assert response.status_code >= 400
        assert response.mimetype == "application/json"
        assert "error" in await response.get_json()
        assert COOP not in response.headers and COEP not in response.headers


@pytest.mark.parametrize("value", [False, "false", "0", "off", "No"])
async def test_isolation_off_sends_no_isolation_headers(value: Any) -> None:
    for path in ("/", "/main.dart.mjs"):
        headers = await headers_of(quart_app(main, cross_origin_isolation=value), path)
        assert COOP not in headers and COEP not in headers


async def test_isolation_off_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLET_CROSS_ORIGIN_ISOLATION", "false")
    headers = await headers_of(quart_app(main, cross_origin_isolation="require-corp"), "/")
    assert COOP not in headers and COEP not in headers


@pytest.mark.parametrize("path", ["/", "/main.dart.mjs"])
async def test_strict_require_corp_when_asked(path: str) -> None:
    headers = await headers_of(quart_app(main, cross_origin_isolation="require-corp"), path)
    assert headers[COOP] == "same-origin"
    assert headers[COEP] == "require-corp"


@pytest.mark.parametrize(
    ("value", "resolved"),
    [
        (True, "credentialless"),
        ("true", "credentialless"),
        ("Credentialless", "credentialless"),
        (" REQUIRE-CORP ", "require-corp"),
        (False, False),
        ("0", False),
    ],
)
def test_isolation_values(value: Any, resolved: Any) -> None:
    assert resolve_options(cross_origin_isolation=value).cross_origin_isolation == resolved
    env = {"FLET_CROSS_ORIGIN_ISOLATION": str(value)}
    assert resolve_options(env).cross_origin_isolation == resolved
    assert resolve_options().cross_origin_isolation == "credentialless"


@pytest.mark.parametrize("value", ["require_corp", "unsafe-none", "maybe", 2, None])
def test_bad_isolation_value_fails_naming_the_option(value: Any) -> None:
    with pytest.raises(OptionError, match=r"cross_origin_isolation: .*require-corp"):
        quart_app(main, cross_origin_isolation=value)
    with pytest.raises(
        OptionError, match=r"cross_origin_isolation \(from FLET_CROSS_ORIGIN_ISOLATION\)"
    ):
        resolve_options({"FLET_CROSS_ORIGIN_ISOLATION": "strict"})


async def test_cors_star_only_when_asked() -> None:
    headers = await headers_of(quart_app(main, cors_allow_origin="*"), "/main.dart.mjs")
    assert headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [("https://b.example", "https://b.example"), ("https://evil.example", None)],
)
async def test_cors_list_echoes_a_listed_origin(origin: str, expected: str | None) -> None:
    app = quart_app(main, cors_allow_origin="https://a.example, https://b.example")
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
    app = quart_app(main)
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
    app = quart_app(main, allowed_origins="https://portal.example")
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
