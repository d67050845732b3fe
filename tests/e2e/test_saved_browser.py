"""State carried across a restart (on_session_save) in real Chromium: type
into a form, restart the server, and the open page comes back by itself (no
refresh) on the same route with the typed text, a coherent page whose
controls answer. tests/apps/saved.py keeps the draft in page.session.store
and saves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import free_port, require_chromium
from runner import command
from test_browser import browser_page

pytestmark = [pytest.mark.browser, pytest.mark.server]


async def test_a_typed_draft_comes_back_after_a_restart_without_a_reload(tmp_path: Path) -> None:
    require_chromium()
    from playwright.async_api import expect

    port = free_port()
    args = ["-m", "quart_flet.cli", "run", "tests.apps.saved:app", "--port", str(port)]
    env = {"TMPDIR": str(tmp_path)}  # the saved states' directory, this test's own
    errors: list[str] = []
    async with browser_page(errors) as page:
        with command(args, tmp_path, env) as server:
            await page.goto(server.url() + "form")
            await page.get_by_text("route:/form", exact=True).wait_for(timeout=60_000)
            await page.get_by_text("started with:", exact=True).wait_for(timeout=10_000)
            await page.get_by_role("textbox").click()
            await page.keyboard.type("hello")
            await page.get_by_text("typed:hello", exact=True).wait_for(timeout=10_000)
            await page.evaluate("window.sameDocument = true")
            assert not errors, errors
            assert server.interrupt() == 0
        assert "Traceback" not in server.stderr(), server.stderr()

        with command(args, tmp_path, env) as server:
            server.url()
            # the page reconnects by itself to the new server, whose new
            # session starts from what the old one saved
            started = page.get_by_text("started with:hello", exact=True)
            await started.wait_for(timeout=60_000)
            # while no server listened, the client's failed connects threw
            # (uncaught "Exception"s, as with flet.fastapi); none while one does
            errors.clear()
            # Flutter fills the field's semantics input when it has focus
            await page.get_by_role("textbox").click()
            await expect(page.get_by_role("textbox")).to_have_value("hello", timeout=10_000)
            await page.get_by_text("route:/form", exact=True).wait_for(timeout=10_000)
            assert await page.get_by_text("typed:hello", exact=True).count() == 0  # new page
            # a coherent page: the new session's controls answer
            await page.keyboard.type(" again")
            await page.get_by_text("typed:hello again", exact=True).wait_for(timeout=10_000)
            assert await page.evaluate("window.sameDocument") is True  # never refreshed
            assert not errors, errors
            assert server.interrupt() == 0
        assert "Traceback" not in server.stderr(), server.stderr()
