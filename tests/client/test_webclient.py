"""The web client over HTTP, through Quart's test client inside test_app():
the patched index at every mount point, the SPA fallback, real 404s, MIME
types, ETags, the slash redirect, assets_dir, app metadata and options."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import flet as ft
import pytest
from conftest import FletTestClient
from flet_web import get_package_web_dir
from quart import Blueprint, Quart
from werkzeug.datastructures import Headers

from quart_flet import OptionError, flet_blueprint, quart_app
from quart_flet.client.files import version_build_config


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


def base_href(body: bytes) -> str:
    found = re.search(rb'<base href="([^"]*)"', body)
    assert found is not None, body[:500]
    return found.group(1).decode()


def config_value(body: bytes, key: str) -> str:
    """The value of ``flet.<key>=...;`` in the injected app config."""
    found = re.search(rf"flet\.{key}\s*=\s*([^;]*);".encode(), body)
    assert found is not None, f"flet.{key} not in the index"
    return found.group(1).decode().strip('"')


async def get(app: Quart, path: str, **kwargs: Any) -> tuple[int, Headers, bytes]:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get(path, **kwargs)
        return response.status_code, response.headers, await response.get_data()


def two_flet_apps(sub_first: bool) -> Quart:
    """A Flet app at '/' and one at '/sub-app', plus the user's own routes."""
    app = Quart(__name__, static_folder=None)
    root = flet_blueprint(main, name="root_app")
    sub = flet_blueprint(main, name="sub_app")

    @app.get("/api/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    @app.get("/about")
    async def about() -> str:
        return "<h1>About us</h1>"

    if sub_first:
        app.register_blueprint(sub, url_prefix="/sub-app")
        app.register_blueprint(root)
    else:
        app.register_blueprint(root)
        app.register_blueprint(sub, url_prefix="/sub-app")
    return app


# ---- the patched index at each mount point ---------------------------------


async def test_index_at_root_is_patched_for_root() -> None:
    status, headers, body = await get(quart_app(main), "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert base_href(body) == "/"
    assert config_value(body, "webSocketEndpoint") == "/ws"
    assert config_value(body, "noCdn") == "true"
    assert re.fullmatch(r"/_v/[0-9a-f]{16}/canvaskit/", config_value(body, "canvasKitBaseUrl"))
    assert re.fullmatch(r"/_v/[0-9a-f]{16}/", config_value(body, "assetBase"))


async def test_index_under_prefix_follows_the_prefix() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
    status, _, body = await get(app, "/flet-app/")
    assert status == 200
    assert base_href(body) == "/flet-app/"
    assert config_value(body, "webSocketEndpoint") == "/flet-app/ws"
    canvaskit = config_value(body, "canvasKitBaseUrl")
    assert re.fullmatch(r"/flet-app/_v/[0-9a-f]{16}/canvaskit/", canvaskit)
    assert re.fullmatch(r"/flet-app/_v/[0-9a-f]{16}/", config_value(body, "assetBase"))


async def test_index_under_root_path_follows_root_path_and_prefix() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get("/root/flet-app/", root_path="/root")
        body = await response.get_data()
        assert response.status_code == 200
        assert base_href(body) == "/root/flet-app/"
        assert config_value(body, "webSocketEndpoint") == "/root/flet-app/ws"
        # the same app without root_path keeps its own variant of the index
        plain = await (await client.get("/flet-app/")).get_data()
        assert base_href(plain) == "/flet-app/"
        redirect = await client.get("/root/flet-app", root_path="/root")
        assert redirect.status_code == 308
        assert redirect.headers["Location"] == "/root/flet-app/"


async def test_local_canvaskit_is_served() -> None:
    status, headers, _ = await get(quart_app(main), "/canvaskit/canvaskit.wasm")
    assert status == 200
    assert headers["Content-Type"] == "application/wasm"


# ---- SPA fallback and 404 ---------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "/flet-app"])
@pytest.mark.parametrize(
    "route", ["/settings", "/a/b/c", "/deep/ly/nested/route/", "/page.html", "/x/y/about.HTML"]
)
async def test_route_like_paths_get_the_index(prefix: str, route: str) -> None:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix=prefix or None)
    status, headers, body = await get(app, prefix + route)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert base_href(body) == prefix + "/"


@pytest.mark.parametrize("prefix", ["", "/flet-app"])
@pytest.mark.parametrize("path", ["/nope.js", "/assets/nope.png", "/a/b/missing.css"])
async def test_missing_asset_is_a_json_404(prefix: str, path: str) -> None:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix=prefix or None)
    status, headers, body = await get(app, prefix + path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["status"] == 404
    assert path.rsplit("/", 1)[1] in json.loads(body)["error"]


async def test_path_traversal_is_not_served() -> None:
    status, _, body = await get(quart_app(main), "/../../../etc/passwd.txt")
    assert status in (400, 404)
    assert b"root:" not in body


# ---- MIME types and caching -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/main.dart.mjs", "text/javascript"),
        ("/main.dart.wasm", "application/wasm"),
        ("/flutter.js", "text/javascript"),
        ("/flutter_bootstrap.js", "text/javascript"),
        ("/manifest.json", "application/json"),
        ("/version.json", "application/json"),
        ("/favicon.png", "image/png"),
        ("/icons/icon-192.png", "image/png"),
    ],
)
async def test_mime_types(path: str, mime: str) -> None:
    status, headers, body = await get(quart_app(main), path)
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == mime
    assert body


