"""The index's hints for what the Flet client fetches next: the engine files
flutter_bootstrap.js will load, the fonts of FontManifest.json, and the Link
header for the index's own scripts, at the root, under a blueprint prefix
and under an ASGI root_path. Every hinted URL must be one the server answers
with the very file the engine would fetch, or the browser downloads twice.
(That Chromium uses them is in tests/e2e/test_browser_preload.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import flet as ft
import pytest
from flet_web import get_package_web_dir
from quart import Quart
from test_webclient import build_config, config_value

from quart_flet import flet_blueprint, quart_app
from quart_flet.client.preload import font_assets

WEB = Path(get_package_web_dir())


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


def engine_hints(index: bytes) -> dict[str, Any]:
    """The file names the index's preload script was given."""
    found = re.search(rb"const f = (\{.*?\});\n", index)
    assert found is not None, "no preload script in the index"
    return dict(json.loads(found.group(1)))


def prefixed_app() -> Quart:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
    return app


def test_font_assets_reads_a_manifest_and_skips_what_is_not_a_local_font() -> None:
    manifest = [
        {"family": "A", "fonts": [{"asset": "fonts/a.ttf"}, {"asset": "fonts/a-bold.ttf"}]},
        {"family": "B", "fonts": [{"asset": "fonts/a.ttf"}]},  # twice: hinted once
        {"family": "C", "fonts": [{"asset": "https://cdn.example/c.ttf"}, {"asset": "/abs.ttf"}]},
        {"family": "D"},
        "junk",
        {"family": "E", "fonts": [{"weight": 700}, {"asset": 3}, "junk"]},
    ]
    assert font_assets(manifest) == ["fonts/a.ttf", "fonts/a-bold.ttf"]
    assert font_assets({"not": "a list"}) == []


@pytest.mark.parametrize(
    ("make", "path", "root_path", "base"),
    [
        (lambda: quart_app(main), "/", "", "/"),
        (prefixed_app, "/flet-app/", "", "/flet-app/"),
        (lambda: quart_app(main), "/proxy/", "/proxy", "/proxy/"),
    ],
    ids=["root", "prefix", "root_path"],
)
async def test_the_index_hints_every_file_the_engine_fetches_next(
    make: Any, path: str, root_path: str, base: str
) -> None:
    app = make()
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get(path, root_path=root_path)
        assert response.status_code == 200
        index = await response.get_data()
        assert config_value(index, "entrypointBaseUrl") == base
        hints = engine_hints(index)

        # the engine files: the names flutter_bootstrap.js's buildConfig uses
        bootstrap = re.search(rb'src="(flutter_bootstrap\.js\?v=[0-9a-f]{16})"', index)
        assert bootstrap is not None
        script = await client.get(path + bootstrap.group(1).decode(), root_path=root_path)
        builds = build_config((await script.get_data()).decode())["builds"]
        paths = {key: build[key] for build in builds for key in build if key.endswith("Path")}
        assert hints["wasm"] == paths["mainWasmPath"]
        assert hints["mjs"] == paths["jsSupportRuntimePath"]
        assert hints["js"] == paths["mainJsPath"]
        assert all(
            re.fullmatch(r"main\.dart\.(wasm|mjs|js)\?v=[0-9a-f]{16}", p) for p in paths.values()
        )

        # the fonts: the manifest the engine reads, then each of its fonts,
        # at <assetBase>assets/<asset>, each answered with that font's bytes
        asset_base = config_value(index, "assetBase")
        assert asset_base.startswith(base + "_v/")
        manifest_url, *font_urls = hints["assets"]
        assert manifest_url == asset_base + "assets/FontManifest.json"
        served = await client.get(manifest_url, root_path=root_path)
        assert served.status_code == 200
        fonts = font_assets(json.loads(await served.get_data()))
        assert "fonts/roboto.woff2" in fonts  # the no_cdn manifest, as served
        assert len(fonts) > 10
        assert font_urls == [asset_base + "assets/" + font for font in fonts]
        for url, font in zip(font_urls, fonts, strict=True):
            answer = await client.get(url, root_path=root_path)
            assert answer.status_code == 200, url
            assert await answer.get_data() == (WEB / "assets" / font).read_bytes(), url

        # the Link header: the index's own scripts, as its src= resolve
        srcs = re.findall(rb'<script src="([^"]+)"', index)
        assert len(srcs) == 2
        assert response.headers["Link"] == ", ".join(
            f"<{base}{src.decode()}>; rel=preload; as=script" for src in srcs
        )


async def test_the_preload_script_comes_after_the_config_it_reads() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        index = await (await test_app.test_client().get("/")).get_data()
    config = index.index(b"flet.webSocketEndpoint=")
    hints = index.index(b"const f = ")
    first_script = index.index(b"<script src=")
    assert config < hints < first_script
    assert index.count(b"const f = ") == 1


async def test_a_conditional_index_request_gets_its_304_without_hints() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        first = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": first.headers["ETag"]})
    assert "Link" in first.headers
    assert again.status_code == 304
    assert "Link" not in again.headers  # nothing to preload: the page comes from cache
