"""``quart-flet run --workers N``: N worker processes on one listening socket,
and a dead one replaced without touching the others.

Hypercorn's own ``--workers`` stops every worker when one dies and then
exits 0, so one crash is a silent outage a process manager never restarts.
Here the supervisor (this process) holds the listening sockets, starts each
worker with them and, when a worker dies, starts another in its place while
the others keep serving their sessions. The workers are this process's
children, so they find each other over the workers' relay
(quart_flet.session.relay) and a reconnect reaches its session in whichever
worker holds it; a session held by a worker that died starts afresh.

It gives up, stopping the others and exiting non-zero, when a worker fails
before it served (the app cannot start: its one-line error is printed once,
by the first worker, which starts alone) or when workers keep dying
(:data:`CRASH_LIMIT` within :data:`CRASH_WINDOW` seconds). SIGTERM or Ctrl-C
stops every worker gracefully (each drains, as with one process) and exits 0.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from hypercorn.config import Config, Sockets

from quart_flet.app.server import ServerOptions, app_for, bound_port, hypercorn_config, listen
from quart_flet.cli.target import TargetError, parse_target
from quart_flet.options import OptionError

__all__ = ["CRASH_LIMIT", "CRASH_WINDOW", "Supervisor"]

#: this many worker deaths within CRASH_WINDOW seconds and the server gives up
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
#: seconds past Hypercorn's graceful timeout a stopping worker gets before SIGKILL
STOP_MARGIN = 5.0


def _worker(
    target: str, server: ServerOptions, config: Config, sockets: Sockets, ready: Connection
) -> None:
    """A worker's body (in a spawned process): load the app, say when it
    serves, serve until SIGTERM or SIGINT."""
    from quart_flet.app.server import serve

    try:
        app = app_for(parse_target(target).load(prefer_main=server.path != "/"), server)
    except (OptionError, TargetError) as error:  # as `quart-flet run` says it alone
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None

    async def serving() -> None:  # the app's own before_serving ran: it started
        ready.send(os.getpid())
        ready.close()

    app.before_serving(serving)
    serve(app, server, config, sockets=sockets)


@dataclass
class Worker:
    process: BaseProcess
    ready: Connection  # the worker sends its pid once it serves
    serving: bool = False
    listening: bool = True  # nothing heard on ``ready`` yet (neither pid nor EOF)


class Supervisor:
    """Keeps ``count`` workers of ``target`` serving on ``server``'s address."""

    def __init__(
        self, target: str, server: ServerOptions, count: int, config: Config | None = None
    ) -> None:
        self.target = target
        self.server = server
        self.count = count
        self.config = hypercorn_config(server) if config is None else config
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []
        self.deaths: deque[float] = deque()
        self.stopping = False
        self.wake_read, self.wake_write = socket.socketpair()
        self.sockets: Sockets | None = None

    def run(self) -> int:
        """Serve until stopped (0) or until it gives up (non-zero)."""
        self.sockets = listen(self.config, self.server)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            print(
                f"quart-flet: serving {self.server.url(bound_port(self.sockets))} "
                f"with {self.count} workers (Ctrl-C to stop)",
                flush=True,
            )
            code = self._supervise()
            self._stop_workers()
            print("quart-flet: stopped", flush=True)
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets.secure_sockets + self.sockets.insecure_sockets:
                sock.close()
            self.wake_read.close()
            self.wake_write.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            self.wake_write.send(b"\0")

    def _start(self) -> Worker:
        assert self.sockets is not None
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker,
            args=(self.target, self.server, self.config, self.sockets, send),
            name="quart-flet worker",
        )
        process.start()
        send.close()  # the child holds its end; EOF here once it is gone
        worker = Worker(process, receive)
        self.workers.append(worker)
        return worker

    def _supervise(self) -> int:
        # the first worker alone: an app that cannot start says so once
        first = self._start()
        while not first.serving:
            if self.stopping:
                return 0
            self._wait()
            if not first.process.is_alive() and not first.serving:
                first.process.join()
                return _failed(first.process.exitcode)
        for _ in range(self.count - 1):
            self._start()
        while not self.stopping:
            for worker in self._wait():
                code = self._replace(worker)
                if code is not None:
                    return code
        return 0

    def _wait(self) -> list[Worker]:
        """Block until a signal, a worker's "serving" or a worker's death;
        return the workers that died."""
        waiting: list[Any] = [self.wake_read]
        for worker in self.workers:
            waiting.append(worker.process.sentinel)
            if worker.listening:
                waiting.append(worker.ready)
        ready = wait(waiting)
        if self.wake_read in ready:
            with contextlib.suppress(OSError):
                self.wake_read.recv(64)
        dead = []
        for worker in self.workers:
            if worker.listening and worker.ready in ready:
                worker.listening = False
                with contextlib.suppress(EOFError, OSError):  # EOF: it died first
                    worker.ready.recv()
                    worker.serving = True
            if worker.process.sentinel in ready:
                dead.append(worker)
        return dead

    def _replace(self, worker: Worker) -> int | None:
        """A worker died while the server runs: start another in its place,
        or return the exit code when the server gives up."""
        worker.process.join()
        worker.ready.close()
        self.workers.remove(worker)
        if self.stopping:
            return None
        code = worker.process.exitcode
        if not worker.serving:
            print(f"quart-flet: a new worker failed to start ({_how(code)})", file=sys.stderr)
            return _failed(code)
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - CRASH_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) >= CRASH_LIMIT:
            print(
                f"quart-flet: {len(self.deaths)} workers died within {CRASH_WINDOW:g} s "
                f"(the last: {_how(code)}); stopping the server",
                file=sys.stderr,
                flush=True,
            )
            return 1
        print(
            f"quart-flet: worker {worker.process.pid} stopped ({_how(code)}); "
            "starting another, the other workers keep serving",
            file=sys.stderr,
            flush=True,
        )
        self._start()
        return None

    def _stop_workers(self) -> None:
        """SIGTERM to every worker (each drains as one process does), then
        SIGKILL to any still there past the graceful timeout."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + float(self.config.graceful_timeout) + STOP_MARGIN
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.ready.close()
        self.workers.clear()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _failed(code: int | None) -> int:
    return code if code is not None and code > 0 else 1
