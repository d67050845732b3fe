"""HTTP/2 against a real Hypercorn: TLS with a certificate made by the test
(ALPN h2), and h2c (prior knowledge) on plain TCP. Static files go out
compressed and multiplexed on one connection; the examples' hypercorn.toml
is the configuration under test."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Certificate, start_tls_hypercorn
from flet_web import get_package_web_dir

pytestmark = pytest.mark.server

WEB = Path(get_package_web_dir())
FILES = ["flutter.js", "main.dart.mjs", "canvaskit/skwasm.js", "manifest.json"]


def tls_server(hypercorn: Any, tls: Certificate, app: str, **kwargs: Any) -> Any:
    # the toml's uvloop worker is tested elsewhere; keep these lean
    return start_tls_hypercorn(hypercorn, tls, app, "--worker-class", "asyncio", **kwargs)


async def test_static_files_over_h2_with_tls(hypercorn: Any, tls: Any) -> None:
    server = tls_server(hypercorn, tls, "examples.counter:app")
    async with httpx.AsyncClient(
        http2=True, verify=tls.client_context(), base_url=server.url
    ) as client:
        index = await client.get("/")
        assert index.http_version == "HTTP/2"
        assert index.headers["cache-control"] == "private, no-cache"  # a new browser: its id too
        assert '<base href="/">' in index.text
        responses = await asyncio.gather(
            *(client.get(f"/{name}", headers={"Accept-Encoding": "br, gzip"}) for name in FILES)
        )
    for name, response in zip(FILES, responses, strict=True):
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        if name != "manifest.json":  # patched per app, so sent as it is
            assert response.headers["vary"] == "Accept-Encoding"
            assert response.headers["content-encoding"] in ("br", "gzip")
            original = (WEB / name).read_bytes()
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(original).digest()
            assert int(response.headers["content-length"]) < len(original)
    assert "Task was destroyed" not in server.log()


async def test_h2c_prior_knowledge_on_plain_tcp(hypercorn: Any) -> None:
    server = hypercorn("examples.counter:app")
    async with httpx.AsyncClient(http1=False, http2=True, base_url=server.url) as client:
        response = await client.get("/main.dart.mjs", headers={"Accept-Encoding": "gzip"})
        etag = response.headers["etag"]
        again = await client.get(
            "/main.dart.mjs", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
    assert response.http_version == "HTTP/2"
    assert response.content == (WEB / "main.dart.mjs").read_bytes()
    assert again.status_code == 304


async def test_upload_put_over_h2(hypercorn: Any, tls: Any, tmp_path: Path) -> None:
    """A signed upload streamed over HTTP/2 lands whole in upload_dir."""
    from urllib.parse import urlencode

    from quart_flet.http.uploads import upload_serializer

    upload_dir = tmp_path / "uploads"
    env = {"FLET_SECRET_KEY": "h2-test-key", "FLET_UPLOAD_DIR": str(upload_dir)}
    server = tls_server(hypercorn, tls, "examples.upload:app", env=env)
    token = upload_serializer(["h2-test-key"], "flet").dumps(["big.bin", 600])
    body = bytes(range(256)) * (24 * 1024)  # 6 MiB, several h2 flow-control windows
    context = tls.client_context()
    async with httpx.AsyncClient(http2=True, verify=context, base_url=server.url) as client:
        response = await client.put(
            "/upload?" + urlencode({"f": "big.bin", "e": "600", "s": token}), content=body
        )
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200, response.text
    assert (upload_dir / "big.bin").read_bytes() == body
    assert not [p for p in upload_dir.iterdir() if p.name != "big.bin"]  # no temp file left
