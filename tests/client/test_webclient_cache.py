"""The compressed web client: variants built once on disk per client build,
served by Accept-Encoding with Vary, ETags, 304s and Ranges, and a cache
policy that survives flet-web upgrades. Runs on a small copy of the client
(FLET_WEB_PATH) with its own cache directory, so nothing here waits minutes
for brotli's best quality."""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import flet as ft
import pytest
from flet_web import get_package_web_dir
from quart import Quart
from quart.utils import run_sync

from quart_flet import quart_app
from quart_flet.client.compression import BROTLI_BEST, BROTLI_FAST, GZIP, VariantStore
from quart_flet.session.registry import get_registry

REAL_CLIENT = Path(get_package_web_dir())
BIG_JS = b"".join(b"function f%d(a,b){return a+b*%d;}\n" % (i, i) for i in range(4000))


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


@pytest.fixture(name="client_dir")
def _client_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A small web client: the real index and loaders, a big compressible
    file and an already-compressed one; its own cache directory."""
    web = tmp_path / "web"
    for name in ("index.html", "flutter_bootstrap.js", "python.js", "manifest.json"):
        (web / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL_CLIENT / name, web / name)
    (web / "assets").mkdir()
    shutil.copyfile(REAL_CLIENT / "assets/FontManifest.json", web / "assets/FontManifest.json")
    (web / "main.dart.js").write_bytes(BIG_JS)
    (web / "canvaskit").mkdir()
    (web / "canvaskit" / "skwasm.js").write_bytes(BIG_JS + b"// skwasm\n")
    shutil.copyfile(REAL_CLIENT / "favicon.png", web / "favicon.png")
    monkeypatch.setenv("FLET_WEB_PATH", str(web))
    monkeypatch.setenv("QUART_FLET_CACHE_DIR", str(tmp_path / "cache"))
    yield web


def store_of(app: Quart) -> VariantStore:
    return next(iter(get_registry(app).webclients.values())).store


async def wait_built(app: Quart) -> None:
    assert await run_sync(store_of(app).built.wait)(60), "variants were not built"


def test_variants_are_built_once_and_keyed_by_content(client_dir: Path, tmp_path: Path) -> None:
    store = VariantStore(client_dir, tmp_path / "cache")
    store.build()
    assert store.cache_dir is not None and store.cache_dir.name.startswith("web-")
    built = store.cache_dir / "main.dart.js"
    stamps = {s: Path(f"{built}{s}").stat().st_mtime_ns for s in (GZIP, BROTLI_FAST, BROTLI_BEST)}
    assert brotli.decompress(Path(f"{built}{BROTLI_BEST}").read_bytes()) == BIG_JS
    assert gzip.decompress(Path(f"{built}{GZIP}").read_bytes()) == BIG_JS
    assert not (store.cache_dir / "favicon.png.br").exists()  # PNG: already compressed

    again = VariantStore(client_dir, tmp_path / "cache")  # a restart, or another worker
    again.index()
    assert again.cache_dir == store.cache_dir
    assert set(again.files["main.dart.js"].variants) == {GZIP, BROTLI_FAST, BROTLI_BEST}
    again.build()
    assert {s: Path(f"{built}{s}").stat().st_mtime_ns for s in stamps} == stamps

    (client_dir / "main.dart.js").write_bytes(BIG_JS + b"// new release\n")
    upgraded = VariantStore(client_dir, tmp_path / "cache")
    upgraded.index()
    assert upgraded.cache_dir != store.cache_dir
    assert upgraded.files["main.dart.js"].variants == {}


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [
        ("gzip, deflate, br, zstd", "br", brotli.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("identity", None, bytes),
        ("br;q=0, gzip;q=1", "gzip", gzip.decompress),
    ],
)
async def test_files_are_served_in_the_best_accepted_encoding(
    client_dir: Path, accept: str, encoding: str | None, decode: Any
) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        await wait_built(app)
        response = await test_app.test_client().get(
            "/main.dart.js", headers={"Accept-Encoding": accept}
        )
        body = await response.get_data()
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") == encoding
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Cache-Control"] == "max-age=600"  # no version in the URL
        assert int(response.headers["Content-Length"]) == len(body)
        assert decode(body) == BIG_JS


async def test_etags_differ_per_encoding_and_answer_304(client_dir: Path) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        await wait_built(app)
        client = test_app.test_client()
        etags = {}
        for accept in ("br", "gzip", "identity"):
            first = await client.get("/main.dart.js", headers={"Accept-Encoding": accept})
            etags[accept] = first.headers["ETag"]
            again = await client.get(
                "/main.dart.js",
                headers={"Accept-Encoding": accept, "If-None-Match": etags[accept]},
            )
            assert again.status_code == 304
            assert await again.get_data() == b""
        assert len(set(etags.values())) == 3
        # a br ETag does not validate the gzip representation
        crossed = await client.get(
            "/main.dart.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etags["br"]}
        )
        assert crossed.status_code == 200


async def test_range_applies_to_the_selected_representation(client_dir: Path) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        await wait_built(app)
        client = test_app.test_client()
        plain = await client.get(
            "/main.dart.js", headers={"Accept-Encoding": "identity", "Range": "bytes=100-199"}
        )
        assert plain.status_code == 206
        assert plain.headers["Content-Range"] == f"bytes 100-199/{len(BIG_JS)}"
        assert await plain.get_data() == BIG_JS[100:200]
        whole = await (
            await client.get("/main.dart.js", headers={"Accept-Encoding": "br"})
        ).get_data()
        part = await client.get(
            "/main.dart.js", headers={"Accept-Encoding": "br", "Range": "bytes=0-9"}
        )
        assert part.status_code == 206
        assert part.headers["Content-Encoding"] == "br"
        assert await part.get_data() == whole[:10]


async def test_index_is_no_cache_and_links_versioned_loaders(client_dir: Path) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await client.get("/", headers={"Accept-Encoding": "br"})
        assert index.headers["Cache-Control"] == "private, no-cache"  # a new browser: its id too
        assert index.headers["Content-Encoding"] == "br"
        html = brotli.decompress(await index.get_data()).decode()
        assert '<base href="/">' in html
        found = re.search(r'src="flutter_bootstrap.js\?v=([0-9a-f]+)"', html)
        assert found is not None, html
        versioned = await client.get(f"/flutter_bootstrap.js?v={found.group(1)}")
        assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        stale = await client.get("/flutter_bootstrap.js?v=0123456789abcdef")
        assert stale.headers["Cache-Control"] == "no-cache"
        again = await client.get("/", headers={"If-None-Match": index.headers["ETag"]})
        assert again.status_code == 200  # no Accept-Encoding: another representation
        cached = await client.get(
            "/", headers={"Accept-Encoding": "br", "If-None-Match": index.headers["ETag"]}
        )
        assert cached.status_code == 304


@pytest.mark.parametrize("accept", ["br", "gzip", "identity"])
async def test_versioned_urls_get_the_same_variants(client_dir: Path, accept: str) -> None:
    """``?v=`` and ``_v/<token>/`` pick the file, not its representation:
    the same encodings, ETags, 304s and Ranges as the plain URL."""
    app = quart_app(main)
    async with app.test_app() as test_app:
        await wait_built(app)
        client = test_app.test_client()
        html = (await (await client.get("/")).get_data()).decode()
        bootstrap = re.search(r'src="(flutter_bootstrap\.js\?v=[0-9a-f]{16})"', html)
        canvaskit = re.search(r'flet\.canvasKitBaseUrl="(/_v/[0-9a-f]{16}/canvaskit/)"', html)
        assert bootstrap is not None and canvaskit is not None, html
        script = (await (await client.get("/" + bootstrap.group(1))).get_data()).decode()
        main_js = re.search(r'"mainJsPath":"(main\.dart\.js\?v=[0-9a-f]{16})"', script)
        assert main_js is not None, script[-2000:]
        assert '"mainWasmPath":"main.dart.wasm"' in script  # not in this client: as it was
        encoding = {"br": "br", "gzip": "gzip", "identity": None}[accept]
        for versioned, plain in (
            ("/" + main_js.group(1), "/main.dart.js"),
            (canvaskit.group(1) + "skwasm.js", "/canvaskit/skwasm.js"),
        ):
            headers = {"Accept-Encoding": accept}
            response = await client.get(versioned, headers=headers)
            reference = await client.get(plain, headers=headers)
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert reference.headers["Cache-Control"] == "max-age=600"
            assert response.headers.get("Content-Encoding") == encoding, versioned
            assert response.headers["Vary"] == "Accept-Encoding"
            assert response.headers["ETag"] == reference.headers["ETag"]
            body = await response.get_data()
            assert body == await reference.get_data()
            etag = response.headers["ETag"]
            again = await client.get(versioned, headers={**headers, "If-None-Match": etag})
            assert again.status_code == 304
            part = await client.get(versioned, headers={**headers, "Range": "bytes=5-14"})
            assert part.status_code == 206
            assert await part.get_data() == body[5:15]


async def test_incompressible_files_are_sent_as_they_are(client_dir: Path) -> None:
    app = quart_app(main)
    async with app.test_app() as test_app:
        await wait_built(app)
        response = await test_app.test_client().get(
            "/favicon.png", headers={"Accept-Encoding": "br"}
        )
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers
        assert "Vary" not in response.headers
        assert await response.get_data() == (client_dir / "favicon.png").read_bytes()


async def test_files_are_served_before_their_variants_exist(
    client_dir: Path, tmp_path: Path
) -> None:
    """Building never holds a request up: until a variant lands, the file
    goes out as it is (here the build is stopped before it starts)."""
    app = quart_app(main)
    store = store_of(app)
    store.stop()
    async with app.test_app() as test_app:
        response = await test_app.test_client().get(
            "/main.dart.js", headers={"Accept-Encoding": "br"}
        )
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers
        assert await response.get_data() == BIG_JS
    assert not store.built.is_set()
