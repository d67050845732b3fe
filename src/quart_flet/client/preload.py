"""What the Flet web client fetches after its index, told to the browser up
front so the files start together instead of one round trip after another:
a ``Link`` header for the index's own scripts, and :func:`engine_script`,
which makes flutter_bootstrap.js's choice of engine files in the browser and
preloads them, then the fonts and FontManifest.json.

Why and how: docs/discussion/web-client.md, "Preload hints".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class EngineFiles:
    """The engine's file names relative to ``flet.entrypointBaseUrl``, each
    with the query the bootstrap's buildConfig gives it (``?v=...``)."""

    main_wasm: str
    main_mjs: str
    main_js: str


def font_assets(manifest: object) -> list[str]:
    """The asset paths of every font in a parsed FontManifest.json, in its
    order; anything that does not look like one is skipped."""
    found: list[str] = []
    if not isinstance(manifest, list):
        return found
    for family in manifest:
        fonts = family.get("fonts") if isinstance(family, dict) else None
        for font in fonts if isinstance(fonts, list) else ():
            asset = font.get("asset") if isinstance(font, dict) else None
            if isinstance(asset, str) and asset and "://" not in asset and asset[0] != "/":
                if asset not in found:
                    found.append(asset)
    return found


def asset_urls(asset_base: str, manifest: str, fonts: Iterable[str]) -> list[str]:
    """The URLs the engine asks for: ``<assetBase>assets/<path>``."""
    return [asset_base + "assets/" + quote(path) for path in (manifest, *fonts)]


def link_header(scripts: Sequence[str]) -> str:
    """A ``Link`` header value preloading the index's own ``scripts``, so
    they start with the response's headers, before its body is parsed."""
    return ", ".join(f"<{url}>; rel=preload; as=script" for url in scripts)


def engine_script(files: EngineFiles | None, assets: Sequence[str] = ()) -> str:
    """An inline script that preloads the engine files flutter_bootstrap.js
    will fetch in this browser. It mirrors the bootstrap's choice: skwasm and
    the dart2wasm build on Blink with WasmGC unless the renderer is forced to
    canvaskit; skwasm_heavy without ImageDecoder or Intl.v8BreakIterator; the
    CanvasKit "chromium" variant with both; nothing from a CDN (no
    ``flet.canvasKitBaseUrl``), and no engine file at all for ``files=None``
    (an app's own flutter_bootstrap.js). ``assets`` (FontManifest.json and
    the fonts) are preloaded once the first of the engine's files is in."""
    engine = {}
    if files is not None:
        engine = {"wasm": files.main_wasm, "mjs": files.main_mjs, "js": files.main_js}
    names = json.dumps(
        {**engine, "assets": assets},
        separators=(",", ":"),
    ).replace("<", "\\u003c")  # nothing in it can end the script element
    return "<script>\n" + _ENGINE_JS.replace("__FILES__", names) + "</script>\n  "


# flutter_bootstrap.js's choice of build and renderer, made early
_ENGINE_JS = """(() => {
  if (typeof flet === "undefined") return;  // an index of its own
  // an index revalidated with a 304 (fewer bytes came than its body has): a
  // repeat visit, whose files are in the HTTP cache; preloads there only slow
  // the engine down (seen: +0.1-0.2 s to first text on loopback)
  const nav = performance.getEntriesByType("navigation")[0];
  if (nav && nav.transferSize > 0 && nav.transferSize < nav.encodedBodySize) return;
  const f = __FILES__;
  const slash = (url) => url.replace(/\\/*$/, "/");
  const base = slash(flet.entrypointBaseUrl);
  const kit = flet.canvasKitBaseUrl ? slash(flet.canvasKitBaseUrl) : null;
  const big = [];
  const link = (href, rel, as, priority) => {
    const l = document.createElement("link");
    l.rel = rel;
    l.href = href;
    if (priority) l.fetchPriority = priority;
    if (as) { l.as = as; if (as === "fetch") l.crossOrigin = "anonymous"; }
    if (as === "fetch" || as === "script") {
      big.push(new Promise((done) => { l.onload = l.onerror = () => done(); }));
    }
    document.head.appendChild(l);
  };
  const blink = navigator.vendor === "Google Inc." || navigator.userAgent.includes("Edg/");
  const gc = WebAssembly.validate(new Uint8Array(
    [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 95, 1, 120, 0]));
  const full = blink && typeof ImageDecoder !== "undefined"
    && typeof Intl.v8BreakIterator !== "undefined" && typeof Intl.Segmenter !== "undefined";
  const renderer = flet.webRenderer;
  if (!f.wasm) {
    // a flutter_bootstrap.js of the app's own: its choices are not known
  } else if (blink && gc && renderer !== "canvaskit") {
    link(base + f.mjs, "modulepreload");
    link(base + f.wasm, "preload", "fetch");
    if (kit) {
      const name = full ? "skwasm" : "skwasm_heavy";
      link(kit + name + ".js", "modulepreload");
      link(kit + name + ".wasm", "preload", "fetch");
    }
  } else if (renderer !== "skwasm") {
    link(base + f.js, "preload", "script");
    if (kit) {
      const dir = full ? kit + "chromium/" : kit;
      link(dir + "canvaskit.js", "modulepreload");
      link(dir + "canvaskit.wasm", "preload", "fetch");
    }
  }
  // the fonts once one of the engine's big files is in, at low priority: the
  // engine asks for them only after compiling and running main.dart.wasm, and
  // the link would sit idle meanwhile. An HTTP/2 server that follows the
  // browser's priorities (Hypercorn does) sends them after the engine files;
  // a throttle that shares the link evenly (DevTools') does not, so they do
  // not start with the engine files, which are needed first
  (big.length ? Promise.race(big) : Promise.resolve()).then(() => {
    for (const url of f.assets) link(url, "preload", "fetch", "low");
  });
})();
"""
