"""Refusals that must stay clean: an unparsable Origin on the WebSocket
handshake is a 403 (not a 500), and HTTP errors on a Flet blueprint's routes
(a 405 to the client's files, say) are JSON inside a user's own Quart app,
while the user's own routes keep the app's error pages."""

from __future__ import annotations

from typing import Any

import flet as ft
import pytest
from conftest import FletTestClient
from quart import Quart
from quart.testing import WebsocketResponseError

from examples import existing_quart_app, two_apps
from quart_flet import flet_blueprint, quart_app
from quart_flet.http.headers import origin_allowed


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


@pytest.mark.parametrize(
    "origin",
    ["http://[::1", "http://[::1:8000", "https://[", "http://]", "http://[v1.fe80::a+en1]"],
)
def test_an_unparsable_origin_is_not_allowed(origin: str) -> None:
    assert origin_allowed(origin, "localhost", "ws", ()) is False
    assert origin_allowed(origin, "[::1", "ws", ()) is False
    assert origin_allowed(origin, "localhost", "ws", ("*",)) is True  # any, as asked


async def test_an_unparsable_origin_gets_a_json_403_on_the_handshake() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for origin in ("http://[::1", "http://[::1]:80:x["):
            with pytest.raises(WebsocketResponseError) as refused:
                async with client.websocket("/ws", headers={"Origin": origin}) as ws:
                    await ws.send(b"\x00")
            response = refused.value.response
            assert response.status_code == 403
            assert response.headers["Content-Type"] == "application/json"
            body = await response.get_json()
            assert body["status"] == 403 and "Origin" in body["error"]
        # the server is fine afterwards
        async with client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
            assert (await FletTestClient(ws).register())[1]["session_id"]


async def _open(app: Quart, method: str, path: str) -> Any:
    async with app.test_app() as test_app:
        return await test_app.test_client().open(path, method=method)


FLET_ROUTES = [
    (existing_quart_app.app, "/flet-app/upload"),
    (existing_quart_app.app, "/flet-app/oauth_callback"),
    (existing_quart_app.app, "/flet-app/main.dart.js"),
    (existing_quart_app.app, "/flet-app/"),
    (existing_quart_app.app, "/flet-app"),  # the slash redirect
    (existing_quart_app.app, "/flet-app/ws"),
    (two_apps.app, "/main.dart.js"),
    (two_apps.app, "/upload"),
    (two_apps.app, "/sub-app/upload"),
    (two_apps.app, "/sub-app/oauth_callback"),
    (two_apps.app, "/sub-app"),
]


@pytest.mark.parametrize(("app", "path"), FLET_ROUTES)
@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH"])
async def test_405_on_a_flet_blueprint_route_is_json(app: Quart, path: str, method: str) -> None:
    response = await _open(app, method, path)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert await response.get_json() == {
        "error": "The method is not allowed for the requested URL.",
        "status": 405,
    }
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/", "/about", "/api/hello"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_405_on_the_users_own_routes_keeps_the_apps_pages(path: str, method: str) -> None:
    response = await _open(existing_quart_app.app, method, path)
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("text/html")
    assert "405 Method Not Allowed" in (await response.get_data(as_text=True))


def _users_app(**opts: Any) -> Quart:
    app = Quart(__name__, static_folder=None)

    @app.get("/about")
    async def about() -> str:
        return "about"

    @app.errorhandler(405)
    async def not_allowed(error: Exception) -> tuple[str, int]:
        return "<p>the user's own 405 page</p>", 405

    app.register_blueprint(flet_blueprint(main, **opts), url_prefix="/flet-app")
    return app


async def test_the_users_405_handler_still_answers_their_routes_only() -> None:
    app = _users_app(cors_allow_origin="*")
    own = await _open(app, "POST", "/about")
    assert own.status_code == 405 and await own.get_data(as_text=True) == (
        "<p>the user's own 405 page</p>"
    )
    flet = await _open(app, "POST", "/flet-app/main.dart.js")
    assert flet.status_code == 405 and (await flet.get_json())["status"] == 405
    assert flet.headers["Access-Control-Allow-Origin"] == "*"  # the blueprint's headers too
    unknown = await _open(app, "POST", "/nowhere")  # a 404 stays the app's
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("text/html")


async def test_a_websocket_to_a_flet_file_route_is_a_json_400_in_a_users_app() -> None:
    """A WebSocket to a path only the HTTP file route matches."""
    app = existing_quart_app.app
    async with app.test_app() as test_app:
        with pytest.raises(WebsocketResponseError) as refused:
            async with test_app.test_client().websocket("/flet-app/main.dart.js") as ws:
                await ws.send(b"\x00")
    response = refused.value.response
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert (await response.get_json())["status"] == 400


@pytest.mark.parametrize(
    ("app", "path"),
    [(quart_app(lambda page: None), "/ws"), (existing_quart_app.app, "/flet-app/ws")],
)
async def test_a_plain_get_of_the_websocket_is_a_json_426(app: Quart, path: str) -> None:
    response = await _open(app, "GET", path)
    assert response.status_code == 426
    assert response.headers["Upgrade"] == "websocket"
    assert (await response.get_json())["status"] == 426


async def test_a_get_of_the_upload_route_is_a_json_405() -> None:
    response = await _open(existing_quart_app.app, "GET", "/flet-app/upload")
    assert response.status_code == 405
    assert response.headers["Allow"] == "PUT"
    assert "PUT" in (await response.get_json())["error"]
