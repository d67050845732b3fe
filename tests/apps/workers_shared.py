"""Pubsub and OAuth between the workers of one server, with no Redis: the
chat (tests/apps/chat.py) at ``/`` and a sign-in page at ``/login``, each
page showing the pid of the worker holding its session, and every HTTP
answer saying which worker gave it (``X-Worker``).

The sign-in page's provider is never reached: the test plays the provider,
sending the browser back to the callback with ``error=access_denied``, which
the page shows as ``login:access_denied``.

Run: hypercorn --workers 2 tests.apps.workers_shared:app
"""

from __future__ import annotations

import os

import flet as ft
from flet.auth.oauth_provider import OAuthProvider
from quart import Quart, Response

from quart_flet import flet_blueprint
from tests.apps.chat import main as chat_main

PROVIDER = OAuthProvider(
    client_id="id",
    client_secret="secret",
    authorization_endpoint="https://auth.invalid/authorize",
    token_endpoint="https://auth.invalid/token",
    redirect_url="http://localhost/oauth_callback",
)


async def login_main(page: ft.Page) -> None:
    shown = ft.Text("")

    async def open_url(url: str) -> None:  # instead of a popup in a browser
        shown.value = url
        shown.update()

    async def on_login(e: ft.LoginEvent) -> None:
        shown.value = f"login:{e.error}"
        shown.update()

    async def login(e: ft.Event[ft.Button]) -> None:
        await page.login(PROVIDER, fetch_user=False, on_open_authorization_url=open_url)

    page.on_login = on_login
    page.add(shown, ft.Button("login", on_click=login), ft.Text(f"pid:{os.getpid()}", key="pid"))


async def worker_chat(page: ft.Page) -> None:
    await chat_main(page)
    page.add(ft.Text(f"pid:{os.getpid()}", key="pid"))


app = Quart(__name__, static_folder=None)
app.config["SECRET_KEY"] = "workers-shared-test-key"
app.register_blueprint(flet_blueprint(login_main, name="login"), url_prefix="/login")
app.register_blueprint(flet_blueprint(worker_chat, name="chat"))


@app.after_request
async def which_worker(response: Response) -> Response:
    response.headers["X-Worker"] = str(os.getpid())
    return response
