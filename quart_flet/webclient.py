"""The Flet web client: the patched index.html (also the SPA fallback), the
patched manifests, and every other file of the compiled client or of the
app's assets_dir, with correct MIME types, ETags and 304s.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import shutil
from pathlib import Path

from flet_web import (
    get_package_web_dir,
    patch_font_manifest_json,
    patch_index_html,
    patch_manifest_json,
)
from quart import Response, request
from quart.helpers import send_file
from quart.utils import run_sync
from werkzeug.security import safe_join

from quart_flet.errors import json_error
from quart_flet.options import FletOptions

logger = logging.getLogger("quart_flet")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")

INDEX = "index.html"
MANIFEST = "manifest.json"
FONT_MANIFEST = "assets/FontManifest.json"
_MAX_INDEX_VARIANTS = 32  # one per mount point seen (prefix + root_path)


def is_route_like(path: str) -> bool:
    """Client-side routes get the index; asset-like paths a real 404."""
    extension = os.path.splitext(path)[1].lower()
    return extension in ("", ".html")


class WebClient:
    """Serves one Flet app's web client. ``prepare`` runs at startup."""

    def __init__(self, options: FletOptions) -> None:
        self.options = options
        self.web_dir = Path(get_package_web_dir())
        self.patched_dir: Path | None = None
        self._indexes: dict[str, tuple[bytes, str]] = {}

    def source(self, relative: str) -> Path:
        """assets_dir wins over the packaged client, file by file."""
        if self.options.assets_dir is not None:
            candidate = self.options.assets_dir / relative
            if candidate.is_file():
                return candidate
        return self.web_dir / relative

    async def prepare(self, temp_dir: str) -> None:
        if not (self.web_dir / INDEX).is_file():
            raise RuntimeError(f"Flet web client not found in {self.web_dir} (check FLET_WEB_PATH)")
        self.patched_dir = Path(temp_dir)
        await run_sync(self._patch_manifests)()

    def _patch_manifests(self) -> None:
        assert self.patched_dir is not None
        names = [MANIFEST, FONT_MANIFEST] if self.options.no_cdn else [MANIFEST]
        for name in names:
            target = self.patched_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.source(name), target)
        options = self.options
        patch_manifest_json(
            str(self.patched_dir / MANIFEST),
            app_name=options.app_name,
            app_short_name=options.app_short_name,
            app_description=options.app_description,
        )
        if options.no_cdn:
            patch_font_manifest_json(str(self.patched_dir / FONT_MANIFEST))

    def _render_index(self, base: str, websocket_path: str) -> bytes:
        assert self.patched_dir is not None
        digest = hashlib.sha1(base.encode()).hexdigest()[:12]
        target = self.patched_dir / f"index-{digest}.html"
        shutil.copyfile(self.source(INDEX), target)
        options = self.options
        patch_index_html(
            str(target),
            base_href=base,
            websocket_endpoint_path=websocket_path,
            app_name=options.app_name,
            app_description=options.app_description,
            web_renderer=options.web_renderer,
            route_url_strategy=options.route_url_strategy,
            no_cdn=options.no_cdn,
        )
        return target.read_bytes()

    async def index(self, base: str) -> Response:
        """The index for the mount point ``base`` ('/root/prefix/')."""
        cached = self._indexes.get(base)
        if cached is None:
            body = await run_sync(self._render_index)(base, base + self.options.websocket_endpoint)
            cached = (body, hashlib.sha1(body).hexdigest())
            if len(self._indexes) >= _MAX_INDEX_VARIANTS:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[base] = cached
        body, etag = cached
        response = Response(body, mimetype="text/html")
        response.set_etag(etag)
        response.headers["Cache-Control"] = "no-cache"
        return await response.make_conditional(request)

    async def file(self, path: str, base: str) -> Response:
        """Any path under the mount point: a file, the index, or a 404."""
        if path in ("", INDEX):
            return await self.index(base)
        if path in (MANIFEST, FONT_MANIFEST) and self.patched_dir is not None:
            found: Path | None = self.patched_dir / path
        else:
            found = self._lookup(path)
        if found is None:
            if is_route_like(path):
                return await self.index(base)
            return json_error(404, f"no such file: {path}")
        response = await send_file(found, conditional=True)
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _lookup(self, path: str) -> Path | None:
        roots = [self.web_dir]
        if self.options.assets_dir is not None:
            roots.insert(0, self.options.assets_dir)
        for root in roots:
            joined = safe_join(str(root), path)
            if joined is not None and os.path.isfile(joined):
                return Path(joined)
        return None
