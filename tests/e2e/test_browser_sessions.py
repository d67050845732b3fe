"""Sessions belong to the browser that started them, in real Chromium against
a real Hypercorn: the index gives the browser its id (an HttpOnly cookie that
reaches the WebSocket, for a blueprint and for routes of one's own at other
paths), a reload resumes the session with its state, and the same session id
without that cookie (cookies cleared: another browser, for the server) gets a
new session. A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import REGISTER_CLIENT, require_chromium
from test_browser import browser_page, decode_frame

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("app", "path", "cookie_path", "env"),
    [
        ("examples.counter:app", "/", "/", {}),
        # index at /counter/, WebSocket at /sockets/counter: a cookie at "/" reaches both
        ("examples.own_routes:app", "/counter/", "/", {"FLET_SECRET_KEY": "browser test"}),
    ],
    ids=["blueprint", "own routes"],
)
async def test_a_reload_resumes_only_in_the_browser_that_started_it(
    hypercorn: Any, app: str, path: str, cookie_path: str, env: dict[str, str]
) -> None:
    require_chromium()
    server = hypercorn(app, path=path, env=env)
    errors: list[str] = []
    sent: list[Any] = []
    received: list[Any] = []
    async with browser_page(errors, received) as page:
        page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(decode_frame(f))))
        fab = page.locator('flt-semantics[aria-label="Increment"] [role="button"]')
        await page.goto(server.url + path)
        await page.get_by_text("0", exact=True).wait_for(timeout=60_000)
        await fab.click()
        await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
        (cookie,) = [c for c in await page.context.cookies() if c["name"] == "flet_browser"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == cookie_path

        await page.reload()  # the same browser: the session, and its count, resume
        await page.get_by_text("1", exact=True).wait_for(timeout=60_000)
        await fab.click()
        await page.get_by_text("2", exact=True).wait_for(timeout=10_000)

        await page.context.clear_cookies()  # the session id alone: a new session
        await page.reload()
        await page.get_by_text("0", exact=True).wait_for(timeout=60_000)

    asked = [m[1]["session_id"] for m in sent if m and m[0] == REGISTER_CLIENT]
    given = [m[1]["session_id"] for m in received if m and m[0] == REGISTER_CLIENT]
    assert asked == [None, given[0], given[0]], (asked, given)
    assert given[1] == given[0] and given[2] != given[0], given
    assert not errors, errors
