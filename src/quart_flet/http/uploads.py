"""Signed upload URLs and the streaming PUT that receives them.

``page.get_upload_url(name, expires)`` returns
``<mount>/upload?f=<name>&e=<expires>&s=<token>``: the token is an
itsdangerous ``URLSafeTimedSerializer`` signature of ``[name, expires]``,
salted per Flet blueprint and verified against ``[*SECRET_KEY_FALLBACKS,
key]``. The PUT streams the body (quart_flet.http.uploadbody) into a
temporary file, renamed into place only once complete and within the limit,
so a refused or broken upload leaves nothing behind.

Why and how: docs/how-to/uploads.md, "Uploads" and "What a refused upload
gets".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from quart import Quart, Response, current_app, jsonify, request
from quart.wrappers.request import Body
from quart_schema import document_querystring, document_response
from quart_schema.conversion import model_load

from quart_flet.errors import ErrorBody, json_error, validation_summary
from quart_flet.http.uploadbody import stream_path
from quart_flet.mount import FletMount, path_for
from quart_flet.options import FletOptions, secret_keys
from quart_flet.types import ViewT

logger = logging.getLogger("quart_flet")

#: Directories an upload file name may nest (``a/b/c.txt`` nests 2).
MAX_DEPTH = 32

# limits of the file system, when os.pathconf cannot tell (e.g. on Windows)
_NAME_MAX, _PATH_MAX = 255, 4096
_TEMP_PREFIX, _TEMP_SUFFIX = ".upload-", ".part"
_TEMP_NAME_LENGTH = len(_TEMP_PREFIX) + 16 + len(_TEMP_SUFFIX)
# a full disk, or the server process's disk quota
_OUT_OF_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)


@dataclass
class UploadQuery:
    """Query of a signed upload URL."""

    #: destination, relative to upload_dir ("dir/name.ext")
    f: str
    #: lifetime of the URL in seconds from signing
    e: int
    #: itsdangerous token over [f, e]
    s: str


@dataclass
class UploadResult:
    """The stored file: its name relative to upload_dir and its size in bytes."""

    name: str
    size: int


class UploadError(Exception):
    """An upload refused with ``status``; the message goes into the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def document(view: ViewT) -> ViewT:
    """OpenAPI for the upload route (used by QuartSchema when the app has it)."""
    view = document_querystring(UploadQuery)(view)
    view = document_response(UploadResult, 200)(view)
    for status in (400, 403, 404, 410, 413, 507):
        view = document_response(ErrorBody, status)(view)
    return view


def signing_keys(app: Quart, options: FletOptions) -> list[str]:
    """The keys that sign upload URLs (see quart_flet.options.secret_keys)."""
    return secret_keys(
        app.config, options, "uploads are on (upload_dir is set) and their URLs are signed"
    )


def upload_serializer(keys: list[str], mount_name: str, **kwargs: Any) -> URLSafeTimedSerializer:
    """The serializer of one Flet blueprint's upload URLs (salted with its name)."""
    return URLSafeTimedSerializer(keys, salt=f"quart-flet.upload.{mount_name}", **kwargs)


def upload_url(mount: FletMount, file_name: str, expires: int) -> str:
    """A signed URL, relative to the host, for ``page.get_upload_url``.

    Called from a Flet handler: the WebSocket context those run in gives the
    real mount point (ASGI root_path + url_prefix)."""
    if mount.options.upload_dir is None or mount.routes.upload is None:
        raise RuntimeError(
            "uploads are off for this Flet app: pass flet_blueprint(..., upload_dir=...) "
            "or set FLET_UPLOAD_DIR (and, with your own routes, FletRoutes(upload=...))"
        )
    try:
        url = path_for(mount.routes.upload)
    except RuntimeError:
        raise RuntimeError(
            "page.get_upload_url() needs the app context of a Flet session: call it "
            "from main() or an event handler"
        ) from None
    serializer = upload_serializer(signing_keys(current_app, mount.options), mount.name)
    token = serializer.dumps([file_name, int(expires)])
    query = urlencode({"f": file_name, "e": str(int(expires)), "s": token})
    return f"{url}?{query}"


async def prepare(app: Quart, mount: FletMount) -> None:
    """Startup: check the key, create upload_dir, stream the upload route."""
    upload_dir = mount.options.upload_dir
    if upload_dir is None:
        return
    signing_keys(app, mount.options)
    upload_dir.mkdir(parents=True, exist_ok=True)
    if mount.routes.upload is not None:
        for rule in app.url_map.iter_rules(mount.routes.upload):
            stream_path(app, rule.rule)


