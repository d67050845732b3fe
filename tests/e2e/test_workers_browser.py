"""Issue 24 in Chromium: the real Flet web client on ``hypercorn --workers
2``. Each time its socket drops, the client reconnects with its session id;
wherever the kernel hands the new socket, the page comes back with its
count and the worker that made it (relayed when it landed elsewhere). Which
worker the kernel hands one browser's reconnects to is the kernel's choice
(some machines hand them all to one): the protocol-level tests, with many
tabs, check that reconnects were relayed.

Clicks after a resume are checked at the protocol level
(tests/session/test_worker_relay.py): flet-web 1.0.5's client does not
repaint a resumed page's later updates, behind flet.fastapi as behind
quart-flet (its register answer replaces the page it shows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import require_chromium
from test_browser import browser_page
from test_sticky import LOG_CONFIG

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Before the page's scripts: count the page's sockets, to see it reconnect.
COUNT_SOCKETS = """
window.flet_sockets = 0;
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(url, protocols) {
    super(url, protocols);
    window.flet_sockets += 1;
  }
};
"""
FAB = 'flt-semantics[aria-label="Increment"] [role="button"]'


async def drop_the_socket(page: Any, url: str) -> None:
    """POST /drop until the worker carrying this page's socket took it (each
    request reaches either worker), and the page opened a new socket."""
    before = await page.evaluate("window.flet_sockets")
    for _ in range(40):
        async with httpx.AsyncClient(base_url=url) as http:  # a connection each: either worker
            dropped = (await http.post("/drop")).json()["dropped"]
        if dropped:
            await page.wait_for_function(f"window.flet_sockets > {before}", timeout=30_000)
            return
    raise AssertionError("no /drop reached the worker carrying the page's socket")


async def test_a_page_keeps_its_session_across_reconnects_to_either_worker(
    hypercorn: Any, tmp_path: Path
) -> None:
    require_chromium()
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    server = hypercorn(
        "tests.apps.workers:app", "--workers", "2", "--log-config", f"json:{log_config}"
    )
    errors: list[str] = []
    async with browser_page(errors) as page:
        await page.add_init_script(COUNT_SOCKETS)
        await page.goto(server.url + "/")
        button = page.locator(FAB)
        await button.wait_for(timeout=60_000)
        holder = await page.get_by_text("pid:").text_content()
        await button.click()
        await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
        for drop in range(12):
            await drop_the_socket(page, server.url)
            # the same session comes back, from the worker that made it (a new
            # one would show 0, and the pid of whichever worker made it)
            await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
            assert await page.get_by_text("pid:").text_content() == holder
            if drop >= 3 and "lives in another worker: relayed" in server.log():
                break
    assert "starting a new one" not in server.log()
    assert "Traceback" not in server.log()
