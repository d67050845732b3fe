"""The request in the page: main, before_main and handlers (sync ones in pool
threads too) read what the WebSocket handshake carried, and a session stays
bound to the browser and the identity it started with (with the real quart-auth)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import flet as ft
import pytest
from conftest import PATCH_CONTROL, SESSION_CRASHED, FletTestClient, browser, find_controls
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


@asynccontextmanager
async def signed_in(client: Any, user: str | None) -> AsyncIterator[None]:
    """``client`` signed in as ``user`` (None: signed out) for the block."""
    if user is None:
        yield
    else:
        async with authenticated_client(client, user):
            yield


async def alices_session(test_app: Any, client: Any) -> str:
    """A session alice starts in ``client`` and leaves, held for her browser."""
    async with authenticated_client(client, "alice"), client.websocket("/app/ws") as ws:
        first = FletTestClient(ws)
        await render(first)
    assert first.session_id is not None
    return first.session_id


@pytest.mark.parametrize("second", ["bob", None], ids=["another user", "signed out"])
async def test_a_session_never_resumes_under_another_identity(second: str | None) -> None:
    """Alice's browser, come back as bob or signed out: a new session, and
    alice's ends (so a sign-out ends her sessions at their next reconnect)."""
    app = make_app()
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        client = browser(test_app)
        session_id = await alices_session(test_app, client)
        assert ("flet", session_id) in registry.sessions  # held for alice
        async with signed_in(client, second), client.websocket("/app/ws") as ws:
            again = FletTestClient(ws)
            patch = await render(again, session_id)
        assert again.session_id != session_id  # a new session, not alice's
        assert find_controls(patch, value=f"user {second} lang None")
        assert ("flet", session_id) not in registry.sessions  # alice's ended


@pytest.mark.parametrize("user", ["bob", None, "alice"], ids=["bob", "signed out", "alice"])
@pytest.mark.parametrize("cookie", ["no", "another"], ids=["no browser id", "another browser"])
async def test_another_browser_with_the_session_id_leaves_the_session_alone(
    user: str | None, cookie: str
) -> None:
    """Whoever holds alice's session id in another browser (alice herself on
    another device too) gets a session of their own; alice's is neither
    taken nor ended, and her browser resumes it."""
    app = make_app()
    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        client = browser(test_app)
        session_id = await alices_session(test_app, client)
        entry = registry.sessions[("flet", session_id)]
        stranger = test_app.test_client() if cookie == "no" else browser(test_app)
        async with signed_in(stranger, user), stranger.websocket("/app/ws") as ws:
            other = FletTestClient(ws)
            patch = await render(other, session_id)
        assert other.session_id != session_id
        assert find_controls(patch, value=f"user {user} lang None")
        assert registry.sessions[("flet", session_id)] is entry  # untouched
        async with authenticated_client(client, "alice"), client.websocket("/app/ws") as ws:
            again = FletTestClient(ws)
            await again.register(session_id)
        assert again.session_id == session_id


async def test_the_same_user_resumes_their_session() -> None:
    app = make_app()
    async with app.test_app() as test_app:
        client = browser(test_app)
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
