"""The Flet web client: the patched index.html (also the SPA fallback), the
patched manifests, and every other file of the compiled client or of the
app's assets_dir, with correct MIME types, ETags, 304s and Ranges. Files go
out compressed (:mod:`quart_flet.client.compression`), the index with preload
hints (:mod:`quart_flet.client.preload`), and only a URL that names its
content is cached for good, so a browser never mixes two flet-web releases.

Why and how: docs/discussion/web-client.md, "Caching, and never mixing two
releases".
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from flet_web import (
    get_package_web_dir,
    patch_font_manifest_json,
    patch_index_html,
    patch_manifest_json,
)
from quart import Response, request
from quart.utils import run_sync
from quart.wrappers.response import FileBody
from werkzeug.http import parse_etags
from werkzeug.security import safe_join

from quart_flet.client import browserid, compression, preload, reconnect
from quart_flet.client.compression import ClientFile, Variant, VariantStore, variant_store
from quart_flet.errors import json_error
from quart_flet.options import FletOptions

logger = logging.getLogger("quart_flet")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")

INDEX = "index.html"
MANIFEST = "manifest.json"
FONT_MANIFEST = "assets/FontManifest.json"
_MAX_INDEX_VARIANTS = 32  # one per mount point seen (prefix + root_path)
BOOTSTRAP = "flutter_bootstrap.js"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "max-age=600"  # client files on URLs without a version
# Linked from the index with ?v=<content version>, so cacheable for good.
_VERSIONED_IN_INDEX = (BOOTSTRAP, "python.js")
# Without a version these stay no-cache: they decide which other files load.
_ENTRY_POINTS = frozenset({BOOTSTRAP, "flutter_service_worker.js"})
# The engine's paths in _flutter.buildConfig, versioned in flutter_bootstrap.js.
_BUILD_PATHS = ("mainWasmPath", "jsSupportRuntimePath", "mainJsPath")
_BUILD_CONFIG = re.compile(r"_flutter\.buildConfig\s*=(?!=)\s*")
# Directories the engine reaches from a base URL: served under _v/<tree>/.
VERSION_PREFIX = "_v"
_VERSIONED_DIRS = ("assets", "canvaskit")
_TOKEN = re.compile(r"[0-9a-f]{16}")
# Files a browser fetches first, per renderer: compressed first.
_FIRST = {
    "canvaskit": ("main.dart.js", "canvaskit/canvaskit.wasm", "canvaskit/canvaskit.js"),
    "default": ("main.dart.wasm", "main.dart.mjs", "canvaskit/skwasm.wasm", "canvaskit/skwasm.js"),
}
_CHUNK = 256 * 1024
# one byte range: "first-[last]" or "-suffix"; the unit is case-insensitive
_BYTE_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*", re.IGNORECASE)
_HUGE = 10**18  # beyond any file; keeps int() off megabyte-long digit strings
UNSATISFIABLE: Literal["unsatisfiable"] = "unsatisfiable"


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _HUGE


def byte_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The ``[start, stop)`` slice a ``Range`` header asks of ``size`` bytes;
    UNSATISFIABLE for a 416; None to ignore it and send the whole file (not
    one valid byte range, or an empty file)."""
    found = _BYTE_RANGE.fullmatch(header.strip())
    if found is None or size == 0:
        return None
    first, last = found.groups()
    if not first:  # "-N": the last N bytes, the whole file when N >= size
        if not last:
            return None
        suffix = _position(last)
        return (max(0, size - suffix), size) if suffix > 0 else UNSATISFIABLE
    start = _position(first)
    if last and _position(last) < start:  # "5-2": invalid, so ignored
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, min(_position(last) + 1, size) if last else size


def canonical_path(path: str) -> str | None:
    """``path`` without empty and ``.`` segments; None if it has ``..``."""
    segments = path.split("/")
    if ".." in segments:
        return None
    return "/".join(segment for segment in segments if segment not in ("", "."))


