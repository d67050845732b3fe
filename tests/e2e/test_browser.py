"""The real Flet web client (flet-web's Flutter build) in headless Chromium,
served by a real Hypercorn: it loads, renders the counter and counts.

A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
from conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTROL_EVENT,
    PATCH_CONTROL,
    SESSION_CRASHED,
    require_chromium,
)

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 800, "height": 600}
# Flutter web: clicking the hidden placeholder turns on the semantics DOM,
# where the app's texts and buttons become findable.
ENABLE_SEMANTICS = """
new MutationObserver((_, obs) => {
  const el = document.querySelector('flt-semantics-placeholder');
  if (el) { obs.disconnect(); el.click(); }
}).observe(document, {childList: true, subtree: true});
"""


def decode_frame(frame: Any) -> Any:
    """A Flet frame as Playwright reports it, or None for anything else."""
    if isinstance(frame, (bytes, bytearray)) and frame[:1] == b"\x00":
        return msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=lambda c, d: None)
    return None


@asynccontextmanager
async def browser_page(errors: list[str], received: list[Any] | None = None) -> AsyncIterator[Any]:
    """A Chromium page with the semantics DOM on; page errors go to ``errors``,
    and the Flet frames the page receives to ``received`` when given."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            await page.add_init_script(ENABLE_SEMANTICS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            if received is not None:
                page.on(
                    "websocket",
                    lambda ws: ws.on("framereceived", lambda f: received.append(decode_frame(f))),
                )
            yield page
        finally:
            await browser.close()


async def count_in_browser(url: str, websocket_url: str) -> None:
    sent: list[Any] = []
    received: list[Any] = []
    sockets: list[str] = []
    errors: list[str] = []
    async with browser_page(errors) as page:

        def on_websocket(ws: Any) -> None:
            sockets.append(ws.url)
            ws.on("framesent", lambda frame: sent.append(decode_frame(frame)))
            ws.on("framereceived", lambda frame: received.append(decode_frame(frame)))

        page.on("websocket", on_websocket)

        response = await page.goto(url)
        assert response is not None and response.status == 200
        await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
        await page.get_by_text("0", exact=True).wait_for(timeout=10_000)

        fab = page.locator('flt-semantics[aria-label="Increment"] [role="button"]')
        await fab.click()
        await page.get_by_text("1", exact=True).wait_for(timeout=10_000)

    assert sockets == [websocket_url]
    clicks = [m for m in sent if m and m[0] == CONTROL_EVENT and m[1].get("name") == "click"]
    assert len(clicks) == 1, clicks
    value_patches = [
        op
        for m in received
        if m and m[0] == PATCH_CONTROL
        for op in m[1]["patch"]
        if op[-2:] == ["value", "1"]
    ]
    assert value_patches, received
    assert not errors, errors


@pytest.mark.parametrize(
    ("app", "path"),
    [("examples.counter:app", "/"), ("examples.existing_quart_app:app", "/flet-app/")],
    ids=["root", "prefix"],
)
async def test_counter_counts_in_a_real_browser(hypercorn: Any, app: str, path: str) -> None:
    require_chromium()
    server = hypercorn(app, path=path)
    await count_in_browser(server.url + path, server.url.replace("http", "ws", 1) + path + "ws")


async def test_routing_with_sync_navigate_and_deep_links_in_a_real_browser(
    hypercorn: Any,
) -> None:
    """examples/routing.py under /shop: sync lambdas call page.navigate() (run
    on the pool, handed to the loop), the address bar follows, and a deep link
    to /shop/store opens the store view (the SPA fallback plus page.route)."""
    require_chromium()
    server = hypercorn("examples.routing:app", path="/shop/")
    url = server.url + "/shop/"
    received: list[Any] = []
    errors: list[str] = []
    async with browser_page(errors, received) as page:
        await page.goto(url)
        await page.get_by_text("Flet app", exact=True).wait_for(timeout=60_000)
        await page.get_by_role("button", name="Visit Store").click()
        await page.get_by_text("Store", exact=True).wait_for(timeout=10_000)
        assert page.url == url + "store"
        await page.get_by_role("button", name="Go Home").click()
        await page.get_by_text("Store", exact=True).wait_for(state="detached", timeout=10_000)
        assert page.url == url

        await page.goto(url + "store")  # a deep link, in a fresh session
        await page.get_by_text("Store", exact=True).wait_for(timeout=60_000)
        await page.get_by_role("button", name="Go Home").wait_for(timeout=10_000)
    assert not [m for m in received if m and m[0] == SESSION_CRASHED], received
    assert not errors, errors


async def test_a_components_app_with_sync_code_in_a_real_browser(hypercorn: Any) -> None:
    """examples/components.py: page.render() in a sync main and a use_state
    setter in a sync handler, both on the pool, drive flet's scheduler."""
    require_chromium()
    server = hypercorn("examples.components:app")
    errors: list[str] = []
    received: list[Any] = []
    async with browser_page(errors, received) as page:
        await page.goto(server.url + "/")
        await page.get_by_text("Clicked 0 times", exact=True).wait_for(timeout=60_000)
        for n in (1, 2, 3):
            await page.get_by_role("button", name="Add one").click()
            await page.get_by_text(f"Clicked {n} times", exact=True).wait_for(timeout=10_000)
    assert not [m for m in received if m and m[0] == SESSION_CRASHED], received
    assert not errors, errors
