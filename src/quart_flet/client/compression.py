"""Brotli and gzip variants of the Flet web client, built once per client
build in a background thread and kept on disk, in a cache named after the
flet-web version and the client's content. ``quart-flet prebuild``
(quart_flet.cli.prebuild) builds them ahead of time.

Why and how: docs/discussion/web-client.md, "Compression, built once".
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import brotli  # type: ignore[import-untyped]

logger = logging.getLogger("quart_flet")

# Already compressed formats: a variant would not be smaller.
INCOMPRESSIBLE = frozenset(
    ".png .jpg .jpeg .gif .webp .avif .woff .woff2 .zip .gz .br .zst .whl .tgz .mp3 .mp4".split()
)
MIN_SIZE = 256
# Debug symbols, source maps and the in-browser Python runtime: a Flet server
# never sends them to a browser, so they only get the fast pass.
_COLD_SUFFIXES = (".symbols", ".map")
_COLD_DIRS = ("pyodide/",)

# suffix on disk -> (Content-Encoding, how it was made)
GZIP, BROTLI_FAST, BROTLI_BEST = ".gz", ".br5", ".br"
ENCODINGS = {GZIP: "gzip", BROTLI_FAST: "br", BROTLI_BEST: "br"}
_POLL_SECONDS = 1.0
_BROTLI_BEST_SECONDS_PER_MB = 4.0  # 2m47s to 4m40s here for the client's hot files

# progress(files done, files in all, the file about to be built)
Progress = Callable[[int, int, str], None]


def default_cache_root() -> Path:
    """$QUART_FLET_CACHE_DIR, else $XDG_CACHE_HOME/quart-flet, else ~/.cache/quart-flet."""
    explicit = os.environ.get("QUART_FLET_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "quart-flet"


def compressible(relative: str, size: int) -> bool:
    return size >= MIN_SIZE and os.path.splitext(relative)[1].lower() not in INCOMPRESSIBLE


def is_hot(relative: str) -> bool:
    return not relative.endswith(_COLD_SUFFIXES) and not relative.startswith(_COLD_DIRS)


def compress(data: bytes, suffix: str) -> bytes:
    if suffix == GZIP:
        return gzip.compress(data, compresslevel=6, mtime=0)
    if suffix == BROTLI_FAST:
        return bytes(brotli.compress(data, quality=5, lgwin=22))
    return bytes(brotli.compress(data, quality=11, lgwin=24))


@dataclass(frozen=True)
class Variant:
    """One representation of a file: the bytes at ``path``, sent with
    ``encoding`` ('' for none) and the strong ETag ``etag``."""

    path: Path
    encoding: str
    size: int
    etag: str


@dataclass
class ClientFile:
    """A file of the web client and the variants built so far."""

    relative: str
    source: Path
    size: int
    digest: str
    compressible: bool
    variants: dict[str, Variant] = field(default_factory=dict)  # disk suffix -> variant

    @property
    def version(self) -> str:
        """The token a URL carries in ``?v=`` to be cached as immutable."""
        return self.digest[:16]

    def identity(self) -> Variant:
        return Variant(self.source, "", self.size, self.digest)

    def choose(self, accepts: Sequence[str]) -> Variant:
        """The smallest variant in an encoding the client accepts."""
        best = self.identity()
        for variant in list(self.variants.values()):
            if variant.encoding in accepts and variant.size < best.size:
                best = variant
        return best


class VariantStore:
    """The compressed variants of every file under ``source``, on disk under
    ``cache_root``. ``index()`` hashes the files (fast, needed before serving);
    ``start()`` builds the missing variants on a daemon thread."""

    def __init__(self, source: Path, cache_root: Path) -> None:
        self.source = source
        self.cache_root = cache_root
        self.files: dict[str, ClientFile] = {}
        self.cache_dir: Path | None = None
        self.built = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def get(self, relative: str) -> ClientFile | None:
        return self.files.get(relative)

    def index(self) -> None:
        """Hash every file and pick up variants already on disk. Idempotent."""
        with self._lock:
            if self.cache_dir is not None:
                return
            files: dict[str, ClientFile] = {}
            tree = hashlib.sha256()
            for path in sorted(self.source.rglob("*")):
                if not path.is_file():
                    continue
                relative = path.relative_to(self.source).as_posix()
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()[:40]
                size = path.stat().st_size
                files[relative] = ClientFile(
                    relative, path, size, digest, compressible(relative, size)
                )
                tree.update(f"{relative}\0{digest}\n".encode())
            try:
                version = importlib.metadata.version("flet-web")
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            self.files = files
            self.cache_dir = self._writable(f"web-{version}-{tree.hexdigest()[:16]}")
            self._register_existing()

    def _writable(self, name: str) -> Path:
        for root in (self.cache_root, Path(tempfile.gettempdir()) / f"quart-flet-{os.getuid()}"):
            try:
                (root / name).mkdir(parents=True, exist_ok=True)
                probe = root / name / f".probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
                return root / name
            except OSError as error:
                logger.warning("cannot cache compressed web client in %s: %s", root, error)
        raise RuntimeError("no writable directory for the compressed web client")

    def _target(self, item: ClientFile, suffix: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / (item.relative + suffix)

    def _register(self, item: ClientFile, suffix: str, target: Path) -> None:
        size = target.stat().st_size
        etag = f"{item.digest}-{suffix.lstrip('.')}"
        item.variants[suffix] = Variant(target, ENCODINGS[suffix], size, etag)

    def _register_existing(self) -> None:
        for item in self.files.values():
            if not item.compressible:
                continue
            for suffix in (GZIP, BROTLI_FAST, BROTLI_BEST):
                target = self._target(item, suffix)
                if suffix not in item.variants and target.is_file():
                    self._register(item, suffix, target)

    def start(self, first: Sequence[str] = ()) -> None:
        """Build the missing variants on a background thread, ``first`` first."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(tuple(first),), name="quart_flet-compress", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop between two files; variants written so far stay valid."""
        self.stopping.set()

    def _run(self, first: tuple[str, ...]) -> None:
        if sys.platform == "linux":  # a lower priority for this thread only
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except OSError:
                pass
        try:
            self.build(first)
        except Exception:
            logger.exception("building the compressed web client failed; serving it uncompressed")

    def build(self, first: Sequence[str] = (), progress: Progress | None = None) -> None:
        """Build every missing variant (blocking). Safe to run from several
        processes at once: they take turns. ``progress(done, total, name)``
        is called before each file."""
        self.index()
        with self._exclusive() as acquired:
            if not acquired:
                return
            self._register_existing()
            self._remove_partial_files()
            order = sorted(
                (item for item in self.files.values() if item.compressible),
                key=lambda item: (
                    item.relative not in first,
                    not is_hot(item.relative),
                    -item.size,
                ),
            )
            steps = [
                (item, suffixes)
                for suffixes, items in (
                    ((GZIP, BROTLI_FAST), order),
                    ((BROTLI_BEST,), [item for item in order if is_hot(item.relative)]),
                )
                for item in items
                if any(suffix not in item.variants for suffix in suffixes)
            ]
            if steps and progress is None:  # the prebuild command shows progress instead
                self._announce(steps)
            for done, (item, suffixes) in enumerate(steps):
                if self.stopping.is_set():
                    return
                if progress is not None:
                    progress(done, len(steps), item.relative)
                self._build_file(item, suffixes)
        self.built.set()
        logger.info("compressed web client ready in %s", self.cache_dir)

    def _announce(self, steps: Sequence[tuple[ClientFile, Sequence[str]]]) -> None:
        """Say once, where people look (a warning shows without any logging
        set up), that minutes of one core go into this and how to avoid it."""
        best = sum(item.size for item, suffixes in steps if BROTLI_BEST in suffixes)
        seconds = best / 1e6 * _BROTLI_BEST_SECONDS_PER_MB + 10
        logger.warning(
            "quart-flet: building the compressed web client in %s, once per flet-web build: "
            "a few minutes (about %d of one core), in a low-priority background thread; until then "
            "files go out less compressed. Prebuild it with: python -m quart_flet.cli.prebuild",
            self.cache_dir,
            max(1, round(seconds / 60)),
        )

    def _build_file(self, item: ClientFile, suffixes: Sequence[str]) -> None:
        missing = [s for s in suffixes if s not in item.variants]
        if not missing:
            return
        data = item.source.read_bytes()
        for suffix in missing:
            target = self._target(item, suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            partial.write_bytes(compress(data, suffix))
            os.replace(partial, target)  # readers only ever see whole files
            self._register(item, suffix, target)

    def _remove_partial_files(self) -> None:
        assert self.cache_dir is not None
        for partial in self.cache_dir.rglob(".*.partial"):
            partial.unlink(missing_ok=True)

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Hold the cache's lock file; yields False if stopped while waiting."""
        assert self.cache_dir is not None
        try:
            import fcntl
        except ImportError:  # Windows: no cross-process lock, builds may overlap
            yield True
            return
        with open(self.cache_dir / ".lock", "w") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # another process is building: serve what it has written so far
                    self._register_existing()
                    if self.stopping.wait(_POLL_SECONDS):
                        yield False
                        return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


_stores: dict[tuple[Path, Path], VariantStore] = {}
_stores_lock = threading.Lock()


def variant_store(source: Path, cache_root: Path | None = None) -> VariantStore:
    """The one store of ``source`` in this process (Flet apps share it)."""
    key = (source.resolve(), (cache_root or default_cache_root()).resolve())
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = VariantStore(*key)
        return store