def _disk_variant(path: Path) -> Variant:
    """A file served as it is on disk now; its ETag (mtime and size, as
    nginx's) changes with it."""
    stat = path.stat()
    return Variant(path, "", stat.st_size, f"{stat.st_mtime_ns:x}-{stat.st_size:x}")


def _if_range_holds(if_range: str | None, etag: str) -> bool:
    """If-Range needs a strong ETag match; weak tags and dates never match
    (these files carry no Last-Modified)."""
    return if_range is None or if_range.strip() == f'"{etag}"'


def send_variant(variant: Variant, mimetype: str, cache_control: str, vary: bool) -> Response:
    """``variant`` for this request: 200, 206, 304, 412 or 416."""

    def headed(response: Response) -> Response:
        if vary:
            response.vary.add("Accept-Encoding")
        response.headers["Cache-Control"] = cache_control
        return response

    etag, size = variant.etag, variant.size
    if_match = request.headers.get("If-Match")
    if if_match is not None and not parse_etags(if_match).contains(etag):
        return headed(json_error(412, "If-Match does not match the current representation"))
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and parse_etags(if_none_match).contains_weak(etag):
        not_modified = Response(b"", 304)
        del not_modified.headers["Content-Type"]
        del not_modified.content_length
        not_modified.set_etag(etag)
        return headed(not_modified)
    span: tuple[int, int] | Literal["unsatisfiable"] | None = None
    ranges = request.headers.get("Range")
    if ranges is not None and _if_range_holds(request.headers.get("If-Range"), etag):
        span = byte_range(ranges, size)
    if span == UNSATISFIABLE:
        refused = headed(json_error(416, f"range not satisfiable: {ranges}"))
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    body = FileBody(variant.path, buffer_size=_CHUNK)
    response = headed(Response(body, mimetype=mimetype))
    response.set_etag(etag)
    response.accept_ranges = "bytes"
    if variant.encoding:
        response.content_encoding = variant.encoding
    if isinstance(span, tuple):
        start, stop = span
        body.begin, body.end = start, stop
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        response.content_length = stop - start
    else:
        response.content_length = size
    return response


