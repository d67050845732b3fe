"""The deployment the README recommends, in a real browser: Hypercorn with
TLS and HTTP/2 (examples/hypercorn.toml), the Flet client compressed, and
the Flet WebSocket carried over HTTP/2 (RFC 8441 extended CONNECT). The
server itself reports the HTTP version each WebSocket arrived on.

A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
from conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Certificate,
    require_chromium,
    start_tls_hypercorn,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

pytestmark = [pytest.mark.browser, pytest.mark.server]

ENABLE_SEMANTICS = """
new MutationObserver((_, obs) => {
  const el = document.querySelector('flt-semantics-placeholder');
  if (el) { obs.disconnect(); el.click(); }
}).observe(document, {childList: true, subtree: true});
"""


def spki_hash(cert_pem: bytes) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list wants: the
    certificate is then trusted as if a real CA had issued it."""
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def test_counter_over_https_h2_with_websocket_over_h2(
    hypercorn: Any, tls: Certificate
) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    server = start_tls_hypercorn(hypercorn, tls, "tests.apps.h2_probe:app")
    context = tls.client_context()

    encodings: dict[str, str] = {}
    errors: list[str] = []
    args = [
        *CHROMIUM_ARGS,
        f"--ignore-certificate-errors-spki-list={spki_hash(tls.cert_pem)}",
    ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 600})
            await page.add_init_script(ENABLE_SEMANTICS)
            page.on("pageerror", lambda error: errors.append(str(error)))

            async def on_response(response: Any) -> None:
                headers = await response.all_headers()
                name = response.url.split("?")[0].rsplit("/", 1)[1]  # without ?v=<version>
                encodings[name] = headers.get("content-encoding", "")

            page.on("response", on_response)
            await page.goto(server.url + "/")
            await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
            await page.get_by_text("0", exact=True).wait_for(timeout=10_000)
            await page.locator('flt-semantics[aria-label="Increment"] [role="button"]').click()
            await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
            protocol = await page.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
        finally:
            await browser.close()

    async with httpx.AsyncClient(verify=context, base_url=server.url) as client:
        versions = (await client.get("/_probe/websocket-versions")).json()["versions"]
    assert protocol == "h2"
    assert versions == ["2"], versions  # one WebSocket, over HTTP/2
    assert encodings.get("main.dart.wasm") == "br", encodings
    assert not errors, errors
    log = server.log()
    assert "Task was destroyed" not in log and "Traceback" not in log, log
