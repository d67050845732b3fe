"""The request in the page: main, before_main and handlers (sync ones in pool
threads too) read what the WebSocket handshake carried, and a session stays
bound to the identity it started with (with the real quart-auth)."""

from __future__ import annotations

import threading
from typing import Any

import flet as ft
import pytest
from conftest import PATCH_CONTROL, SESSION_CRASHED, FletTestClient, find_controls
from quart import Quart, session
from quart_auth import AuthUser, QuartAuth, authenticated_client, login_user

from quart_flet import flet_blueprint, handshake

SEEN: dict[str, Any] = {}


def who_main(page: ft.Page) -> None:  # sync: a pool thread, no websocket context
    seen = handshake(page)
    SEEN["main"] = (seen.auth_id, threading.current_thread().name)
    label = ft.Text(f"user {seen.auth_id} lang {seen.headers.get('accept-language')}")

    def again(e: ft.Event[ft.Button]) -> None:
        current = handshake()  # ft.context.page's, in a thread too
        label.value = f"query {current.args.get('q')} cookie {current.cookies.get('theme')}"

    page.add(label, ft.Button("again", on_click=again))


def make_app() -> Quart:
    app = Quart(__name__)
    app.secret_key = "test secret"
    QuartAuth(app)

    @app.get("/login/<name>")
    async def login(name: str) -> str:
        login_user(AuthUser(name))
        session["seen"] = name
        return "ok"

    app.register_blueprint(flet_blueprint(who_main), url_prefix="/app")
    return app


def not_crashed(message: Any) -> bool:
    assert message[0] != SESSION_CRASHED, message[1]
    return False


async def render(client: FletTestClient, session_id: str | None = None) -> Any:
    await client.register(session_id)
    return await client.receive_until(
        lambda m: not_crashed(m) or (m[0] == PATCH_CONTROL and find_controls(m[1], _c="Text"))
    )


async def test_main_and_a_sync_handler_read_the_handshake() -> None:
    SEEN.clear()
    app = make_app()
    async with app.test_app() as test_app:
        client = test_app.test_client()
        client.set_cookie("localhost", "theme", "dark")
        async with (
            authenticated_client(client, "alice"),
            client.websocket("/app/ws?q=flet", headers={"Accept-Language": "fr"}) as ws,
        ):
            flet = FletTestClient(ws)
            patch = await render(flet)
            assert find_controls(patch, value="user alice lang fr")
            await flet.click(int(find_controls(patch, content="again")[0]["_i"]))
            await flet.receive_until(lambda m: not_crashed(m) or "query flet cookie dark" in str(m))
    assert SEEN["main"][0] == "alice" and SEEN["main"][1].startswith("quart_flet")


async def test_signed_out_the_handshake_has_no_user() -> None:
    app = make_app()
    async with app.test_app() as test_app, test_app.test_client().websocket("/app/ws") as ws:
        patch = await render(FletTestClient(ws))
    assert find_controls(patch, value="user None lang None")


@pytest.mark.parametrize("second", ["bob", None], ids=["another user", "signed out"])
async def test_a_session_never_resumes_under_another_identity(second: str | None) -> None:
    app = make_app()
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        async with authenticated_client(client, "alice"), client.websocket("/app/ws") as ws:
            first = FletTestClient(ws)
            await render(first)
        assert first.session_id is not None
        assert ("flet", first.session_id) in registry.sessions  # held for alice

        other = test_app.test_client()  # another browser with the same UA
        if second is not None:
            async with authenticated_client(other, second), other.websocket("/app/ws") as ws:
                again = FletTestClient(ws)
                patch = await render(again, first.session_id)
        else:
            async with other.websocket("/app/ws") as ws:
                again = FletTestClient(ws)
                patch = await render(again, first.session_id)
        assert again.session_id != first.session_id  # a new session, not alice's
        assert find_controls(patch, value=f"user {second} lang None")
        assert ("flet", first.session_id) not in registry.sessions  # alice's ended


async def test_the_same_user_resumes_their_session() -> None:
    app = make_app()
    async with app.test_app() as test_app:
        client = test_app.test_client()
        async with authenticated_client(client, "alice"):
            async with client.websocket("/app/ws") as ws:
                first = FletTestClient(ws)
                await render(first)
            async with client.websocket("/app/ws") as ws:
                again = FletTestClient(ws)
                await again.register(first.session_id)
        assert again.session_id == first.session_id


def test_handshake_outside_quart_flet_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not served by quart-flet"):
        handshake(object())