@pytest.mark.parametrize("path", ["/", "/some/route", "/flutter.js", "/manifest.json"])
async def test_etag_gives_304_on_revalidation(path: str) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        first = await client.get(path)
        assert first.status_code == 200
        etag = first.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert await again.get_data() == b""
        stale = await client.get(path, headers={"If-None-Match": '"not-the-etag"'})
        assert stale.status_code == 200


WEB = Path(get_package_web_dir())


def range_cases(n: int) -> list[tuple[str, int, str | None, slice]]:
    """(Range, status, Content-Range, slice of the file sent) for n bytes."""
    return [
        ("bytes=-5", 206, f"bytes {n - 5}-{n - 1}/{n}", slice(n - 5, n)),
        ("bytes=-99999999", 206, f"bytes 0-{n - 1}/{n}", slice(0, n)),
        ("bytes=10-", 206, f"bytes 10-{n - 1}/{n}", slice(10, n)),
        ("bytes=0-9", 206, f"bytes 0-9/{n}", slice(0, 10)),
        (f"bytes=0-{'9' * 5000}", 206, f"bytes 0-{n - 1}/{n}", slice(0, n)),
        ("bytes=-0", 416, f"bytes */{n}", slice(0, 0)),
        (f"bytes={n}-", 416, f"bytes */{n}", slice(0, 0)),
        ("bytes=0-9,20-29", 200, None, slice(0, n)),  # several ranges: the whole file
        ("bytes=9-0", 200, None, slice(0, n)),  # invalid: ignored
        ("items=0-9", 200, None, slice(0, n)),
    ]


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/", "br"),  # the index's variants are made with it, so stable
        ("/some/route", "gzip"),
        ("/flutter.js", "identity"),
        ("/main.dart.js", "identity"),
        ("/manifest.json", "br"),  # patched, sent as it is on disk
        ("/favicon.png", "br"),
    ],
)
async def test_byte_ranges_follow_rfc_9110(path: str, accept: str) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        whole = await client.get(path, headers={"Accept-Encoding": accept})
        full = await whole.get_data()
        assert whole.headers["Accept-Ranges"] == "bytes"
        for ranges, status, content_range, part in range_cases(len(full)):
            for method in ("GET", "HEAD"):
                headers = {"Accept-Encoding": accept, "Range": ranges}
                response = await client.open(path, method=method, headers=headers)
                where = f"{method} {ranges}"
                assert response.status_code == status, where
                assert response.headers.get("Content-Range") == content_range, where
                if status == 416:
                    assert response.headers["Content-Type"] == "application/json", where
                    assert "Content-Encoding" not in response.headers, where
                    continue
                assert response.headers.get("Content-Encoding") == whole.headers.get(
                    "Content-Encoding"
                ), where
                assert response.headers["ETag"] == whole.headers["ETag"], where
                assert int(response.headers["Content-Length"]) == len(full[part]), where
                if method == "GET":
                    assert await response.get_data() == full[part], where


