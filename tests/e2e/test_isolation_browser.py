"""Cross-origin isolation in a real Chromium: the Flet page served by a real
Hypercorn is ``crossOriginIsolated`` by default (COOP same-origin + COEP
credentialless), and an image from another origin without a CORP header still
loads there (without cookies), while the strict ``require-corp`` blocks it.

A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import require_chromium
from test_browser import browser_page

pytestmark = pytest.mark.browser

# a 1x1 transparent PNG
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
LOAD_IMAGE = """(src) => new Promise((resolve) => {
  const img = new Image();
  img.onload = () => resolve(`load ${img.naturalWidth}x${img.naturalHeight}`);
  img.onerror = () => resolve("error");
  img.src = src;
})"""


@contextmanager
def image_server() -> Iterator[tuple[str, list[str | None]]]:
    """An image on another origin (another port), sent without CORP or CORS
    headers; yields its URL and the Cookie header of each request."""
    cookies: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            cookies.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PIXEL)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(PIXEL)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # listening from here on
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/pixel.png", cookies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(
    ("setting", "coep", "isolated", "image", "cookie_sent"),
    [
        ("", "credentialless", True, "load 1x1", False),  # the default
        ("require-corp", "require-corp", True, "error", None),
        ("false", None, False, "load 1x1", True),
    ],
    ids=["default-credentialless", "require-corp", "off"],
)
async def test_isolation_and_a_cross_origin_image_in_chromium(
    hypercorn: Any,
    setting: str,
    coep: str | None,
    isolated: bool,
    image: str,
    cookie_sent: bool | None,
) -> None:
    require_chromium()
    # "" leaves the option at its default even if the caller's shell sets it
    server = hypercorn("examples.counter:app", env={"FLET_CROSS_ORIGIN_ISOLATION": setting})
    errors: list[str] = []
    with image_server() as (image_url, cookies):
        async with browser_page(errors) as page:
            # a cookie for the host: ports do not separate cookies, so only
            # credentialless keeps it off the image request
            await page.context.add_cookies(
                [{"name": "who", "value": "me", "domain": "127.0.0.1", "path": "/"}]
            )
            response = await page.goto(server.url + "/")
            assert response is not None and response.status == 200
            assert response.headers.get("cross-origin-embedder-policy") == coep
            await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
            assert await page.evaluate("window.crossOriginIsolated") is isolated
            assert await page.evaluate("typeof SharedArrayBuffer === 'function'") is isolated
            assert await page.evaluate(LOAD_IMAGE, image_url) == image
    assert not errors, errors
    if cookie_sent is None:  # blocked: the browser may or may not have asked
        return
    assert cookies, "the image server saw no request"
    assert all(("who=me" in (c or "")) is cookie_sent for c in cookies), cookies
