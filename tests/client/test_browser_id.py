"""The browser id (the ``flet_browser`` cookie) at the protocol level: the
index gives it to a browser that has none, scoped to the app's mount point
(root path and prefix included) and Secure over https; a WebSocket that comes
without one gets it with the handshake's answer, scoped to where both the
index and the WebSocket are; a WebSocket carrying several (nested mounts)
resumes with any of them."""

from __future__ import annotations

from typing import Any

import flet as ft
import pytest
from conftest import FletTestClient, browser
from quart import Quart
from quart.testing import connections
from quart.utils import decode_headers

from quart_flet import FletApp, FletRoutes, flet_blueprint, quart_app
from quart_flet.client import browserid


def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


class AnswerRecorded(connections.TestWebsocketConnection):
    """Quart's test WebSocket, keeping the headers of the handshake's answer."""

    answer: Any = None

    async def _asgi_send(self, message: Any) -> None:
        if message["type"] == "websocket.accept":
            self.answer = decode_headers(message.get("headers") or [])
        await super()._asgi_send(message)


def browser_cookie(headers: Any) -> str | None:
    found = [c for c in headers.getlist("Set-Cookie") if c.startswith(f"{browserid.COOKIE}=")]
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.mark.parametrize(
    ("prefix", "root_path", "path"),
    [("", "", "/"), ("/flet-app", "", "/flet-app/"), ("/flet-app", "/sub", "/sub/flet-app/")],
)
async def test_the_index_gives_a_new_browser_its_id_at_the_mount_point(
    prefix: str, root_path: str, path: str
) -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main), url_prefix=prefix or None)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        first = await client.get(f"{root_path}{prefix}/", root_path=root_path)
        cookie = browser_cookie(first.headers)
        assert cookie is not None
        value = cookie.split(";")[0].split("=", 1)[1]
        assert len(value) >= 43  # 256 random bits
        for attribute in (f"Path={path}", "HttpOnly", "SameSite=Lax"):
            assert attribute in cookie, cookie
        assert "Secure" not in cookie and "Max-Age" not in cookie and "Expires" not in cookie
        assert first.headers["Cache-Control"] == "private, no-cache"
        # the browser has it now: the next page load gives none, and may be shared
        again = await client.get(f"{root_path}{prefix}/store", root_path=root_path)
        assert browser_cookie(again.headers) is None
        assert again.headers["Cache-Control"] == "no-cache"
        secure = await test_app.test_client().get(
            f"{root_path}{prefix}/", root_path=root_path, scheme="https"
        )
        assert "Secure" in (browser_cookie(secure.headers) or "")


async def test_a_websocket_without_an_id_gets_one_with_its_answer_and_resumes_with_it() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        client.websocket_connection_class = AnswerRecorded
        async with client.websocket("/ws") as ws:
            first = FletTestClient(ws)
            await first.register()
            cookie = browser_cookie(ws.answer)
        assert cookie is not None and "Path=/" in cookie and "HttpOnly" in cookie
        # a browser keeps it (Chromium does): its next WebSocket resumes
        name, value = cookie.split(";")[0].split("=", 1)
        client.set_cookie("localhost", name, value)
        async with client.websocket("/ws") as ws:
            again = FletTestClient(ws)
            await again.register(first.session_id)
            assert browser_cookie(ws.answer) is None  # it has one: nothing new
        assert again.session_id == first.session_id

        secure = test_app.test_client()
        secure.websocket_connection_class = AnswerRecorded
        async with secure.websocket("/ws", scheme="wss") as ws:
            await FletTestClient(ws).register()
            assert "Secure" in (browser_cookie(ws.answer) or "")


async def test_own_routes_get_the_id_where_the_index_and_the_websocket_both_are() -> None:
    app = Quart(__name__)
    hello = FletApp(main, routes=FletRoutes(index="page", websocket="socket"), app=app)

    @app.get("/apps/hello/", defaults={"path": ""})
    @app.get("/apps/hello/<path:path>")
    async def page(path: str) -> Any:
        return await hello.static_files(path)

    @app.websocket("/apps/sockets/hello")
    async def socket() -> None:
        await hello.handle()

    async with app.test_app() as test_app:
        index = await test_app.test_client().get("/apps/hello/")
        assert "Path=/apps/;" in (browser_cookie(index.headers) or "")
        client = test_app.test_client()
        client.websocket_connection_class = AnswerRecorded
        async with client.websocket("/apps/sockets/hello") as ws:
            await FletTestClient(ws).register()
            assert "Path=/apps/;" in (browser_cookie(ws.answer) or "")


async def test_a_websocket_with_the_ids_of_two_mount_points_resumes_with_either() -> None:
    # an app at '/' and one at '/sub/': a WebSocket to /sub/ws carries the
    # cookies of both paths, the most specific first
    app = quart_app(main)
    async with app.test_app() as test_app:
        owner = browser(test_app)
        async with owner.websocket("/ws") as ws:
            first = FletTestClient(ws)
            await first.register()
        (mine,) = [c.value for c in owner.cookie_jar if c.name == browserid.COOKIE]
        other = browserid.new_id()
        both = f"{browserid.COOKIE}={other}; {browserid.COOKIE}={mine}"
        async with app.test_client(use_cookies=False).websocket(
            "/ws", headers={"Cookie": both}
        ) as ws:
            again = FletTestClient(ws)
            await again.register(first.session_id)
        assert again.session_id == first.session_id


def test_the_cookie_path_is_the_directory_the_index_and_the_websocket_share() -> None:
    assert browserid.cookie_path("/", "/ws") == "/"
    assert browserid.cookie_path("/flet-app/", "/flet-app/ws") == "/flet-app/"
    assert browserid.cookie_path("/sub/flet-app/", "/sub/flet-app/ws") == "/sub/flet-app/"
    assert browserid.cookie_path("/hello/", "/sockets/hello") == "/"
    assert browserid.cookie_path("/a/b/", "/a/ws") == "/a/"
    assert browserid.cookie_path("/a/", "/a/deeper/ws") == "/a/"


def test_only_servers_that_send_accept_headers_are_given_the_cookie() -> None:
    assert browserid.accepts_headers({"asgi": {"spec_version": "2.3"}})  # Hypercorn
    assert browserid.accepts_headers({"asgi": {"spec_version": "2.1"}})
    assert not browserid.accepts_headers({"asgi": {"version": "3.0"}})  # Daphne: 2.0
    assert not browserid.accepts_headers({})
