"""`quart-flet run --reload` in real Chromium: editing the app's file
restarts the server, and every open page reconnects and shows the new code by
itself (the same document: no refresh), even after an edit that broke the
app for a moment.

The Flet web client reconnects when its WebSocket closes (1001 from the old
process) and registers again with its old session id; the new process does
not know it, so it starts a new session and the first render replaces the
page. Waits are on what the page shows, never on time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, free_port, require_chromium
from runner import command
from test_browser import ENABLE_SEMANTICS, VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.server]

APP = """
import flet as ft

async def main(page: ft.Page) -> None:
    page.add(ft.Text("{text}"){extra})
"""


def write_app(path: Path, text: str, extra: str = "") -> None:
    path.write_text(APP.format(text=text, extra=extra))


async def test_reload_shows_the_new_code_in_every_open_page(tmp_path: Path) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    app_dir = tmp_path / "myapp"
    app_dir.mkdir()
    app_file = app_dir / "app.py"
    write_app(app_file, "version one")
    port = free_port()
    args = ["-m", "quart_flet.cli", "run", "app.py", "--reload", "--port", str(port)]
    errors: list[str] = []
    with command(args, tmp_path, cwd=app_dir) as server:
        url = server.url()
        server.wait_for_line("quart-flet: reloading on changes")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                pages: list[Any] = []
                for _ in range(2):
                    page = await browser.new_page(viewport=VIEWPORT)
                    await page.add_init_script(ENABLE_SEMANTICS)
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    await page.goto(url)
                    await page.get_by_text("version one", exact=True).wait_for(timeout=60_000)
                    await page.evaluate("window.sameDocument = true")
                    pages.append(page)

                write_app(app_file, "version two", ', ft.Button("a new button")')
                for page in pages:
                    await page.get_by_text("version two", exact=True).wait_for(timeout=60_000)
                    await page.get_by_role("button", name="a new button").wait_for(timeout=10_000)
                    assert await page.get_by_text("version one", exact=True).count() == 0
                server.wait_for_line("quart-flet: app.py changed, restarting")

                app_file.write_text("def main(page:\n")  # a typo while editing
                server.wait_for_line("quart-flet: the app exited with status 1")
                write_app(app_file, "version three")
                for page in pages:
                    await page.get_by_text("version three", exact=True).wait_for(timeout=60_000)
                    assert await page.get_by_text("version two", exact=True).count() == 0
                    assert await page.evaluate("window.sameDocument") is True  # never refreshed
            finally:
                await browser.close()
        assert server.interrupt() == 0
    assert "SyntaxError" in server.stderr()
    assert not errors, errors