@pytest.mark.parametrize("path", ["/", "/flutter.js", "/manifest.json"])
async def test_if_match_and_if_range_are_checked(path: str) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        accept = {"Accept-Encoding": "br"}
        whole = await client.get(path, headers=accept)
        full, etag = await whole.get_data(), whole.headers["ETag"]
        assert etag.startswith('"')  # strong

        async def fetch(**headers: str) -> tuple[int, Headers, bytes]:
            response = await client.get(path, headers={**accept, **headers})
            return response.status_code, response.headers, await response.get_data()

        for headers in ({"If-Match": '"nope"'}, {"If-Match": '"nope"', "Range": "bytes=0-9"}):
            status, got, body = await fetch(**headers)
            assert status == 412, headers
            assert got["Content-Type"] == "application/json"
            assert json.loads(body)["status"] == 412 and json.loads(body)["error"]
            assert "Content-Encoding" not in got and "Content-Range" not in got
        for if_match in (etag, "*", f'"nope", {etag}'):
            status, _, body = await fetch(**{"If-Match": if_match})
            assert (status, body) == (200, full), if_match
        assert (await fetch(**{"If-Match": f"W/{etag}"}))[0] == 412  # strong comparison
        status, _, body = await fetch(**{"If-Match": etag, "Range": "bytes=0-9"})
        assert (status, body) == (206, full[:10])
        # If-Range: only a strong match keeps the Range; anything else gets it all
        status, got, body = await fetch(**{"If-Range": etag, "Range": "bytes=0-9"})
        assert (status, body) == (206, full[:10])
        for if_range in (f"W/{etag}", '"other"', "Sun, 06 Nov 1994 08:49:37 GMT"):
            status, got, body = await fetch(**{"If-Range": if_range, "Range": "bytes=0-9"})
            assert (status, body) == (200, full), if_range
            assert "Content-Range" not in got
        # If-None-Match still answers 304 (weak comparison), before any Range
        status, got, body = await fetch(**{"If-None-Match": f"W/{etag}", "Range": "bytes=0-9"})
        assert (status, body) == (304, b"")
        assert got["ETag"] == etag and "Content-Range" not in got


@pytest.mark.parametrize("prefix", ["", "/flet-app"])
@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/flutter.js/", "/flutter.js"),
        ("/flutter.js//", "/flutter.js"),
        ("/canvaskit//canvaskit.wasm", "/canvaskit/canvaskit.wasm"),
        ("/canvaskit/./canvaskit.js", "/canvaskit/canvaskit.js"),
        ("/./manifest.json", "/manifest.json"),
        ("/icons//icon-192.png?v=1&a=b", "/icons/icon-192.png?v=1&a=b"),
    ],
)
async def test_other_spellings_of_a_file_redirect_to_it(
    prefix: str, path: str, canonical: str
) -> None:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix=prefix or None)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get(prefix + path, headers={"Accept-Encoding": "br"})
        assert response.status_code == 308
        assert response.headers["Location"] == prefix + canonical
        assert "ETag" not in response.headers


