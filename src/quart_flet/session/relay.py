"""Workers of one server reach each other's sessions.

With ``--workers N`` the kernel hands each new connection to any worker, so a
browser that reconnects lands on a worker that does not hold its session
(N-1)/N of the time. That worker asks its siblings, over a Unix socket each
worker listens on, which of them holds the session; the one that does serves
it as if the browser were connected to it, and the frames are relayed both
ways. Only a misrouted reconnect pays for the relay; a session never moves.
Why relay frames rather than hand the socket over, and what the local channel
trusts: docs/discussion/workers.md.

This module is the channel alone: the listener, finding the owner, the wire
a relayed session is served on and the pump on the browser's side. It knows
nothing of sessions; ``quart_flet.session.connection`` serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import multiprocessing
import os
import shutil
import socket
import stat
import struct
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack

__all__ = [
    "SUPPORTED",
    "BusHandler",
    "Relay",
    "RelayWire",
    "WireClosed",
    "pump",
    "relay_dir",
    "shared_key",
    "write_bus",
]

logger = logging.getLogger("quart_flet")

_LENGTH = struct.Struct(">I")
#: a Unix socket's path must be shorter than this (sun_path, with its NUL)
_SOCKET_PATH_MAX = 108
#: the request a sibling sends first, before it is known to be one: the
#: browser's handshake (headers, cookies, the Quart session) fits many times
MAX_HELLO = 1024 * 1024
#: seconds to reach a sibling and hear whether it holds the session: long
#: enough for a worker busy with a burst of reconnects (1,000 at once)
ASK_TIMEOUT = 10.0
#: seconds the frames sent before a relayed session's close get to reach
#: the browser before the close itself
CLOSE_FLUSH_SECONDS = 5.0
#: connections a worker's socket queues before it accepts them: a burst of
#: reconnects asks a sibling hundreds of times at once (the default, 100,
#: refused some, and their sessions were lost)
BACKLOG = 4096

_DATA, _CLOSE = 0, 1
#: seconds after which a message between workers is too old to deliver:
#: its sender gave up on it (quart_flet.session.siblings.SEND_TIMEOUT, 5 s)
STALE_SECONDS = 6.0
#: seconds between two looks at the relay's directory, key and socket
HEAL_SECONDS = 30.0
#: seconds a list of the sibling workers is trusted without reading it again
SIBLINGS_FRESH = 1.0
#: whether workers can relay here: the kernel names a Unix socket's peer (Linux)
SUPPORTED = hasattr(socket, "SO_PEERCRED")

#: what a served relayed session needs: the hello's fields and its wire;
#: returns False when this worker does not hold the session
ResumeHandler = Callable[[dict[str, Any], "RelayWire"], Awaitable[bool]]
#: ``on_bus(kind, app name, payload)``: one message a sibling sent every
#: worker (quart_flet.session.siblings: pubsub, OAuth results)
BusHandler = Callable[[str, str, bytes], None]


class WireClosed(Exception):
    """The far end of a relay went away (or sent what no relay sends)."""


def relay_dir() -> Path | None:
    """The directory the workers of this server meet in, or None when this
    process is no server's worker (no parent process started it) or the
    platform cannot tell who is at the other end of a Unix socket.

    Named after the parent process as the kernel knows it: its pid, its pid
    namespace and its start time, so two servers whose parents have the same
    pid (in two containers sharing /tmp) never meet."""
    if multiprocessing.parent_process() is None or not SUPPORTED:
        return None
    parent = os.getppid()
    name = f"workers-{parent}"
    namespace, started = _pid_namespace(), _start_time(parent)
    if namespace is not None and started is not None:
        name = f"workers-{parent}-{namespace}-{started}"
    for base in (tempfile.gettempdir(), "/tmp"):
        directory = Path(base) / f"quart-flet-{os.getuid()}" / name
        if len(str(directory / "4194304.sock")) < _SOCKET_PATH_MAX:
            return directory
    return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of
    /proc/PID/stat, counted after the command's closing parenthesis)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def clear_dead_servers(directory: Path) -> None:
    """Remove the directories of servers of this user, in this pid namespace,
    whose process is gone (killed as a whole: nothing of theirs ran its
    stop): their key and stale sockets would otherwise stay for good."""
    namespace = _pid_namespace()
    for path in directory.parent.glob("workers-*-*-*"):
        with contextlib.suppress(ValueError, OSError):
            pid, space, started = (int(part) for part in path.name.split("-")[1:])
            if path != directory and space == namespace and _start_time(pid) != started:
                shutil.rmtree(path)


def private_dir(path: Path) -> None:
    """Make ``path`` (and its parent) this user's alone, or refuse: a
    directory another user made or could write would let them listen in."""
    for attempt in range(3):
        try:
            _private_dirs(path)
            return
        except FileNotFoundError:  # the parent went with another server's stop
            if attempt == 2:
                raise


def _private_dirs(path: Path) -> None:
    for directory in (path.parent, path):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{directory} is not a private directory of this user")


def shared_key(directory: Path, secret: str | bytes | None) -> bytes:
    """The key every worker of this server signs its relay requests with:
    derived from the app's secret key, or else one the first worker wrote
    into the private directory (readable by this user only)."""
    if secret:
        raw = secret.encode() if isinstance(secret, str) else secret
        return hmac.new(raw, b"quart-flet worker relay", hashlib.sha256).digest()
    path = directory / "key"
    _write_key(path, os.urandom(32))
    return path.read_bytes()


def _write_key(path: Path, key: bytes) -> None:
    """``key`` into ``path`` (0600), unless a key is there already: the
    first worker's wins, whole."""
    with contextlib.suppress(FileExistsError):
        staged = path.with_name(f"key.{os.getpid()}")
        staged.write_bytes(key)
        staged.chmod(0o600)
        try:
            os.link(staged, path)
        finally:
            staged.unlink()


