"""Behind a proxy at a sub-path: hypercorn --root-path plus a url_prefix,
with X-Forwarded-* through ProxyFixMiddleware. The index, the WebSocket URL,
the service worker and the Origin check all follow the public address."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from conftest import REGISTER_CLIENT, decode, register_frame
from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from examples.counter import main
from quart_flet import flet_blueprint
from quart_flet.asgi.proxy import proxy_fix

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
    # versioned by content: /sub/flet-app/_v/<hash>/canvaskit/
    assert re.search(r'flet\.canvasKitBaseUrl="/sub/flet-app/_v/[0-9a-f]+/canvaskit/"', index)
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
    """Why quart_flet.asgi.proxy exists: X-Forwarded-Proto https turns a WebSocket
    scope's scheme into https, and Quart then routes it as HTTP."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    scope = {"type": "websocket", "scheme": "ws", "headers": [(b"x-forwarded-proto", b"https")]}
    await ProxyFixMiddleware(app)(scope, None, None)
    await proxy_fix(app)(scope, None, None)
    assert seen == ["https", "wss"]


@pytest.mark.parametrize(
    ("scope_type", "forwarded", "expected"),
    [
        ("websocket", "https", "wss"),
        ("websocket", "HTTPS", "wss"),
        ("websocket", "wss", "wss"),
        ("websocket", "http", "ws"),
        ("websocket", "ws", "ws"),
        ("websocket", "ftp", "ws"),
        ("websocket", "", "ws"),
        ("websocket", "a b c", "ws"),
        ("http", "https", "https"),
        ("http", "wss", "https"),
        ("http", "ws", "http"),
        ("http", "ftp", "http"),
        ("http", "", "http"),
    ],
)
async def test_proxy_fix_keeps_the_scheme_of_the_scope_type(
    scope_type: str, forwarded: str, expected: str
) -> None:
    """Whatever X-Forwarded-Proto says, a WebSocket stays ws/wss and an HTTP
    request http/https: Quart routes on the scheme."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    headers = [(b"x-forwarded-proto", forwarded.encode())]
    await proxy_fix(app)({"type": scope_type, "scheme": "http", "headers": headers}, None, None)
    assert seen == [expected]


def _behind_proxy() -> tuple[Quart, Any]:
    """tests/apps/behind_proxy.py, built afresh: (the Quart app, the ASGI app)."""
    quart_app = Quart(__name__)
    quart_app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
    return quart_app, proxy_fix(quart_app, mode="legacy", trusted_hops=1)


class _Asgi:
    """Drives one ASGI connection through ``asgi`` (the proxy_fix-wrapped app)
    inside a started ``quart_app``; collects what the app sends."""

    def __init__(self, asgi: Any) -> None:
        self.asgi = asgi

    async def call(
        self, scope_type: str, path: str, headers: dict[str, str], method: str = "GET"
    ) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        if scope_type == "websocket":
            inbox.put_nowait({"type": "websocket.connect"})
        else:
            inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "websocket.accept" or (
                message["type"].endswith("response.body") and not message.get("more_body")
            ):
                inbox.put_nowait(
                    {"type": "websocket.disconnect", "code": 1000}
                    if scope_type == "websocket"
                    else {"type": "http.disconnect"}
                )

        scope = {
            "type": scope_type,
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "ws" if scope_type == "websocket" else "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost")]
            + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
            "state": {},
        }
        await asyncio.wait_for(self.asgi(scope, inbox.get, send), 10)
        return sent


def _status(sent: list[dict[str, Any]]) -> int:
    first = sent[0]
    return 101 if first["type"] == "websocket.accept" else int(first["status"])


def _body(sent: list[dict[str, Any]]) -> Any:
    return json.loads(b"".join(m.get("body", b"") for m in sent if "body" in m))


@pytest.mark.parametrize("proto", ["ftp", "", "a b c", "HTTP", "https"])
async def test_websocket_with_an_odd_forwarded_proto_is_served(proto: str) -> None:
    quart_app, asgi = _behind_proxy()
    async with quart_app.test_app():
        sent = await _Asgi(asgi).call("websocket", "/flet-app/ws", {"X-Forwarded-Proto": proto})
    assert _status(sent) == 101, sent


@pytest.mark.parametrize("proto", ["ws", "wss", "ftp", ""])
async def test_http_with_an_odd_forwarded_proto_is_not_a_500(proto: str) -> None:
    quart_app, asgi = _behind_proxy()
    async with quart_app.test_app():
        client = _Asgi(asgi)
        for path, status in (
            ("/flet-app/ws", 426),
            ("/flet-app/", 200),
            ("/flet-app/main.dart.js", 200),
        ):
            sent = await client.call("http", path, {"X-Forwarded-Proto": proto})
            assert _status(sent) == status, (path, sent)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Host": "[::1", "Origin": "http://[::1"},
        {"X-Forwarded-Host": "[::1", "Origin": "http://[::1]"},
        {"X-Forwarded-Host": "[::1", "Origin": "https://public.example"},
        {"X-Forwarded-Host": "public.example", "Origin": "http://[::1"},
    ],
)
async def test_unparsable_forwarded_host_or_origin_is_a_json_403(headers: dict[str, str]) -> None:
    quart_app, asgi = _behind_proxy()
    async with quart_app.test_app():
        sent = await _Asgi(asgi).call("websocket", "/flet-app/ws", headers)
    assert _status(sent) == 403, sent
    assert _body(sent)["status"] == 403
