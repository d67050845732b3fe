"""A value store shared by the processes of one user on one host: files in
a private directory (``0700``, each file ``0600``). The workers of a server
keep pending OAuth states in one (quart_flet.session.siblings), and the
state sessions saved for the next start of the app in another
(quart_flet.session.saved). Same shape as the in-memory and Redis stores
(quart_flet.backends.base.OAuthStateStore)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

__all__ = ["FileStore"]

logger = logging.getLogger("quart_flet")


class FileStore:
    """Values as files in a private directory: any process of this user
    puts one, and whichever asks first takes it, at most once (an atomic
    rename), never after its ttl."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._swept = 0.0  # when the expired were last dropped

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode()).hexdigest()

    async def put(self, key: str, value: str, ttl: float) -> None:
        now = time.time()
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            self._forget_expired(now)
            path = self._path(key)
            staged = path.with_name(f"{path.name}.{os.getpid()}.new")
            staged.write_text(json.dumps({"expires": now + ttl, "value": value}))
            staged.chmod(0o600)
            os.utime(staged, (now + ttl, now + ttl))  # its time is its expiry: a sweep stats
            staged.replace(path)
        except OSError as error:
            logger.error("NOT stored in %s (%s): %s", self.directory, error, _public(key))

    async def take(self, key: str) -> str | None:
        path = self._path(key)
        taken = path.with_name(f"{path.name}.{os.getpid()}.taken")
        try:
            path.rename(taken)  # only one process can
        except OSError:
            return None
        try:
            record = json.loads(taken.read_text())
        except (OSError, ValueError):
            return None
        finally:
            taken.unlink(missing_ok=True)
        expires = record.get("expires") if isinstance(record, dict) else None
        if not isinstance(expires, (int, float)) or expires <= time.time():
            return None
        value = record.get("value")
        return value if isinstance(value, str) else None

    def _forget_expired(self, now: float) -> None:
        """Values nobody took do not pile up: a put drops the expired, once
        a minute at most, by their files' times (no file is read)."""
        if now - self._swept < 60:
            return
        self._swept = now
        for path in self.directory.iterdir():
            with contextlib.suppress(OSError):
                mtime = path.stat().st_mtime
                # a leftover (.new, .taken) only once a minute old: another
                # process may be between writing one and giving it its time
                if mtime <= now and ("." not in path.name or mtime < now - 60):
                    path.unlink()


def _public(key: str) -> str:
    """A key without its secret part (an OAuth state, a browser's digest)."""
    return key.rsplit(":", 1)[0]
