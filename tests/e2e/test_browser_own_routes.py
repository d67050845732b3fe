"""Hand-written routes in real Chromium: examples/own_routes.py's counter and
uploads, and examples/login.py's quart-auth login form in front of a Flet app
under a prefix. A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import require_chromium
from test_browser import browser_page, count_in_browser

pytestmark = pytest.mark.browser


async def test_own_routes_count_and_upload_in_a_real_browser(
    hypercorn: Any, tmp_path: Path
) -> None:
    require_chromium()
    uploads = tmp_path / "uploads"
    server = hypercorn(
        "examples.own_routes:app",
        "--access-logfile",
        "-",
        path="/counter/",
        env={"FLET_SECRET_KEY": "browser test", "FLET_UPLOAD_DIR": str(uploads)},
    )
    ws_url = server.url.replace("http", "ws", 1) + "/sockets/counter"
    await count_in_browser(server.url + "/counter/", ws_url)

    picked = tmp_path / "hello.txt"
    picked.write_bytes(b"hello from chromium")
    errors: list[str] = []
    async with browser_page(errors) as page:
        await page.goto(server.url + "/files/")
        button = page.get_by_role("button", name="Pick files and upload")
        await button.wait_for(timeout=60_000)
        async with page.expect_file_chooser(timeout=10_000) as chooser:
            await button.click()
        await (await chooser.value).set_files(str(picked))
        await page.get_by_text("hello.txt: 100%").wait_for(timeout=15_000)
    assert (uploads / "hello.txt").read_bytes() == b"hello from chromium"
    assert '"PUT /put-here' in server.log()  # the hand-written upload route
    assert not errors, errors


async def test_a_quart_auth_login_form_guards_a_flet_app_in_a_real_browser(
    hypercorn: Any,
) -> None:
    require_chromium()
    server = hypercorn("examples.login:app", "--access-logfile", "-", path="/login")
    errors: list[str] = []
    async with browser_page(errors) as page:
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        await page.goto(server.url + "/app/")  # signed out: sent to the form
        assert page.url == server.url + "/login?next=/app/"
        await page.get_by_label("Name").fill("Ada Lovelace")
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("Signed in as Ada Lovelace").wait_for(timeout=60_000)
        assert page.url == server.url + "/app/"
        assert sockets == [server.url.replace("http", "ws", 1) + "/app/socket"]

        await page.goto(server.url + "/logout")
        await page.goto(server.url + "/app/")
        assert page.url == server.url + "/login?next=/app/"
        # the WebSocket, opened from the page's origin without the login cookie
        status = await page.evaluate(
            """url => new Promise(resolve => {
                const ws = new WebSocket(url);
                ws.onopen = () => resolve("open");
                ws.onerror = () => resolve("refused");
            })""",
            server.url.replace("http", "ws", 1) + "/app/socket",
        )
        assert status == "refused"
    assert "GET /app/socket" in server.log() and " 401 " in server.log()
    assert not errors, errors
