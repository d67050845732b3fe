"""A Flet app for signed-in users only, inside a Quart app that has its own
login (quart-auth), served from routes written by hand under /app.

Run:
    .venv/bin/python -m hypercorn examples.login:app --bind 127.0.0.1:8000 --workers 0
then open http://127.0.0.1:8000/app/: signed out, you are sent to /login; sign
in with any name and the Flet app greets you by it. /logout signs you out, and
the Flet session ends at its next reconnect.
"""

import os
from urllib.parse import quote

import flet as ft
from quart import Quart, Response, has_websocket_context, redirect, request
from quart_auth import AuthUser, QuartAuth, Unauthorized, login_required, login_user, logout_user

from quart_flet import FletApp, FletRoutes, handshake

app = Quart(__name__, static_folder=None)
app.secret_key = os.environ.get("SECRET_KEY", "change me: examples/login.py")
# the login cookie over plain http, for trying this locally; drop it behind HTTPS
app.config["QUART_AUTH_COOKIE_SECURE"] = os.environ.get("QUART_AUTH_COOKIE_SECURE") != "false"
QuartAuth(app)


def main(page: ft.Page) -> None:  # sync: runs in the pool, the handshake is a copy
    page.title = "Members"
    page.add(ft.Text(f"Signed in as {handshake(page).auth_id}", key="user"))


members = FletApp(
    main, name="members", routes=FletRoutes("members_page", "members_socket"), app=app
)


@app.errorhandler(Unauthorized)
async def sign_in_first(error: Unauthorized) -> Response | tuple[str, int]:
    if has_websocket_context():  # refused before accept: no session is made
        return "sign in first", 401
    return redirect(f"/login?next={quote(request.path)}")


@app.get("/app/", defaults={"path": ""})
@app.get("/app/<path:path>")
@login_required
async def members_page(path: str) -> Response:
    return await members.static_files(path)


@app.websocket("/app/socket")
@login_required
async def members_socket() -> None:
    await members.handle()


LOGIN_FORM = """<!doctype html><title>Sign in</title>
<form method="post"><label>Name <input name="name" autofocus></label>
<button type="submit">Sign in</button></form>"""


@app.get("/login")
async def login_form() -> str:
    return LOGIN_FORM


@app.post("/login")
async def login() -> Response:
    name = ((await request.form).get("name") or "").strip()
    if not name:
        return redirect("/login")
    login_user(AuthUser(name))
    target = request.args.get("next", "/app/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/app/")


@app.get("/logout")
async def logout() -> Response:
    logout_user()
    return redirect("/login")
