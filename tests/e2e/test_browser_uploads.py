"""An oversize upload from the real Flet web client in Chromium (the
FilePicker flow of tests/apps/upload_events.py, 1 MiB max_upload_size, an
8 MiB file): what the client does with the 413 and what the app's
``on_upload`` handler sees, over plain HTTP/1.1 and over the recommended
TLS + HTTP/2 (where Hypercorn alone dropped the whole connection, the Flet
WebSocket with it, and the handler never heard of the refusal).

A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, Certificate, require_chromium, start_tls_hypercorn
from test_browser import ENABLE_SEMANTICS
from test_browser_h2 import spki_hash

pytestmark = [pytest.mark.browser, pytest.mark.server]

LIMIT = 1024 * 1024
REFUSED = (
    "error='Upload endpoint returned code 413: "
    '{"error":"upload exceeds the limit of 1048576 bytes","status":413}\\n\''
)


@pytest.mark.parametrize("over", ["http1", "tls-h2"])
async def test_the_flet_client_reports_a_413_to_on_upload(
    hypercorn: Any, tmp_path: Path, tls: Certificate, over: str
) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    upload_dir = tmp_path / "uploads"
    env = {
        "FLET_SECRET_KEY": "browser test",
        "FLET_UPLOAD_DIR": str(upload_dir),
        "FLET_MAX_UPLOAD_SIZE": str(LIMIT),
    }
    app = "tests.apps.upload_events:app"
    if over == "tls-h2":
        server = start_tls_hypercorn(hypercorn, tls, app, env=env)
    else:
        server = hypercorn(app, env=env)
    picked = tmp_path / "big.bin"
    picked.write_bytes(os.urandom(8 * LIMIT))
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(tls.cert_pem)}"]
    errors: list[str] = []
    sockets: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 600})
            await page.add_init_script(ENABLE_SEMANTICS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("websocket", lambda ws: sockets.append(ws.url))
            await page.goto(server.url + "/")
            button = page.get_by_role("button", name="Pick files and upload")
            await button.wait_for(timeout=60_000)
            async with page.expect_file_chooser(timeout=10_000) as chooser:
                await button.click()
            await (await chooser.value).set_files(str(picked))
            await page.get_by_text("Upload endpoint returned code 413").wait_for(timeout=60_000)
            # the session lives on: the same WebSocket answers a click
            await page.get_by_role("button", name="ping").click()
            await page.get_by_text("pings: 1").wait_for(timeout=10_000)
            protocol = await page.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
        finally:
            await browser.close()

    assert protocol == ("h2" if over == "tls-h2" else "http/1.1")
    assert len(sockets) == 1, sockets  # no reconnect
    seen = [line for line in server.log().splitlines() if line.startswith("on_upload ")]
    # what on_upload gets: the client's progress reading the file (0 to ~0.95,
    # before the request is sent), then the refusal with progress None
    assert seen[0] == "on_upload 'big.bin' progress=0.0 error=None", seen
    assert all("error=None" in line for line in seen[:-1]), seen
    assert seen[-1] == f"on_upload 'big.bin' progress=None {REFUSED}", seen
    assert list(upload_dir.iterdir()) == []
    assert not errors, errors