@pytest.mark.parametrize("path", ["/canvaskit/../flutter.js", "/icons/../../web/flutter.js"])
async def test_dot_dot_paths_are_never_looked_up(path: str) -> None:
    status, headers, body = await get(quart_app(main), path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert b"(()=>" not in body


async def test_font_manifest_is_served_when_not_patched() -> None:
    status, headers, body = await get(quart_app(main, no_cdn=False), "/assets/FontManifest.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == json.loads((WEB / "assets/FontManifest.json").read_bytes())


# ---- cache policy: versioned URLs for good, the rest briefly or not at all ----

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "max-age=600"
STALE = "0123456789abcdef"  # a version of no file


def version(relative: str) -> str:
    """What a URL carries in ?v= for a packaged file: its content's hash."""
    return hashlib.sha256((WEB / relative).read_bytes()).hexdigest()[:16]


def build_config(script: str) -> dict[str, Any]:
    found = re.search(r"_flutter\.buildConfig\s*=(?!=)\s*", script)
    assert found is not None
    config, _ = json.JSONDecoder().raw_decode(script, found.end())
    return dict(config)


async def client_urls(client: Any, prefix: str = "") -> dict[str, str]:
    """The versioned URLs the index and flutter_bootstrap.js hand the engine."""
    index = await (await client.get(prefix + "/")).get_data()
    found = re.search(rb'src="(flutter_bootstrap\.js\?v=[0-9a-f]{16})"', index)
    assert found is not None
    urls = {"bootstrap": f"{prefix}/{found.group(1).decode()}"}
    urls["canvaskit"] = config_value(index, "canvasKitBaseUrl")
    urls["assets"] = config_value(index, "assetBase") + "assets/"
    script = (await (await client.get(urls["bootstrap"])).get_data()).decode()
    for build in build_config(script)["builds"]:
        for key in ("mainWasmPath", "jsSupportRuntimePath", "mainJsPath"):
            if key in build:
                urls[build[key].split("?")[0]] = f"{prefix}/{build[key]}"
    return urls


async def test_build_config_names_each_engine_file_by_its_content() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        urls = await client_urls(client)
        bootstrap = await client.get(urls["bootstrap"])
        assert bootstrap.headers["Cache-Control"] == IMMUTABLE
        script = (await bootstrap.get_data()).decode()
        packaged = (WEB / "flutter_bootstrap.js").read_text()
        config, original = build_config(script), build_config(packaged)
        assert config["engineRevision"] == original["engineRevision"]
        assert len(config["builds"]) == len(original["builds"]) == 2
        paths = [build.get(key) for build in config["builds"] for key in build if "Path" in key]
        assert sorted(paths) == sorted(
            f"{name}?v={version(name)}"
            for name in ("main.dart.wasm", "main.dart.mjs", "main.dart.js")
        )
        # the rest of the loader is the packaged one
        assert script.replace(json.dumps(config, separators=(",", ":")), "") == packaged.replace(
            json.dumps(original, separators=(",", ":")), ""
        )
        for name in ("main.dart.wasm", "main.dart.mjs", "main.dart.js"):
            response = await client.get(urls[name], headers={"Accept-Encoding": "identity"})
            assert response.status_code == 200, name
            assert response.headers["Cache-Control"] == IMMUTABLE, name
            assert await response.get_data() == (WEB / name).read_bytes(), name


@pytest.mark.parametrize("prefix", ["", "/flet-app"])
async def test_canvaskit_and_assets_are_served_under_a_content_token(prefix: str) -> None:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix=prefix or None)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        urls = await client_urls(client, prefix)
        for url, relative in (
            (urls["canvaskit"] + "skwasm.wasm", "canvaskit/skwasm.wasm"),
            (urls["canvaskit"] + "chromium/canvaskit.js", "canvaskit/chromium/canvaskit.js"),
            (urls["assets"] + "fonts/roboto.woff2", "assets/fonts/roboto.woff2"),
            (urls["assets"] + "AssetManifest.bin.json", "assets/AssetManifest.bin.json"),
        ):
            response = await client.get(url, headers={"Accept-Encoding": "identity"})
            assert response.status_code == 200, url
            assert response.headers["Cache-Control"] == IMMUTABLE, url
            assert await response.get_data() == (WEB / relative).read_bytes(), url
            plain = await client.get(
                f"{prefix}/{relative}", headers={"Accept-Encoding": "identity"}
            )
            assert plain.headers["ETag"] == response.headers["ETag"]  # one representation
        # the patched FontManifest (no_cdn adds Roboto) is fixed for the run: in the token
        manifest = await client.get(urls["assets"] + "FontManifest.json")
        assert manifest.headers["Cache-Control"] == IMMUTABLE
        assert "Roboto" in (await manifest.get_data()).decode()
        missing = await client.get(urls["canvaskit"] + "nope.wasm")
        assert missing.status_code == 404
        spelled = await client.get(
            urls["canvaskit"].replace("/canvaskit/", "//canvaskit/") + "skwasm.js"
        )
        assert spelled.status_code == 308
        assert spelled.headers["Location"] == urls["canvaskit"] + "skwasm.js"


async def test_the_tokens_follow_the_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade changing only canvaskit/ changes only canvaskit's token."""
    web = tmp_path / "web"
    names = "index.html flutter_bootstrap.js manifest.json main.dart.mjs canvaskit/skwasm.js"
    for relative in [*names.split(), "assets/FontManifest.json"]:
        (web / relative).parent.mkdir(parents=True, exist_ok=True)
        (web / relative).write_bytes((WEB / relative).read_bytes())
    monkeypatch.setenv("FLET_WEB_PATH", str(web))
    restarts = iter(range(10))

    async def tokens() -> tuple[str, str, str]:
        # a new cache root: a new store, as a restarted server indexes anew
        monkeypatch.setenv("QUART_FLET_CACHE_DIR", str(tmp_path / f"cache{next(restarts)}"))
        async with quart_app(main).test_app() as test_app:
            urls = await client_urls(test_app.test_client())
            return urls["canvaskit"], urls["assets"], urls["main.dart.mjs"]

    before = await tokens()
    (web / "canvaskit/skwasm.js").write_bytes(b"// another engine\n")
    after = await tokens()
    assert after[0] != before[0] and after[1:] == before[1:]
    (web / "main.dart.mjs").write_bytes(b"// another app build\n")
    assert (await tokens())[2] != after[2]


@pytest.mark.parametrize(
    "script",
    [
        "console.log('no build config here');",
        "_flutter.buildConfig = {not json};",
        '_flutter.buildConfig = {"builds": 3};',
        "if (_flutter.buildConfig == null) {}",
    ],
)
def test_a_build_config_not_understood_is_left_as_it_is(script: str) -> None:
    assert version_build_config(script, lambda path: "0123456789abcdef") == script


def test_build_config_paths_without_a_version_stay_as_they_are() -> None:
    script = '_flutter.buildConfig = {"builds":[{"mainJsPath":"main.dart.js"},{"x":1}]};\nrun();'
    versions = {"main.dart.js": "00000000000000aa"}
    rewritten = version_build_config(script, versions.get)
    assert rewritten == (
        '_flutter.buildConfig = {"builds":[{"mainJsPath":"main.dart.js?v=00000000000000aa"},'
        '{"x":1}]};\nrun();'
    )
    assert version_build_config(script, {}.get) == script  # no version known: as it was


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/", "private, no-cache"),  # with a new browser's id: for it alone
        ("/main.dart.wasm", SHORT),  # no version: briefly
        ("/main.dart.mjs", SHORT),
        ("/canvaskit/skwasm.wasm", SHORT),
        ("/assets/fonts/MaterialIcons-Regular.otf", SHORT),
        ("/favicon.png", SHORT),
        ("/icons/loading-animation.png", SHORT),
        ("/flutter_bootstrap.js", "no-cache"),  # it picks the engine's files
        ("/flutter_service_worker.js?v=1804020039", "no-cache"),  # unregisters itself
        ("/flutter_service_worker.js", "no-cache"),
        ("/manifest.json", "no-cache"),  # patched
        ("/assets/FontManifest.json", "no-cache"),  # patched (no_cdn)
        # a version other than the content's: another release asked; never cached
        (f"/main.dart.wasm?v={STALE}", "no-cache"),
        (f"/flutter_bootstrap.js?v={STALE}", "no-cache"),
        (f"/_v/{STALE}/canvaskit/skwasm.wasm", "no-cache"),
        (f"/_v/{STALE}/assets/fonts/MaterialIcons-Regular.otf", "no-cache"),
        (f"/_v/{STALE}/assets/FontManifest.json", "no-cache"),
        ("/favicon.png?v=1", "no-cache"),
    ],
)
async def test_cache_control_by_url(path: str, policy: str) -> None:
    status, headers, _ = await get(quart_app(main), path)
    assert status == 200
    assert headers["Cache-Control"] == policy


