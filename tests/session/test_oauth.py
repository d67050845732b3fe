"""Issue 4, OAuth: a real sign-in against a tiny OAuth provider on localhost,
through our callback route, ending in on_login of the session that started it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import flet as ft
import httpx
import pytest
from conftest import INVOKE_METHOD, FletTestClient, browser, encode, find_controls, free_port
from flet.auth.oauth_provider import OAuthProvider
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, jsonify, redirect, request

from quart_flet import flet_blueprint
from quart_flet.session.oauth import MemoryOAuthStateStore
from quart_flet.session.registry import get_registry

CLIENT_ID, CLIENT_SECRET = "quart-flet-test", "provider-secret"


@dataclass
class Provider:
    """A tiny OAuth 2 authorization server: /authorize and /token."""

    url: str
    codes: dict[str, str] = field(default_factory=dict)  # code -> redirect_uri
    tokens: list[str] = field(default_factory=list)


def provider_app(provider: Provider) -> Quart:
    app = Quart("provider")

    @app.get("/authorize")
    async def authorize() -> Any:
        args = request.args
        assert args["response_type"] == "code" and args["client_id"] == CLIENT_ID
        if args.get("deny"):
            query = {"error": "access_denied", "error_description": "the user said no"}
        else:
            code = secrets.token_urlsafe(8)
            provider.codes[code] = args["redirect_uri"]
            query = {"code": code}
        # 'iss' (RFC 9207): parameters the callback does not know are ignored
        query.update(state=args["state"], iss=provider.url)
        return redirect(f"{args['redirect_uri']}?{urlencode(query)}")

    @app.post("/token")
    async def token() -> Any:
        form = await request.form
        redirect_uri = provider.codes.pop(form.get("code", ""), None)
        if (
            form.get("grant_type") != "authorization_code"
            or form.get("client_secret") != CLIENT_SECRET
            or redirect_uri is None
            or redirect_uri != form.get("redirect_uri")
        ):
            return jsonify({"error": "invalid_grant"}), 400
        access_token = f"token-{form['code']}"
        provider.tokens.append(access_token)
        return jsonify({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600})

    return app


@pytest.fixture(name="provider")
async def _provider(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Provider]:
    # oauthlib refuses http:// endpoints unless told this is a test
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}")
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    started = asyncio.Event()
    app = provider_app(provider)
    app.before_serving(started.set)
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    await asyncio.wait({server, asyncio.create_task(started.wait())}, return_when="FIRST_COMPLETED")
    assert not server.done(), "the OAuth provider did not start"
    yield provider
    stop.set()
    await server


LOGINS: list[tuple[str, str | None, str | None]] = []  # (session id, error, access token)


def make_app(
    provider: Provider, redirect_to_page: bool = False, sync_login: bool = False, **opts: Any
) -> Quart:
    oauth_provider = OAuthProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorization_endpoint=f"{provider.url}/authorize",
        token_endpoint=f"{provider.url}/token",
        redirect_url="http://localhost/flet-app/oauth_callback",
    )

    async def main(page: ft.Page) -> None:
        status = ft.Text("signed out")

        async def on_login(e: ft.LoginEvent) -> None:
            token = await page.auth.get_token() if page.auth and not e.error else None
            access_token = token.access_token if token else None
            LOGINS.append((page.session.id, e.error, access_token))
            status.value = f"login: {access_token or e.error}"
            status.update()

        async def login(e: ft.Event[ft.Button]) -> None:
            await page.login(oauth_provider, redirect_to_page=redirect_to_page)

        def on_login_sync(e: ft.LoginEvent) -> None:  # runs on the pool, like any sync handler
            LOGINS.append((page.session.id, e.error, threading.current_thread().name))
            status.value = f"login: {e.error or 'ok'}"
            status.update()

        page.on_login = on_login_sync if sync_login else on_login
        page.add(status, ft.Button("login", on_click=login))

    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, **opts), url_prefix="/flet-app")
    return app


async def start_login(client: FletTestClient) -> str:
    """Register, click 'login', answer flet's open_window; return the authorization URL."""
    LOGINS.clear()
    await client.register()
    patch = await client.receive_until(lambda m: m[0] == 2 and find_controls(m[1], _c="Button"))
    await client.click(int(find_controls(patch, _c="Button", content="login")[0]["_i"]))
    call = await client.receive_until(
        lambda m: m[0] == INVOKE_METHOD and m[1]["name"] == "open_window"
    )
    body = call[1]
    await client.ws.send(
        encode(
            INVOKE_METHOD,
            {"control_id": body["control_id"], "call_id": body["call_id"], "result": None},
        )
    )
    return str(body["args"]["url"])


async def authorize(url: str, **extra: str) -> str:
    """Sign in at the provider like a browser would; return our callback path."""
    if extra:
        url += "&" + urlencode(extra)
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert (location.hostname, location.path) == ("localhost", "/flet-app/oauth_callback")
    return f"{location.path}?{location.query}"


