"""Issue 25, in Chromium across real restarts: a lost connection shows a
notice after its delay and hides it when the server is back; a page that cannot reconnect reloads
itself after the limit; a signed-out reconnect goes to the login page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import conftest
import pytest
from conftest import Server, require_chromium, start_hypercorn
from test_browser import browser_page

pytestmark = [pytest.mark.browser, pytest.mark.server]

APP = "tests.apps.restart:app"
NOTICE = "#quart-flet-reconnecting"
LOGIN_APP = "examples.login:app"
LOG = ("--access-logfile", "-")
# The Flet client reports each handshake that fails while the server is down
# as an uncaught "Exception" (seen with and without quart-flet's script).
FAILED_HANDSHAKE = "Exception"

# Before the page's scripts: when each Flet socket closed and when the notice
# showed or hid (performance.now()), to check the notice's delay in the page.
TIMELINE = """
window.timeline = {closes: [], shown: [], hidden: []};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(url, protocols) {
    super(url, protocols);
    this.addEventListener("close", () => timeline.closes.push(performance.now()));
  }
};
new MutationObserver(() => {
  const notice = document.getElementById("quart-flet-reconnecting");
  if (notice === null) return;
  const list = notice.hidden ? timeline.hidden : timeline.shown;
  if (list.length <= Math.min(timeline.shown.length, timeline.hidden.length)) {
    list.push(performance.now());
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def restart(old: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Server:
    """A new server on the old one's port, once the old one has stopped."""
    assert old.stop() == 0
    monkeypatch.setattr(conftest, "free_port", lambda: old.port)
    return start_hypercorn(APP, tmp_path, **kwargs)


async def open_counter(page: Any, url: str) -> Any:
    await page.goto(url + "/")
    button = page.get_by_role("button", name="Increment")
    await button.wait_for(timeout=60_000)
    await button.click()
    await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
    await page.evaluate("window.sameDocument = true")
    return button


async def test_a_lost_connection_shows_the_notice_after_its_delay_until_the_server_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_chromium()
    env = {"FLET_RECONNECT_NOTICE": "Back in a moment", "FLET_RECONNECT_NOTICE_DELAY": "1.5"}
    errors: list[str] = []
    old = start_hypercorn(APP, tmp_path, env=env)
    new = None
    try:
        async with browser_page(errors) as page:
            await page.add_init_script(TIMELINE)
            await open_counter(page, old.url)
            notice = page.get_by_text("Back in a moment")
            assert await notice.count() == 0

            assert old.stop() == 0
            await notice.wait_for(timeout=10_000)  # the server stays down
            timeline = await page.evaluate("window.timeline")
            assert len(timeline["shown"]) == 1, timeline
            assert timeline["shown"][0] - timeline["closes"][0] >= 1500, timeline
            assert await page.locator(NOTICE).get_attribute("role") == "status"

            new = restart(old, tmp_path, monkeypatch, env=env)
            await notice.wait_for(state="hidden", timeout=15_000)
            await page.get_by_text("0", exact=True).wait_for(timeout=15_000)
            await page.get_by_role("button", name="Increment").click()
            await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
    finally:
        old.stop()
        if new is not None:
            assert new.stop() == 0
    assert set(errors) <= {FAILED_HANDSHAKE}, errors


async def test_a_page_that_cannot_reconnect_reloads_itself_after_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy that moved the WebSocket: the open page's reconnects are
    refused while its URL answers; after reconnect_reload_seconds it reloads
    and gets the new index, which knows the new WebSocket."""
    require_chromium()
    errors: list[str] = []
    old = start_hypercorn(APP, tmp_path, env={"FLET_RECONNECT_RELOAD": "1"})
    new = None
    try:
        async with browser_page(errors) as page:
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            await open_counter(page, old.url)
            moved = {"FLET_WEBSOCKET_HANDLER_ENDPOINT": "socket-v2"}
            new = restart(old, tmp_path, monkeypatch, env=moved)
            await page.get_by_text("0", exact=True).wait_for(timeout=20_000)
            assert await page.evaluate("window.sameDocument") is None  # reloaded
            assert sockets[-1].endswith("/socket-v2"), sockets
            await page.get_by_role("button", name="Increment").click()
            await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
    finally:
        old.stop()
        if new is not None:
            assert new.stop() == 0
    assert set(errors) <= {FAILED_HANDSHAKE}, errors


@pytest.mark.parametrize(
    ("login_url", "lands_on"),
    [
        ("/login?next={next}&why=expired", "/login?next=%2Fapp%2F&why=expired"),
        (None, "/login?next=/app/"),  # the page reloads: the host's auth redirects it
    ],
)
async def test_a_signed_out_reconnect_goes_to_the_login_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, login_url: str | None, lands_on: str
) -> None:
    """examples/login.py: signed in, the user signs out elsewhere, and
    the server restarts; the open page's reconnect is refused (401) and it
    goes to the login page instead of retrying forever."""
    require_chromium()
    env = {"QUART_AUTH_COOKIE_SECURE": "false"}
    if login_url is not None:
        env["FLET_RECONNECT_LOGIN_URL"] = login_url
    errors: list[str] = []
    old = start_hypercorn(LOGIN_APP, tmp_path, *LOG, env=env, path="/login")
    new = None
    try:
        async with browser_page(errors) as page:
            await page.goto(old.url + "/app/")
            await page.get_by_label("Name").fill("Ada Lovelace")
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_text("Signed in as Ada Lovelace").wait_for(timeout=60_000)

            signed_in = {cookie["name"] for cookie in await page.context.cookies()}
            # signed out behind the open page's back (its socket stays open)
            await page.evaluate("fetch('/logout', {redirect: 'manual'})")
            signed_out = {cookie["name"] for cookie in await page.context.cookies()}
            assert "QUART_AUTH" in signed_in - signed_out
            assert old.stop() == 0
            monkeypatch.setattr(conftest, "free_port", lambda: old.port)
            new = start_hypercorn(LOGIN_APP, tmp_path, *LOG, env=env, path="/login")
            await page.wait_for_url(new.url + lands_on, timeout=20_000)
            await page.get_by_label("Name").wait_for(timeout=10_000)
    finally:
        old.stop()
        if new is not None:
            assert new.stop() == 0
    assert set(errors) <= {FAILED_HANDSHAKE}, errors
    # what the new server refused: the socket (401), or the page the script
    # asked after a handshake that failed while the server was down (302)
    assert new is not None
    log = new.log()
    assert '"GET /app/socket 1.1" 401' in log or '"GET /app/ 1.1" 302' in log, log