async def test_a_version_of_another_file_is_not_immutable() -> None:
    status, headers, _ = await get(quart_app(main), f"/main.dart.mjs?v={version('main.dart.wasm')}")
    assert status == 200
    assert headers["Cache-Control"] == "no-cache"
    status, headers, _ = await get(quart_app(main), f"/main.dart.mjs?v={version('main.dart.mjs')}")
    assert headers["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize("which", ["canvaskit", "assets"])
async def test_a_token_is_only_good_for_its_own_directory(which: str) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        urls = await client_urls(client)
        other = {"canvaskit": "assets", "assets": "canvaskit"}[which]
        token = urls[which].split("/")[2]
        path = {"canvaskit": "skwasm.js", "assets": "fonts/MaterialIcons-Regular.otf"}[other]
        response = await client.get(f"/_v/{token}/{other}/{path}")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"


async def test_versioned_urls_keep_304_range_and_head() -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        urls = await client_urls(client)
        for url in (urls["main.dart.wasm"], urls["canvaskit"] + "skwasm.js", urls["bootstrap"]):
            whole = await client.get(url, headers={"Accept-Encoding": "br"})
            full, etag = await whole.get_data(), whole.headers["ETag"]
            assert whole.headers["Vary"] == "Accept-Encoding", url
            cached = await client.get(url, headers={"Accept-Encoding": "br", "If-None-Match": etag})
            assert cached.status_code == 304, url
            assert cached.headers["Cache-Control"] == IMMUTABLE, url
            part = await client.get(url, headers={"Accept-Encoding": "br", "Range": "bytes=0-9"})
            assert part.status_code == 206, url
            assert part.headers.get("Content-Encoding") == whole.headers.get("Content-Encoding")
            assert await part.get_data() == full[:10], url
            head = await client.head(url, headers={"Accept-Encoding": "br"})
            assert head.status_code == 200 and head.headers["ETag"] == etag, url
            assert int(head.headers["Content-Length"]) == len(full), url


# ---- several Flet apps, redirects and the user's own routes ------------------


@pytest.mark.parametrize("sub_first", [False, True], ids=["root-first", "sub-first"])
async def test_prefix_without_slash_redirects_keeping_the_query(sub_first: bool) -> None:
    app = two_flet_apps(sub_first)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get("/sub-app", query_string={"a": "1", "b": "two words"})
        assert response.status_code == 308
        assert response.headers["Location"] == "/sub-app/?a=1&b=two+words"
        bare = await client.get("/sub-app")
        assert bare.headers["Location"] == "/sub-app/"


@pytest.mark.parametrize("sub_first", [False, True], ids=["root-first", "sub-first"])
async def test_each_flet_app_serves_its_own_mount_point(sub_first: bool) -> None:
    app = two_flet_apps(sub_first)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for path, base in [
            ("/", "/"),
            ("/some/route", "/"),
            ("/sub-app/", "/sub-app/"),
            ("/sub-app/some/route", "/sub-app/"),
        ]:
            response = await client.get(path)
            assert response.status_code == 200, path
            body = await response.get_data()
            assert base_href(body) == base, path
            assert config_value(body, "webSocketEndpoint") == base + "ws", path


@pytest.mark.parametrize("sub_first", [False, True], ids=["root-first", "sub-first"])
async def test_user_routes_work_beside_flet_apps(sub_first: bool) -> None:
    app = two_flet_apps(sub_first)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        hello = await client.get("/api/hello")
        assert hello.status_code == 200
        assert await hello.get_json() == {"message": "hello"}
        about = await client.get("/about")
        assert about.status_code == 200
        assert await about.get_data() == b"<h1>About us</h1>"


async def test_prefix_given_with_a_trailing_slash_serves_the_index() -> None:
    app = Quart(__name__, static_folder=None)
    app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app/")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await client.get("/flet-app/")
        assert index.status_code == 200
        assert base_href(await index.get_data()) == "/flet-app/"
        redirect = await client.get("/flet-app", query_string={"a": "1"})
        assert redirect.status_code == 308
        assert redirect.headers["Location"] == "/flet-app/?a=1"


async def test_flet_blueprint_nested_in_a_user_blueprint() -> None:
    app = Quart(__name__, static_folder=None)
    parent = Blueprint("site", __name__)
    parent.register_blueprint(flet_blueprint(main), url_prefix="/flet")
    app.register_blueprint(parent, url_prefix="/p")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await client.get("/p/flet/")
        assert index.status_code == 200
        body = await index.get_data()
        assert base_href(body) == "/p/flet/"
        assert config_value(body, "webSocketEndpoint") == "/p/flet/ws"
        async with client.websocket("/p/flet/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            await flet.patch_with("hello")


# ---- assets_dir and app metadata -------------------------------------------


@pytest.fixture(name="assets_dir")
def _assets_dir(tmp_path: Path) -> Path:
    assets = tmp_path / "assets"
    (assets / "icons").mkdir(parents=True)
    (assets / "favicon.png").write_bytes(b"\x89PNG my favicon")
    (assets / "icons" / "icon-192.png").write_bytes(b"\x89PNG my icon")
    (assets / "icons" / "loading-animation.png").write_bytes(b"\x89PNG my spinner")
    (assets / "manifest.json").write_text(
        json.dumps({"name": "Mine", "short_name": "Mine", "icons": [], "display": "standalone"})
    )
    (assets / "hello.txt").write_text("from assets_dir")
    return assets


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/favicon.png", b"\x89PNG my favicon"),
        ("/icons/icon-192.png", b"\x89PNG my icon"),
        ("/icons/loading-animation.png", b"\x89PNG my spinner"),
        ("/hello.txt", b"from assets_dir"),
    ],
)
async def test_assets_dir_overrides_client_files(
    assets_dir: Path, path: str, expected: bytes
) -> None:
    status, _, body = await get(quart_app(main, assets_dir=assets_dir), path)
    assert status == 200
    assert body == expected