def _framed(message: list[Any]) -> bytes:
    payload: bytes = msgpack.packb(message, use_bin_type=True)
    return _LENGTH.pack(len(payload)) + payload


async def _write(writer: asyncio.StreamWriter, message: list[Any]) -> None:
    writer.write(_framed(message))
    await writer.drain()


def write_bus(writer: asyncio.StreamWriter, messages: list[tuple[str, str, bytes]]) -> None:
    """Queue ``(kind, app name, payload)`` messages on a bus link (see
    :meth:`Relay.open_bus`), stamped with the host's monotonic clock (one
    clock for every process); the caller drains the writer."""
    now = time.monotonic()
    writer.write(b"".join(_framed([*message, now]) for message in messages))


async def _read(reader: asyncio.StreamReader, limit: int | None = None) -> list[Any]:
    """One message; ``limit`` bounds its size before it is read (a hello,
    from a sender not yet known to be a sibling)."""
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if limit is not None and length > limit:
            raise WireClosed(f"a relay request of {length} bytes")
        message = msgpack.unpackb(await reader.readexactly(length), raw=False)
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise WireClosed(str(error)) from None
    except (ValueError, msgpack.UnpackException) as error:
        raise WireClosed(f"not a relay message: {error}") from None
    if not isinstance(message, list) or not message:
        raise WireClosed("not a relay message")
    return message


