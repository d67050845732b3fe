"""The index's preload hints in real Chromium against a real Hypercorn, at
the root and under a blueprint prefix: the engine uses every hinted file (no
URL is downloaded twice, which is what an unmatched preload costs), the
hints cover the engine files and fonts it fetches, and main.dart.wasm is
fetched by the index's hint, not by the engine once main.dart.mjs has run
(without the hint it waits for that import); a repeat visit, whose index is
a 304, adds no preloads.

A missing Chromium skips locally and fails with CI=true."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.browser

ENABLE_SEMANTICS = """
new MutationObserver((_, obs) => {
  const el = document.querySelector('flt-semantics-placeholder');
  if (el) { obs.disconnect(); el.click(); }
}).observe(document, {childList: true, subtree: true});
"""


@pytest.mark.parametrize(
    ("app", "path"),
    [("examples.counter:app", "/"), ("examples.existing_quart_app:app", "/flet-app/")],
    ids=["root", "prefix"],
)
async def test_the_engine_uses_every_hinted_file(hypercorn: Any, app: str, path: str) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    server = hypercorn(app, path=path)
    sent: dict[str, tuple[str, float]] = {}  # request id -> (path?query, when)
    initiators: dict[str, Any] = {}  # request id -> what started it (CDP's Initiator)
    finished: dict[str, tuple[float, int]] = {}  # request id -> (when, bytes)
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 600})
            await page.add_init_script(ENABLE_SEMANTICS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            cdp = await page.context.new_cdp_session(page)

            def on_sent(event: dict[str, Any]) -> None:
                url = urlsplit(event["request"]["url"])
                if url.scheme == "http":
                    where = url.path + (f"?{url.query}" if url.query else "")
                    sent.setdefault(event["requestId"], (where, event["timestamp"]))
                    initiators.setdefault(event["requestId"], event["initiator"])

            cdp.on("Network.requestWillBeSent", on_sent)
            cdp.on(
                "Network.loadingFinished",
                lambda e: finished.__setitem__(
                    e["requestId"], (e["timestamp"], int(e["encodedDataLength"]))
                ),
            )
            await cdp.send("Network.enable")
            await page.goto(server.url + path)
            await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
            await page.get_by_text("0", exact=True).wait_for(timeout=10_000)
            await page.wait_for_load_state("networkidle")
            hinted = await page.evaluate(
                """[...document.querySelectorAll('link[rel=preload], link[rel=modulepreload]')]
                   .map((l) => new URL(l.href).pathname + new URL(l.href).search)"""
            )
            first_visit = dict(finished)
            # a repeat visit: the index comes back as a 304, the files from
            # the HTTP cache, and the page adds no preloads
            await page.goto(server.url + path)
            await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
            repeat = await page.evaluate(
                """(() => {
                  const nav = performance.getEntriesByType("navigation")[0];
                  return {transfer: nav.transferSize, body: nav.encodedBodySize,
                          links: document.querySelectorAll(
                            'link[rel=preload], link[rel=modulepreload]').length};
                })()"""
            )
        finally:
            await browser.close()

    assert 0 < repeat["transfer"] < repeat["body"], repeat  # revalidated: a 304
    assert repeat["links"] == 0, repeat

    downloads = Counter(sent[rid][0] for rid, (_, size) in first_visit.items() if size > 0)
    twice = {url: n for url, n in downloads.items() if n > 1}
    assert not twice, twice
    # the engine files and every font were hinted, under this mount point
    assert all(url.startswith(path) for url in hinted), hinted
    names = {url.split("?")[0].rsplit("/", 1)[1] for url in hinted}
    assert {"main.dart.wasm", "main.dart.mjs", "FontManifest.json", "roboto.woff2"} <= names
    assert {"skwasm.wasm", "skwasm.js"} <= names or {"skwasm_heavy.wasm"} <= names, names
    assert len([url for url in hinted if "/assets/" in url]) > 10
    # each hinted file was fetched (and, from the check above, only once)
    assert set(hinted) <= set(downloads), set(hinted) - set(downloads)

    def first(name: str) -> str:
        return next(rid for rid, (url, _) in sent.items() if url.split("?")[0].endswith(name))

    wasm = first("/main.dart.wasm")
    # the index's own hint fetched the wasm (its inline script adds the
    # links), not the engine once main.dart.mjs ran: the two download side by
    # side (which finishes first on loopback is the machine's business)
    frames = initiators[wasm].get("stack", {}).get("callFrames", [])
    assert frames, initiators[wasm]
    assert {urlsplit(frame["url"]).path for frame in frames} == {path}, initiators[wasm]
    assert not errors, errors