# ---- the PUT ----------------------------------------------------------------


async def receive_upload(mount: FletMount) -> Response:
    """Verify the signed query, then stream the body into upload_dir."""
    upload_dir = mount.options.upload_dir
    if upload_dir is None:
        return json_error(
            404, "uploads are not enabled for this Flet app (set upload_dir or FLET_UPLOAD_DIR)"
        )
    try:
        query = _load_query()
        _verify(query, mount)
        target = resolve_target(upload_dir, query.f)
        size = await _store(request.body, request.content_length, target, upload_dir, mount)
    except UploadError as error:
        if error.status == 507:
            logger.warning("upload of %s refused: %s", query.f, error)
        return json_error(error.status, str(error))
    logger.info("upload stored: %s (%d bytes)", target, size)
    return jsonify(UploadResult(query.f, size))


def _load_query() -> UploadQuery:
    args = {key: request.args[key] for key in request.args}
    preference = current_app.config.get("QUART_SCHEMA_CONVERSION_PREFERENCE")
    try:
        return model_load(args, UploadQuery, ValueError, preference=preference)
    except ValueError as error:
        raise UploadError(
            400,
            "malformed upload URL: needs f (file name), e (seconds), s (signature): "
            + validation_summary(error),
        ) from None


def _verify(query: UploadQuery, mount: FletMount) -> None:
    serializer = upload_serializer(signing_keys(current_app, mount.options), mount.name)
    try:
        payload = serializer.loads(query.s, max_age=query.e)
    except SignatureExpired:
        raise UploadError(410, "upload URL has expired: ask the app for a new one") from None
    except BadSignature:
        raise UploadError(403, "invalid upload signature") from None
    if payload != [query.f, query.e]:
        raise UploadError(403, "invalid upload signature: it was made for another file")


def resolve_target(upload_dir: Path, file_name: str) -> Path:
    """The destination of ``file_name`` inside ``upload_dir``; UploadError(400)
    for anything that would leave it (``..``, absolute, NUL, symlink escape) or
    that the file system cannot store (a part or the path too long, too deep, a
    file where a directory is needed)."""
    if not file_name or "\x00" in file_name:
        raise UploadError(400, "invalid upload file name")
    relative = Path(file_name)
    if relative.is_absolute() or file_name.startswith(("/", "\\")) or relative.drive:
        raise UploadError(400, "upload file name must be relative to the upload directory")
    if ".." in relative.parts or file_name.endswith(("/", "\\")):
        raise UploadError(400, "upload file name must stay inside the upload directory")
    if len(relative.parts) - 1 > MAX_DEPTH:
        raise UploadError(
            400, f"upload file name nests more than {MAX_DEPTH} directories: use a shallower path"
        )
    root = upload_dir.resolve()
    name_max = _pathconf(root, "PC_NAME_MAX", _NAME_MAX)
    for part in relative.parts:
        if _byte_length(part) > name_max:
            raise UploadError(
                400,
                f"upload file name is too long: {part[:40]}... has {_byte_length(part)} "
                f"bytes, the file system allows {name_max} per name",
            )
    try:
        target = (root / relative).resolve()
        if target == root or not target.is_relative_to(root):
            raise UploadError(400, "upload file name must stay inside the upload directory")
        path_max = _pathconf(root, "PC_PATH_MAX", _PATH_MAX)
        # the temporary file lives in a parent of the target: it must fit too
        longest = (
            _byte_length(str(target.parent)) + 1 + max(_byte_length(target.name), _TEMP_NAME_LENGTH)
        )
        if longest >= path_max:
            raise UploadError(
                400,
                f"upload file name is too long: with the upload directory the path would "
                f"have {longest} bytes, the file system allows {path_max - 1}",
            )
        if target.is_dir():
            raise UploadError(400, "upload file name is a directory")
        _existing_dir(root, target)
    except OSError as error:
        raise _refusal(error) from None
    return target


def _byte_length(name: str) -> int:
    try:
        return len(os.fsencode(name))
    except UnicodeError:
        raise UploadError(400, "upload file name cannot be stored on this file system") from None


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path, name)
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), unknown name
        return default
    return value if value > 0 else default


def _existing_dir(root: Path, target: Path) -> Path:
    """The deepest existing directory on the way from ``root`` to ``target``
    (where the temporary file goes); UploadError(400) if a file is in the way."""
    for directory in target.parents:
        if directory == root:
            return root
        try:
            mode = os.stat(directory).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(mode):
            return directory
        raise _file_in_the_way(root, directory)
    return root  # unreachable: resolve_target keeps target inside root