def _parent_of(pid: int) -> int | None:
    """Process ``pid``'s parent (field 4 of /proc/PID/stat)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def peer_sibling(writer: asyncio.StreamWriter, parent: int) -> int | None:
    """The pid of the process at the other end of a Unix socket when it is
    a worker of this server (this user's, and a child of ``parent``, the
    server that started this worker, still this worker's parent), else
    None: another process of the same user, even one that copied a request
    or put a socket in the directory, is not; nor is anyone once the server
    is gone (its orphans, and every other, have another parent then)."""
    sock = writer.get_extra_info("socket")
    if sock is None or not SUPPORTED or os.getppid() != parent:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid() or pid == os.getpid() or _parent_of(pid) != parent:
        return None
    return int(pid)


class RelayWire:
    """The WebSocket a relayed session is served on, in the worker that
    holds it: frames from the worker the browser is connected to, and back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def accept(self, headers: dict[str, str] | None = None) -> None:
        """Tell the asking worker this one holds the session and serves it
        (the browser's worker accepted the browser's WebSocket already)."""
        await _write(self.writer, ["ok"])

    async def receive(self) -> bytes | str:
        message = await _read(self.reader)
        if message[0] == _DATA and len(message) == 2 and isinstance(message[1], (bytes, str)):
            return message[1]
        raise WireClosed("the browser's worker closed the relay")

    async def send(self, frame: bytes) -> None:
        """As a WebSocket's send: a browser gone is not the sender's error
        (receive() hears of it, and the connection ends there)."""
        if self.writer.is_closing():
            return
        try:
            await _write(self.writer, [_DATA, frame])
        except ConnectionError:
            self.writer.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(ConnectionError):
            await _write(self.writer, [_CLOSE, code, reason])
        self.writer.close()


class Relay:
    """This worker's end of the channel: it listens for its siblings and asks
    them for the sessions it does not hold."""

    def __init__(
        self, directory: Path, secret: str | bytes | None, on_resume: ResumeHandler
    ) -> None:
        self.directory = directory
        self.secret = secret
        self.key = b""  # made at start (shared_key)
        self.on_resume = on_resume
        self.path = directory / f"{os.getpid()}.sock"
        self.parent = os.getppid()  # the server: its other children are the siblings
        self.server: asyncio.AbstractServer | None = None
        self.served: set[asyncio.Task[Any]] = set()
        self.inode = 0  # of the socket this worker made: stop() removes that one only
        self.on_bus: BusHandler | None = None  # set by the workers' bus, if any
        self.healing: asyncio.Future[None] | None = None
        self._siblings: list[Path] = []
        self._listed = (0, 0.0)  # the directory's time, and when it was read
        self.warned = False  # a refused request is logged once at WARNING, then at DEBUG

    def _mac(self, fields: dict[str, Any]) -> bytes:
        body = msgpack.packb(sorted(fields.items()), use_bin_type=True)  # str keys
        return hmac.new(self.key, body, hashlib.sha256).digest()

    async def start(self) -> None:
        """Listen; an OSError (a directory that is not private, a path too
        long for a Unix socket) leaves nothing behind: call stop()."""
        private_dir(self.directory)
        self.key = shared_key(self.directory, self.secret)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a worker of an earlier run with this pid
        self._clear_dead()
        clear_dead_servers(self.directory)
        await self._listen()
        self.healing = asyncio.ensure_future(self._heal_forever())

    async def _listen(self) -> None:
        old_umask = os.umask(0o177)  # the socket is made 0600
        try:
            self.server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), backlog=BACKLOG
            )
        finally:
            os.umask(old_umask)
        self.inode = self.path.stat().st_ino

    async def _heal_forever(self) -> None:
        """Every HEAL_SECONDS: keep the directory, the key and this worker's
        socket fresh for /tmp cleaners that age files, and put back what one
        (or an operator) removed, so the workers keep finding each other and
        a replacement worker gets the same key."""
        while True:
            await asyncio.sleep(HEAL_SECONDS)
            try:
                private_dir(self.directory)
                key = self.directory / "key"
                if not self.secret:
                    if not key.exists():
                        logger.warning("the workers' key file was removed: written again")
                        _write_key(key, self.key)
                    elif key.read_bytes() != self.key:
                        # a worker started while it was missing and wrote its
                        # own: the file is every worker's key from now on
                        logger.warning("the workers' key file changed: using it")
                        self.key = key.read_bytes()
                    os.utime(key)
                if not self.path.exists():
                    logger.warning("this worker's relay socket was removed: listening again")
                    if self.server is not None:
                        self.server.close()
                    await self._listen()
                os.utime(self.path)
            except OSError as error:
                logger.warning("cannot keep the workers' relay in %s: %s", self.directory, error)

    async def stop(self) -> None:
        if self.healing is not None:
            self.healing.cancel()
            self.healing = None
        if self.server is not None:
            self.server.close()
            self.server = None
        with contextlib.suppress(OSError):
            if self.inode and self.path.stat().st_ino == self.inode:
                self.path.unlink()
        for task in list(self.served):
            task.cancel()
        self._clear_dead()
        # the last worker to stop leaves nothing behind (nor does the last
        # server: a directory in use by another is not empty, and stays)
        with contextlib.suppress(OSError):
            if not any(self.directory.glob("*.sock")):
                shutil.rmtree(self.directory)  # the key, pending OAuth states
                self.directory.parent.rmdir()

    def _clear_dead(self) -> None:
        """Remove the sockets of workers that died without removing theirs
        (killed, or out of memory): a supervisor's replacement worker tidies
        up after the one it replaces."""
        for path in self.directory.glob("*.sock"):
            with contextlib.suppress(ValueError, PermissionError, OSError):
                pid = int(path.stem)
                if pid != os.getpid():
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.served.add(task)
        try:
            if peer_sibling(writer, self.parent) is None:
                self._refused("it came from a process that is not a worker of this server")
                return
            hello = await asyncio.wait_for(_read(reader, MAX_HELLO), ASK_TIMEOUT)
            if (
                len(hello) != 3
                or hello[0] not in ("resume", "bus")
                or not isinstance(hello[1], dict)
                or not all(isinstance(key, str) for key in hello[1])
                or not isinstance(hello[2], bytes)
            ):
                self._refused("it is not a relay request")
                return
            fields, mac = hello[1], hello[2]
            if not hmac.compare_digest(mac, self._mac({"hello": hello[0], **fields})):
                self._refused("its key is not this server's")
                return
            if hello[0] == "bus":
                await self._serve_bus(reader, str(fields.get("worker")))
                return
            wire = RelayWire(reader, writer)
            if not await self.on_resume(fields, wire):
                await _write(writer, ["no"])
        except (WireClosed, TimeoutError, ConnectionError):
            pass
        except Exception:  # a request no check foresaw: this one connection ends
            logger.debug("a relay request failed", exc_info=True)
        finally:
            self.served.discard(task)
            writer.close()

    async def _serve_bus(self, reader: asyncio.StreamReader, sibling: str) -> None:
        """A sibling's messages for every worker, until it goes. One written
        more than STALE_SECONDS ago is dropped: this worker hung meanwhile,
        and its sender counted it lost (it never arrives late)."""
        stale = 0
        try:
            while True:
                message = await _read(reader)
                if (
                    len(message) != 4
                    or not isinstance(message[0], str)
                    or not isinstance(message[1], str)
                    or not isinstance(message[2], bytes)
                    or not isinstance(message[3], float)
                ):
                    raise WireClosed("not a bus message")
                if time.monotonic() - message[3] > STALE_SECONDS:
                    stale += 1
                    continue
                self._deliver(message[0], message[1], message[2])
        finally:
            if stale:
                logger.warning(
                    "%d message(s) from another worker (%s) dropped: they waited more than "
                    "%g s for this worker (it was stopped or hung)",
                    stale,
                    sibling,
                    STALE_SECONDS,
                )

    def _deliver(self, kind: str, app: str, payload: bytes) -> None:
        if self.on_bus is not None:
            try:
                self.on_bus(kind, app, payload)
            except Exception:
                logger.exception("a message from another worker failed here")

    def siblings(self) -> list[Path]:
        """The sockets of the other workers (some may be gone): read again
        when the directory changed, and at least every SIBLINGS_FRESH seconds
        (a directory's time may not tick for a change right after a read)."""
        try:
            changed = self.directory.stat().st_mtime_ns
        except OSError:
            return []
        now = time.monotonic()
        if changed != self._listed[0] or now - self._listed[1] > SIBLINGS_FRESH:
            found = sorted(
                path
                for path in self.directory.glob("*.sock")
                if path != self.path and path.stem.isdigit()  # named after a worker's pid
            )
            self._siblings, self._listed = found, (changed, now)
        return self._siblings

    async def _connect(self, path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the sibling listening at ``path``: OSError when it
        is gone, or when what listens there is not a worker of this server
        (the pid its socket is named after)."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path)), ASK_TIMEOUT
        )
        if peer_sibling(writer, self.parent) != int(path.stem):
            writer.close()
            raise ConnectionRefusedError(f"{path.name} is not a worker of this server")
        return reader, writer

    async def open_bus(self, path: Path) -> asyncio.StreamWriter:
        """A link to the sibling listening at ``path``, for :func:`write_bus`;
        raises OSError or TimeoutError when it is gone."""
        _, writer = await self._connect(path)
        fields = {"worker": os.getpid()}
        await _write(writer, ["bus", fields, self._mac({"hello": "bus", **fields})])
        return writer

    def _refused(self, why: str) -> None:
        log = logger.debug if self.warned else logger.warning
        self.warned = True
        log("refused a connection on the workers' relay socket: %s", why)

    async def find_owner(self, fields: dict[str, Any]) -> RelayWire | None:
        """The wire to the sibling that holds the session ``fields`` name
        (it answered "ok" and now serves it), or None if none does."""
        mac = self._mac({"hello": "resume", **fields})
        asking = [asyncio.ensure_future(self._ask(path, fields, mac)) for path in self.siblings()]
        try:
            # all at once: a sibling that hangs delays only the answer it owes
            for next_answer in asyncio.as_completed(asking):
                wire = await next_answer
                if wire is not None:
                    return wire
            return None
        finally:
            for task in asking:
                task.cancel()

    async def _ask(self, path: Path, fields: dict[str, Any], mac: bytes) -> RelayWire | None:
        try:
            reader, writer = await self._connect(path)
        except (OSError, ValueError, TimeoutError):
            return None  # a worker that is gone: its socket goes with the next start
        try:
            await _write(writer, ["resume", fields, mac])
            answer = await asyncio.wait_for(_read(reader), ASK_TIMEOUT)
            if answer == ["ok"]:
                return RelayWire(reader, writer)
        except (WireClosed, TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            writer.close()
            raise
        writer.close()
        return None


async def pump(
    wire: RelayWire,
    first: bytes,
    receive: Callable[[], Awaitable[Any]],
    send: Callable[[Any], Awaitable[None]],
    limit: int,
) -> tuple[int, str]:
    """Relay between the browser (``receive``/``send``) and the worker that
    holds its session, starting with the frame already read (``first``),
    until one side ends; returns the close code and reason for the browser.
    The browser leaving cancels the task that runs this.

    What the holding worker sent is read as it comes, so its close is heard
    even while the browser reads nothing; at most ``limit`` bytes of it wait
    here for the browser (max_send_buffer, as on a direct connection)."""
    waiting: deque[Any] = deque()
    size = 0
    more, emptied = asyncio.Event(), asyncio.Event()

    async def upstream() -> None:
        await _write(wire.writer, [_DATA, first])
        while True:
            data = await receive()
            await _write(wire.writer, [_DATA, data])

    async def from_holder() -> tuple[int, str]:
        nonlocal size
        while True:
            message = await _read(wire.reader)
            if message[0] == _DATA and len(message) == 2:
                waiting.append(message[1])
                size += len(message[1])
                if size > limit:
                    return 1008, "client is not reading its messages"
                more.set()
            elif message[0] == _CLOSE and len(message) == 3:
                return int(message[1]), str(message[2])
            else:
                raise WireClosed("not a relay message")

    async def to_browser() -> None:
        nonlocal size
        while True:
            await more.wait()
            more.clear()
            while waiting:
                frame = waiting.popleft()
                await send(frame)
                size -= len(frame)
            emptied.set()

    up = asyncio.ensure_future(upstream())
    down = asyncio.ensure_future(from_holder())
    out = asyncio.ensure_future(to_browser())
    try:
        await asyncio.wait({up, down, out}, return_when=asyncio.FIRST_COMPLETED)
        if down.done() and not down.cancelled() and down.exception() is None:
            code, reason = down.result()
            if code != 1008 and waiting and not out.done():
                # what the holder sent before its close reaches the browser first
                emptied.clear()
                more.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(emptied.wait(), CLOSE_FLUSH_SECONDS)
            return code, reason
        # the holding worker went away (or the wire broke): the browser
        # reconnects, and finds a fresh session if that worker is gone
        return 1012, "service restart"
    finally:
        for task in (up, down, out):
            task.cancel()
        wire.writer.close()