async def test_assets_dir_overrides_manifest_and_falls_back_per_file(assets_dir: Path) -> None:
    app = quart_app(main, assets_dir=str(assets_dir))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        manifest = json.loads(await (await client.get("/manifest.json")).get_data())
        assert manifest["name"] == "Mine"
        assert manifest["display"] == "standalone"
        # files the assets_dir lacks still come from the packaged client
        packaged = await client.get("/icons/icon-512.png")
        assert packaged.status_code == 200
        assert (await packaged.get_data())[:4] == b"\x89PNG"


async def test_assets_dir_files_are_never_cached_without_revalidation(assets_dir: Path) -> None:
    """The app's files are served as they are on disk now, under _v/ too."""
    (assets_dir / "assets" / "fonts").mkdir(parents=True)
    (assets_dir / "assets" / "fonts" / "roboto.woff2").write_bytes(b"my roboto")
    app = quart_app(main, assets_dir=str(assets_dir))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        urls = await client_urls(client)
        for path in ("/hello.txt", "/favicon.png", urls["assets"] + "fonts/roboto.woff2"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["Cache-Control"] == "no-cache", path
        assert await (await client.get(urls["assets"] + "fonts/roboto.woff2")).get_data() == (
            b"my roboto"
        )
        # the packaged files beside them keep their token
        packaged = await client.get(urls["assets"] + "fonts/MaterialIcons-Regular.otf")
        assert packaged.headers["Cache-Control"] == IMMUTABLE


async def test_own_flutter_bootstrap_in_assets_dir_is_linked_plainly(assets_dir: Path) -> None:
    (assets_dir / "flutter_bootstrap.js").write_text("// my loader\n")
    app = quart_app(main, assets_dir=str(assets_dir))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await (await client.get("/")).get_data()
        assert b'src="flutter_bootstrap.js"' in index
        assert re.search(rb'src="python\.js\?v=[0-9a-f]{16}"', index)
        mine = await client.get("/flutter_bootstrap.js")
        assert await mine.get_data() == b"// my loader\n"
        assert mine.headers["Cache-Control"] == "no-cache"


async def test_app_metadata_patches_index_and_manifest() -> None:
    app = quart_app(
        main,
        app_name="Quart Counter",
        app_short_name="Counter",
        app_description="Counts clicks on Quart",
    )
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = (await (await client.get("/")).get_data()).decode()
        assert "<title>Quart Counter</title>" in index
        assert '<meta name="apple-mobile-web-app-title" content="Quart Counter">' in index
        assert '<meta name="description" content="Counts clicks on Quart">' in index
        manifest = json.loads(await (await client.get("/manifest.json")).get_data())
        assert manifest["name"] == "Quart Counter"
        assert manifest["short_name"] == "Counter"
        assert manifest["description"] == "Counts clicks on Quart"


async def test_without_metadata_the_client_defaults_stay() -> None:
    status, _, body = await get(quart_app(main), "/")
    assert status == 200
    assert b"<title>Quart Counter</title>" not in body
    assert re.search(rb"<title>[^<]+</title>", body)


# ---- options ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "option"),
    [
        ({"web_renderer": "opengl"}, "web_renderer"),
        ({"session_timeout_seconds": -1}, "session_timeout_seconds"),
        ({"oauth_state_timeout_seconds": "soon"}, "oauth_state_timeout_seconds"),
        ({"route_url_strategy": "query"}, "route_url_strategy"),
        ({"no_cdn": "maybe"}, "no_cdn"),
        ({"websocket_endpoint": "a?b"}, "websocket_endpoint"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_option_fails_at_blueprint_creation(opts: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError, match=option):
        flet_blueprint(main, **opts)


def test_missing_assets_dir_fails_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="assets_dir") as error:
        flet_blueprint(main, assets_dir=tmp_path / "missing")
    assert "missing" in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [
        ("FLET_WEB_RENDERER", "opengl", "web_renderer"),
        ("FLET_SESSION_TIMEOUT", "-5", "session_timeout_seconds"),
        ("FLET_WEB_NO_CDN", "perhaps", "no_cdn"),
    ],
)
def test_bad_env_override_fails_naming_option_and_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, option: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(OptionError, match=option) as error:
        quart_app(main)
    assert variable in str(error.value)


async def test_env_override_reaches_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLET_WEB_RENDERER", "canvaskit")
    monkeypatch.setenv("FLET_APP_NAME", "From Env")
    app = quart_app(main, web_renderer="skwasm")
    monkeypatch.delenv("FLET_WEB_RENDERER")  # resolved once, at creation
    status, _, body = await get(app, "/")
    assert status == 200
    assert config_value(body, "webRenderer") == "canvaskit"
    assert b"<title>From Env</title>" in body


async def test_renderer_argument_reaches_the_index() -> None:
    _, _, body = await get(quart_app(main, web_renderer="skwasm"), "/")
    assert config_value(body, "webRenderer") == "skwasm"


def test_two_flet_blueprints_with_one_name_is_a_clear_error() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main), url_prefix="/one")
    with pytest.raises(ValueError, match="'flet'.*name"):
        app.register_blueprint(flet_blueprint(main), url_prefix="/two")