def _file_in_the_way(root: Path, path: Path) -> UploadError:
    return UploadError(
        400,
        f"upload file name needs a directory where a file is: {path.relative_to(root)} "
        "is a file in the upload directory",
    )


def _refusal(error: OSError) -> UploadError | OSError:
    """An UploadError for a file system error the file name caused (400) or a
    full disk or quota (507), else ``error``."""
    if error.errno in _OUT_OF_SPACE:
        return UploadError(
            507,
            f"the server is out of space ({os.strerror(error.errno or 0)}): "
            "the upload was not stored; try again later",
        )
    if error.errno == errno.ENAMETOOLONG:
        return UploadError(400, "upload file name is too long for the file system")
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return UploadError(400, "upload file name needs a directory where a file is")
    if error.errno == errno.EISDIR:
        return UploadError(400, "upload file name is a directory")
    return error


async def _store(
    body: Body, length: int | None, target: Path, upload_dir: Path, mount: FletMount
) -> int:
    limit = mount.options.max_upload_size
    if limit is not None and length is not None and length > limit:
        raise UploadError(413, f"upload exceeds the limit of {limit} bytes")
    root = upload_dir.resolve()
    opening = asyncio.get_running_loop().run_in_executor(None, _open_temp, root, target)
    try:
        file = _TempFile(*await asyncio.shield(opening))
    except OSError as error:
        raise _refusal(error) from None
    except asyncio.CancelledError:  # the client left: the thread still opens the file
        opening.add_done_callback(_discard_temp)
        raise
    size = 0
    try:
        async for chunk in body:
            size += len(chunk)
            if limit is not None and size > limit:
                raise UploadError(413, f"upload exceeds the limit of {limit} bytes")
            await file.write(chunk)
        await file.place(target, root)
    except BaseException as error:
        file.discard()
        if isinstance(error, OSError):
            raise _refusal(error) from None
        raise
    return size


class _TempFile:
    """The open temporary file of one upload. Its blocking work runs on the
    thread pool, and a cancelled upload (the client left, the server stops)
    does not stop that thread: the file is closed and removed once the thread
    is done with it, never under a write in progress (a descriptor closed
    then could be reused by another upload's file before the write lands)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self._work: asyncio.Future[None] | None = None

    async def write(self, data: bytes) -> None:
        await self._run(_write_all, self.fd, data)

    async def place(self, target: Path, root: Path) -> None:
        """Close the file and rename it onto ``target`` (see _place)."""
        await self._run(self._close_and_place, target, root)

    def discard(self) -> None:
        """Close and remove the file, now or once its thread is done."""
        if self._work is not None and not self._work.done():
            self._work.add_done_callback(lambda _: self.discard())
            return
        with contextlib.suppress(OSError):
            self._close()
        _remove(self.path)

    async def _run(self, work: Callable[..., None], *args: Any) -> None:
        self._work = asyncio.get_running_loop().run_in_executor(None, work, *args)
        await asyncio.shield(self._work)

    def _close_and_place(self, target: Path, root: Path) -> None:
        self._close()
        _place(self.path, target, root)

    def _close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _open_temp(root: Path, target: Path) -> tuple[int, Path]:
    """A new temporary file in the deepest existing directory towards ``target``
    (same file system, and no directory created yet), with the mode a plain
    open() gives (0o666 & ~umask)."""
    for attempt in range(100):
        # the checks in resolve_target resolved every existing symlink inside upload_dir
        temp = _existing_dir(root, target) / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        try:
            return os.open(temp, _OPEN_FLAGS, 0o666), temp
        except FileExistsError:
            continue
        except FileNotFoundError:
            # that directory was just removed by a failed upload that had created it
            if attempt >= 2:
                raise
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


def _discard_temp(opening: asyncio.Future[tuple[int, Path]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        fd, temp = opening.result()
        os.close(fd)
        _remove(temp)


def _place(temp: Path, target: Path, root: Path) -> None:
    """Create the missing parents of ``target`` and rename ``temp`` onto it.

    Only directories this call created are removed if it fails, and only while
    empty (os.rmdir), so a directory another upload created or uses stays."""
    created: list[Path] = []
    try:
        for attempt in range(3):
            for directory in reversed(target.relative_to(root).parents[:-1]):
                try:
                    os.mkdir(root / directory)
                    created.append(root / directory)
                except FileExistsError:
                    if not (root / directory).is_dir():
                        raise _file_in_the_way(root, root / directory) from None
            try:
                os.replace(temp, target)
                return
            except FileNotFoundError:
                # a parent created by a concurrent upload that then failed and removed it
                if attempt == 2 or not temp.exists():
                    raise
    except BaseException:
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