async def test_sign_in_fires_on_login_in_the_session_that_started_it(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        other = FletTestClient(await stack.enter_async_context(test.websocket("/flet-app/ws")))
        await other.register()
        client = FletTestClient(await stack.enter_async_context(test.websocket("/flet-app/ws")))
        callback = await authorize(await start_login(client))

        response = await test.get(callback)
        assert response.status_code == 200
        assert "signed in" in (await response.get_data(as_text=True))
        assert response.headers["Cache-Control"] == "no-store"

        token = provider.tokens[0]
        await client.patch_with(f"login: {token}")
        assert LOGINS == [(client.session_id, None, token)]
        assert client.session_id != other.session_id


async def test_a_sync_on_login_runs_on_the_thread_pool(provider: Provider) -> None:
    app = make_app(provider, sync_login=True)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            client = FletTestClient(ws)
            callback = await authorize(await start_login(client))
            assert (await test.get(callback)).status_code == 200
            await client.patch_with("login: ok")
    ((session_id, error, thread),) = LOGINS
    assert (session_id, error) == (client.session_id, None)
    assert thread.startswith("quart_flet"), thread


async def test_provider_error_reaches_on_login(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            client = FletTestClient(ws)
            callback = await authorize(await start_login(client), deny="1")
            assert (await test.get(callback)).status_code == 200
            await client.patch_with("login: access_denied")
    assert LOGINS == [(client.session_id, "access_denied", None)]
    assert provider.tokens == []


async def test_redirect_to_page_sets_the_cookie_and_completes_on_the_new_connection(
    provider: Provider,
) -> None:
    app = make_app(provider, redirect_to_page=True)
    async with app.test_app() as test_app:
        test = browser(test_app)  # the browser that signs in, its id with it
        async with test.websocket("/flet-app/ws") as ws:
            first = FletTestClient(ws)
            callback = await authorize(await start_login(first))
        # the page navigated away to the provider: its WebSocket is gone
        response = await test.get(callback)
        assert response.status_code == 302
        assert response.headers["location"] == "http://localhost/flet-app/"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("flet_oauth_state=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/flet-app/" in cookie
        assert "Secure" not in cookie
        assert LOGINS == []

        async with test.websocket("/flet-app/ws") as ws:  # sends the cookie
            second = FletTestClient(ws)
            reply = await second.register()
            assert reply[1]["session_id"] == first.session_id
            await second.receive_until(lambda m: m[0] == 2 and "login: token-" in str(m[1]))
    assert LOGINS == [(first.session_id, None, provider.tokens[0])]


async def test_state_cookie_is_secure_over_https(provider: Provider) -> None:
    app = make_app(provider, redirect_to_page=True)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            callback = await authorize(await start_login(FletTestClient(ws)))
        response = await test.get(callback, scheme="https")
        assert response.status_code == 302
        assert "Secure" in response.headers["set-cookie"]


async def test_stale_state_cookie_starts_a_new_session(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        test.set_cookie("localhost", "flet_oauth_state", "not-a-pending-sign-in")
        async with test.websocket("/flet-app/ws") as ws:
            reply = await FletTestClient(ws).register()
            assert reply[1]["session_id"]


async def test_callback_without_state_is_400(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/flet-app/oauth_callback?code=abc")
    assert response.status_code == 400
    message = (await response.get_json())["error"]
    assert message.endswith("state: Field required"), message
    assert "\n" not in message


async def test_callback_with_unknown_state_is_400(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get(
            "/flet-app/oauth_callback?code=abc&state=never-issued"
        )
    assert response.status_code == 400
    assert "unknown or expired" in (await response.get_json())["error"]


async def test_callback_state_is_single_use(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            client = FletTestClient(ws)
            callback = await authorize(await start_login(client))
            assert (await test.get(callback)).status_code == 200
            await client.patch_with(f"login: {provider.tokens[0]}")
            replay = await test.get(callback)
    assert replay.status_code == 400
    assert len(LOGINS) == 1


async def test_callback_after_the_state_timeout_is_400(provider: Provider) -> None:
    now = [1000.0]
    app = make_app(provider, oauth_state_timeout_seconds=30)
    async with app.test_app() as test_app:
        get_registry(app).oauth_states = MemoryOAuthStateStore(clock=lambda: now[0])
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            callback = await authorize(await start_login(FletTestClient(ws)))
            now[0] += 31
            response = await test.get(callback)
    assert response.status_code == 400
    assert "30 seconds" in (await response.get_json())["error"]
    assert LOGINS == []


async def test_callback_for_an_ended_session_is_410(provider: Provider) -> None:
    app = make_app(provider)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/flet-app/ws") as ws:
            client = FletTestClient(ws)
            callback = await authorize(await start_login(client))
        assert client.session_id is not None
        get_registry(app).evict(("flet", client.session_id))
        response = await test.get(callback)
    assert response.status_code == 410
    assert "ended" in (await response.get_json())["error"]


async def test_memory_store_takes_once_and_honours_the_ttl() -> None:
    now = [0.0]
    store = MemoryOAuthStateStore(clock=lambda: now[0])
    await store.put("a", "1", ttl=10)
    await store.put("b", "2", ttl=10)
    assert await store.take("a") == "1"
    assert await store.take("a") is None
    now[0] = 10
    assert await store.take("b") is None
    await store.put("c", "3", ttl=10)  # prunes nothing still alive
    assert await store.take("c") == "3"