def test_two_flet_blueprints_with_their_own_names_register() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, name="one"), url_prefix="/one")
    app.register_blueprint(flet_blueprint(main, name="two"), url_prefix="/two")
    assert set(app.extensions["quart_flet"].mounts) == {"one", "two"}


async def test_flet_app_answers_http_errors_with_json() -> None:
    from examples.counter import app

    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.post("/")
        assert response.status_code == 405
        body = await response.get_json()
        assert body["status"] == 405 and body["error"]
        assert "GET" in response.headers["Allow"]
        response = await client.delete("/upload")
        assert response.status_code == 405
        assert (await response.get_json())["status"] == 405


# ---- the reconnect script (issue 25) ---------------------------------------


def reconnect_config(body: bytes) -> dict[str, Any]:
    found = re.search(
        rb'<script id="quart-flet-reconnect">.*?const config = (\{.*?\});', body, re.S
    )
    assert found is not None, "no reconnect script in the index"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


async def test_the_index_carries_the_reconnect_options_before_the_engine_loads() -> None:
    app = Quart(__name__)
    blueprint = flet_blueprint(
        main,
        reconnect_notice="Un instant…",
        reconnect_notice_delay_seconds=0.5,
        reconnect_reload_seconds=0,
        reconnect_login_url="/login?next={next}",
    )
    app.register_blueprint(blueprint, url_prefix="/flet-app")
    status, _, body = await get(app, "/flet-app/some/route")
    assert status == 200
    assert reconnect_config(body) == {
        "base": "/flet-app/",
        "socketPath": "/flet-app/ws",
        "notice": "Un instant…",
        "noticeDelayMs": 500,
        "reloadMs": 0,
        "retryMs": 3000,
        "loginUrl": "/login?next={next}",
    }
    script = body.index(b'id="quart-flet-reconnect"')
    assert script < body.index(b"</head>") < body.index(b'src="flutter_bootstrap.js')


async def test_the_reconnect_notice_cannot_close_its_script() -> None:
    app = quart_app(main, reconnect_notice="</script><script>alert(1)</script><!--")
    _, _, body = await get(app, "/")
    assert reconnect_config(body)["notice"] == "</script><script>alert(1)</script><!--"
    assert b"alert(1)</script>" not in body
    assert body.count(b"<script>alert") == 0