def _mimetype(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def is_route_like(path: str) -> bool:
    """Client-side routes get the index; asset-like paths a real 404."""
    extension = os.path.splitext(path)[1].lower()
    return extension in ("", ".html")


def versioned_path(path: str) -> tuple[str, str, str] | None:
    """``(token, directory, relative)`` for ``_v/<token>/<directory>/...``."""
    parts = path.split("/", 3)
    if len(parts) == 4 and parts[0] == VERSION_PREFIX and parts[2] in _VERSIONED_DIRS:
        if _TOKEN.fullmatch(parts[1]) and parts[3]:
            return parts[1], parts[2], f"{parts[2]}/{parts[3]}"
    return None


def version_build_config(script: str, version_of: Callable[[str], str | None]) -> str:
    """``script`` with the engine paths of its ``_flutter.buildConfig`` given
    ``?v=<version_of(path)>`` where that is not None; unchanged if it has no
    buildConfig, or one it does not understand."""
    found = _BUILD_CONFIG.search(script)
    if found is None:
        return script
    try:
        config, end = json.JSONDecoder().raw_decode(script, found.end())
        builds = config["builds"]
        for build in builds:
            for key in _BUILD_PATHS:
                path = build.get(key)
                version = version_of(path) if isinstance(path, str) else None
                if version is not None:
                    build[key] = f"{path}?v={version}"
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("flutter_bootstrap.js: _flutter.buildConfig not understood, left as is")
        return script
    rewritten = json.dumps(config, separators=(",", ":"))
    return script[: found.end()] + rewritten + script[end:]


class WebClient:
    """Serves one Flet app's web client. ``prepare`` runs at startup."""

    def __init__(self, options: FletOptions, cache_root: Path | None = None) -> None:
        self.options = options
        self.web_dir = Path(get_package_web_dir())
        self.patched_dir: Path | None = None
        self.store: VariantStore = variant_store(self.web_dir, cache_root)
        self._indexes: dict[str, tuple[ClientFile, str]] = {}  # and its Link header
        self._bootstrap: ClientFile | None = None  # with a versioned buildConfig
        self.tree_versions: dict[str, str] = {}  # directory -> token of its content

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
        self._indexes.clear()  # patched indexes of an earlier run lived in its temp dir
        await run_sync(self._patch_manifests)()
        await run_sync(self.store.index)()
        await run_sync(self._version_client)()
        renderer = self.options.web_renderer.value
        self.store.start(_FIRST.get(renderer, _FIRST["default"]))

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

    def _packaged(self, relative: str) -> ClientFile | None:
        """The store's file for ``relative`` unless assets_dir overrides it."""
        item = self.store.get(relative)
        return item if item is not None and self._lookup(relative) == item.source else None

    def _version_client(self) -> None:
        """The tokens of the versioned directories, and flutter_bootstrap.js
        with a versioned buildConfig (patched, compressed, in patched_dir)."""
        assert self.patched_dir is not None
        self.tree_versions = {}
        for directory in _VERSIONED_DIRS:
            tree = hashlib.sha256()
            items = 0
            for relative, item in sorted(self.store.files.items()):
                if not relative.startswith(directory + "/"):
                    continue
                digest = item.digest
                patched = self._patched(relative)
                if patched is not None:  # served instead of the packaged file
                    digest = hashlib.sha256(patched.read_bytes()).hexdigest()
                tree.update(f"{relative}\0{digest}\n".encode())
                items += 1
            if items:
                self.tree_versions[directory] = tree.hexdigest()[:16]
        self._bootstrap = None
        packaged = self._packaged(BOOTSTRAP)
        if packaged is None:  # assets_dir has its own: served as it is on disk
            return

        def version_of(path: str) -> str | None:
            canonical = canonical_path(path)
            item = self._packaged(canonical) if canonical == path else None
            return item.version if item is not None else None

        script = packaged.source.read_text(encoding="utf-8")
        target = self.patched_dir / BOOTSTRAP
        target.write_text(version_build_config(script, version_of), encoding="utf-8")
        self._bootstrap = self._compressed(target)

    def _render_index(self, base: str, websocket_path: str) -> tuple[ClientFile, str]:
        assert self.patched_dir is not None
        digest = hashlib.sha1(f"{base} {websocket_path}".encode()).hexdigest()[:12]
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
        html = target.read_text(encoding="utf-8")
        for name in _VERSIONED_IN_INDEX:
            linked = self._client_file(name)
            if linked is not None:
                html = html.replace(f'src="{name}"', f'src="{name}?v={linked.version}"')
        canvaskit = self.tree_versions.get("canvaskit")
        if canvaskit is not None:
            html = re.sub(
                r'(flet\.canvasKitBaseUrl\s*=\s*"[^"]*/)(canvaskit/")',
                lambda m: f"{m[1]}{VERSION_PREFIX}/{canvaskit}/{m[2]}",
                html,
            )
        assets = self.tree_versions.get("assets")
        if assets is not None:  # the engine asks for <assetBase>assets/...
            html = re.sub(
                r'(flet\.assetBase\s*=\s*"[^"]*/)(")',
                lambda m: f"{m[1]}{VERSION_PREFIX}/{assets}/{m[2]}",
                html,
            )
        asset_base = base if assets is None else f"{base}{VERSION_PREFIX}/{assets}/"
        html, link = self._add_preloads(html, base, asset_base)
        head_end = html.find("</head>")  # before the engine loads and opens its socket
        if head_end >= 0:
            script = reconnect.reconnect_script(options, base, websocket_path)
            html = html[:head_end] + script + html[head_end:]
        target.write_text(html, encoding="utf-8")
        return self._compressed(target), link

    def _add_preloads(self, html: str, base: str, asset_base: str) -> tuple[str, str]:
        """``html`` with preload hints for what the engine fetches next (see
        :mod:`quart_flet.client.preload`), and a ``Link`` header for the scripts the
        index itself loads."""
        found = self._find(FONT_MANIFEST)
        try:
            manifest = json.loads(found.read_bytes()) if found is not None else []
        except (OSError, ValueError):
            manifest = []  # one we cannot read: no font hints
        urls = preload.asset_urls(asset_base, "FontManifest.json", preload.font_assets(manifest))

        def engine_path(name: str) -> str:
            item = self._packaged(name)
            return name if item is None else f"{name}?v={item.version}"

        files = None  # with an own flutter_bootstrap.js (assets_dir), only the fonts
        if self._client_file(BOOTSTRAP) is not None:
            files = preload.EngineFiles(
                engine_path("main.dart.wasm"),
                engine_path("main.dart.mjs"),
                engine_path("main.dart.js"),
            )
        hints = preload.engine_script(files, urls)
        # after flet's config (the script reads it), before the first script it loads
        marker = re.search(r"<script\s+src=", html)
        at = marker.start() if marker is not None else html.find("</head>")
        scripts = []  # in the order the page loads them
        for name in _VERSIONED_IN_INDEX:
            linked = self._client_file(name)
            if linked is None:
                continue
            versioned = f"{name}?v={linked.version}"
            at_src = html.find(f'src="{versioned}"')
            if at_src >= 0:
                scripts.append((at_src, base + versioned))
        if at >= 0:
            html = html[:at] + hints + html[at:]
        return html, preload.link_header([url for _, url in sorted(scripts)])

    def _compressed(self, target: Path) -> ClientFile:
        data = target.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:40]
        patched = ClientFile(target.name, target, len(data), digest, compressible=True)
        for suffix in (compression.GZIP, compression.BROTLI_BEST):
            variant = target.with_name(target.name + suffix)
            variant.write_bytes(compression.compress(data, suffix))
            encoding, size = compression.ENCODINGS[suffix], variant.stat().st_size
            patched.variants[suffix] = Variant(variant, encoding, size, f"{digest}-{suffix[1:]}")
        return patched

    async def index(self, base: str, websocket_path: str) -> Response:
        """The index for the mount point ``base`` ('/root/prefix/') whose
        client opens its WebSocket at ``websocket_path``."""
        key = f"{base} {websocket_path}"
        cached = self._indexes.get(key)
        if cached is None:
            cached = await run_sync(self._render_index)(base, websocket_path)
            if len(self._indexes) >= _MAX_INDEX_VARIANTS:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[key] = cached
        rendered, link = cached
        response = self._send(rendered, "text/html", NO_CACHE)
        if link and response.status_code == 200:
            response.headers["Link"] = link
        self._give_cookies(response, browserid.cookie_path(base, websocket_path))
        return response

    def _give_cookies(self, response: Response, path: str) -> None:
        """To a browser that has none: its browser id (:mod:`quart_flet.client.browserid`)
        and, with sticky_cookie, an id for a load balancer to hash on. ``path``
        reaches both the index and the WebSocket."""
        secure, given = request.is_secure, False
        if browserid.COOKIE not in request.cookies:
            cookie = browserid.set_cookie_header(browserid.new_id(), path, secure)
            response.headers.add("Set-Cookie", cookie)
            given = True
        sticky = self.options.sticky_cookie
        if sticky is not None and sticky not in request.cookies:
            response.set_cookie(  # for a year: the browser keeps its process
                sticky,
                secrets.token_urlsafe(16),
                max_age=365 * 24 * 3600,
                path=path,
                httponly=True,
                samesite="Lax",
                secure=secure,
            )
            given = True
        if given:  # private: a shared cache must not hand one id to every browser
            response.headers["Cache-Control"] = "private, " + NO_CACHE

    async def file(self, path: str, base: str, websocket_path: str) -> Response:
        """Any path under the mount point: a file, the index, or a 404."""
        canonical = canonical_path(path)
        if canonical is not None and canonical != path and self._names_a_file(canonical):
            query = request.query_string.decode("latin-1")
            location = base + quote(canonical) + (f"?{query}" if query else "")
            return Response(b"", 308, {"Location": location})
        if path in ("", INDEX):
            return await self.index(base, websocket_path)
        prefixed = versioned_path(path)
        relative = path if prefixed is None else prefixed[2]
        found = self._find(relative) if canonical == path else None
        if found is None:
            if is_route_like(path):
                return await self.index(base, websocket_path)
            return json_error(404, f"no such file: {path}")
        # each version the URL names must be the one of the bytes sent
        claims = []
        if prefixed is not None:
            token, directory, _ = prefixed
            claims.append(token == self.tree_versions.get(directory))
        # a packaged file (or our flutter_bootstrap.js) unless assets_dir overrides it
        client_file = self._bootstrap if relative == BOOTSTRAP else self.store.get(relative)
        if client_file is not None and client_file.source == found:
            if "v" in request.args:
                claims.append(request.args["v"] == client_file.version)
            if not claims:
                policy = NO_CACHE if relative in _ENTRY_POINTS else SHORT
            else:
                policy = IMMUTABLE if all(claims) else NO_CACHE
            return self._send(client_file, _mimetype(relative), policy)
        # the app's own assets and the patched manifests: as they are on disk now;
        # a patched manifest is fixed for this run, so it is part of its tree token
        patched = self._patched(relative)
        policy = IMMUTABLE if claims and all(claims) and patched == found else NO_CACHE
        return send_variant(_disk_variant(found), _mimetype(relative), policy, vary=False)

    def _send(self, client_file: ClientFile, mimetype: str, cache_control: str) -> Response:
        """The best variant for this request, conditional and rangeable."""
        accepts = [enc for enc in ("br", "gzip") if request.accept_encodings.quality(enc) > 0]
        variant = client_file.choose(accepts)
        return send_variant(variant, mimetype, cache_control, vary=client_file.compressible)

    def _client_file(self, relative: str) -> ClientFile | None:
        """The packaged (or, for flutter_bootstrap.js, rewritten) file that
        ``relative`` names, unless assets_dir overrides it."""
        if relative == BOOTSTRAP:
            return self._bootstrap if self._packaged(BOOTSTRAP) is not None else None
        return self._packaged(relative)

    def _names_a_file(self, canonical: str) -> bool:
        if canonical in ("", INDEX):
            return True
        prefixed = versioned_path(canonical)
        return self._find(canonical if prefixed is None else prefixed[2]) is not None

    def _patched(self, path: str) -> Path | None:
        """The patched manifest served for ``path``, if any."""
        if path in (MANIFEST, FONT_MANIFEST) and self.patched_dir is not None:
            patched = self.patched_dir / path
            if patched.is_file():  # FontManifest.json is patched for no_cdn only
                return patched
        return None

    def _find(self, path: str) -> Path | None:
        """The file a canonical path names: a patched manifest, the rewritten
        flutter_bootstrap.js, or _lookup."""
        patched = self._patched(path)
        if patched is not None:
            return patched
        if path == BOOTSTRAP:
            bootstrap = self._client_file(BOOTSTRAP)
            if bootstrap is not None:
                return bootstrap.source
        return self._lookup(path)

    def _lookup(self, path: str) -> Path | None:
        roots = [self.web_dir]
        if self.options.assets_dir is not None:
            roots.insert(0, self.options.assets_dir)
        for root in roots:
            joined = safe_join(str(root), path)
            if joined is not None and os.path.isfile(joined):
                return Path(joined)
        return None
