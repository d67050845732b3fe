"""``quart-flet run --reload``: serve the app in a child process and start a
fresh one whenever one of its Python files changes.

This process holds the listening socket and hands it to each child, so a
browser reconnecting while the next child starts waits in the socket's
backlog instead of being refused. The old child closes every Flet WebSocket
with 1001 (going away); the web client reconnects with its old session id,
which the new process does not know, so it gets a new session: ``main`` runs
again and the page shows the new code by itself, no refresh needed (the
page's state starts afresh, as after any restart).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from quart_flet.app.server import SAFE_SETTINGS, ServerOptions
from quart_flet.cli.target import AppTarget

#: seconds between two looks at the app's files (a stat of each .py file)
POLL_SECONDS = 0.25
# directories that are never the app's own code
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}

Snapshot = dict[Path, tuple[int, int]]


def python_files(directory: Path) -> Iterator[Path]:
    """The .py files under ``directory``, minus hidden directories, caches
    and virtual environments."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [
            name
            for name in dirs
            if not name.startswith(".")
            and name not in _SKIPPED_DIRS
            and not (Path(root, name) / "pyvenv.cfg").exists()
        ]
        for name in files:
            if name.endswith(".py") and not name.startswith("."):
                yield Path(root, name)


def snapshot(directory: Path) -> Snapshot:
    found: Snapshot = {}
    for path in python_files(directory):
        try:
            stat = path.stat()
        except OSError:  # removed between the walk and the stat
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[Path]:
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


def listening_socket(server: ServerOptions) -> socket.socket:
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    sock = socket.create_server(
        (server.host, server.port), family=family, backlog=SAFE_SETTINGS["backlog"]
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Hypercorn's own
    sock.set_inheritable(True)
    return sock


class Reloader:
    """Runs ``quart-flet run TARGET`` in a child on our socket; restarts it on a change."""

    def __init__(self, target: AppTarget, server: ServerOptions, environ: Mapping[str, str]):
        self.target = target
        self.server = server
        self.environ = dict(environ)
        self.directory = target.watched_directory()
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        try:
            sock = listening_socket(self.server)
        except OSError as error:
            print(
                f"error: cannot listen on {self.server.bind}: {error.strerror or error}; "
                "choose another port with --port (or FLET_SERVER_PORT)",
                file=sys.stderr,
            )
            return 1
        with sock:
            port = int(sock.getsockname()[1])
            print(f"quart-flet: serving {self.server.url(port)} (Ctrl-C to stop)", flush=True)
            print(f"quart-flet: reloading on changes to .py files in {self.directory}", flush=True)
            previous = {
                sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                self._loop(sock.fileno())
            finally:
                self._stop_child()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        print("quart-flet: stopped", flush=True)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def _loop(self, fd: int) -> None:
        files = snapshot(self.directory)
        self._start_child(fd)
        reported_exit = False
        while not self.stopping.wait(POLL_SECONDS):
            now = snapshot(self.directory)
            changes = changed_files(files, now)
            if changes:
                files = now
                names = ", ".join(str(path.relative_to(self.directory)) for path in changes[:3])
                print(f"quart-flet: {names} changed, restarting", flush=True)
                self._stop_child()
                self._start_child(fd)
                reported_exit = False
            elif self.child is not None and self.child.poll() is not None and not reported_exit:
                reported_exit = True
                print(
                    f"quart-flet: the app exited with status {self.child.returncode}; "
                    "waiting for a change to restart it",
                    flush=True,
                )

    def _start_child(self, fd: int) -> None:
        command = [sys.executable, "-m", "quart_flet.cli", "run", self.target.text, "--fd", str(fd)]
        self.child = subprocess.Popen(command, env=self.environ, pass_fds=(fd,))

    def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)  # Flet sockets close with 1001: pages reconnect
        try:
            child.wait(SAFE_SETTINGS["graceful_timeout"] + 5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
