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

It gives up, stopping the others and exiting non-zero, when the first
worker fails before it served (the app cannot start: its one-line error is
printed once, by that worker, which starts alone) or when workers keep dying
or cannot be started (:data:`CRASH_LIMIT` within :data:`CRASH_WINDOW`
seconds; a replacement that dies while it starts counts as one). SIGTERM,
SIGINT (Ctrl-C) or SIGHUP stops every worker gracefully (each drains, as
with one process) and exits 0, or 1 if one had to be killed.
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
        """Serve until stopped (0) or until it gives up (non-zero). Whatever
        happens here, the workers are stopped before it returns or raises."""
        self.sockets = listen(self.config, self.server)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        code = 1
        try:
            _say(
                f"quart-flet: serving {self.server.url(bound_port(self.sockets))} "
                f"with {self.count} workers (Ctrl-C to stop)",
                sys.stdout,
            )
            code = self._supervise()
        finally:
            if not self._stop_workers():
                code = code or 1
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_sockets()
            self.wake_read.close()
            self.wake_write.close()
        _say("quart-flet: stopped", sys.stdout)
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            self.wake_write.send(b"\0")

    def _start(self) -> Worker | None:
        """A new worker, or None (said why) when the system could not start
        one (no file descriptors or processes left)."""
        assert self.sockets is not None
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker,
            args=(self.target, self.server, self.config, self.sockets, send),
            name="quart-flet worker",
        )
        try:
            process.start()
        except OSError as error:
            receive.close()
            _say(f"quart-flet: cannot start a worker: {error}")
            return None
        finally:
            send.close()  # the child holds its end; EOF here once it is gone
        worker = Worker(process, receive)
        self.workers.append(worker)
        return worker

    def _supervise(self) -> int:
        # the first worker alone: an app that cannot start says so once
        first = self._start()
        if first is None:
            return 1
        while not first.serving:
            if self.stopping:
                return 0
            self._wait()
            if not first.process.is_alive() and not first.serving:
                first.process.join()
                code = first.process.exitcode
                if code is None or code < 0:  # killed: it printed nothing of its own
                    _say(f"quart-flet: the first worker stopped before it served ({_how(code)})")
                return _failed(code)
        missing = self.count - 1
        while not self.stopping:
            for _ in range(missing):
                if self._start() is None and self._died("a worker could not start"):
                    return 1
            missing = self.count - len(self.workers)
            # a worker that could not start is tried again a second later
            for worker in self._wait(timeout=1.0 if missing else None):
                if self._replace(worker):
                    return 1
            missing = self.count - len(self.workers)
        return 0

    def _wait(self, timeout: float | None = None) -> list[Worker]:
        """Block until a signal, a worker's "serving" or a worker's death
        (or ``timeout``); return the workers that died."""
        waiting: list[Any] = [self.wake_read]
        for worker in self.workers:
            waiting.append(worker.process.sentinel)
            if worker.listening:
                waiting.append(worker.ready)
        ready = wait(waiting, timeout)
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

    def _replace(self, worker: Worker) -> bool:
        """A worker died while the server runs: forget it (the loop starts
        another); True when workers keep dying and the server gives up."""
        worker.process.join()
        worker.ready.close()
        self.workers.remove(worker)
        if self.stopping:
            return False
        code = worker.process.exitcode
        what = "stopped" if worker.serving else "stopped before it served"
        if self._died(f"worker {worker.process.pid} {what} ({_how(code)})"):
            return True
        _say(
            f"quart-flet: worker {worker.process.pid} {what} ({_how(code)}); "
            "starting another, the other workers keep serving"
        )
        return False

    def _died(self, what: str) -> bool:
        """Count one death; True (said why) past CRASH_LIMIT in CRASH_WINDOW."""
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - CRASH_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) < CRASH_LIMIT:
            return False
        _say(
            f"quart-flet: {len(self.deaths)} workers died within {CRASH_WINDOW:g} s "
            f"(the last: {what}); stopping the server"
        )
        return True

    def _close_sockets(self) -> None:
        if self.sockets is not None:
            for sock in self.sockets.secure_sockets + self.sockets.insecure_sockets:
                sock.close()

    def _stop_workers(self) -> bool:
        """SIGTERM to every worker (each drains as one process does), then
        SIGKILL to any still there past the graceful timeout; False (said
        so) when one had to be killed."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        # the workers stop accepting now: a connection the kernel would still
        # queue for them waits unanswered until they exit, while a closed port
        # refuses it at once (a load balancer then tries the next server)
        self._close_sockets()
        deadline = time.monotonic() + float(self.config.graceful_timeout) + STOP_MARGIN
        clean = True
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                _say(f"quart-flet: worker {worker.process.pid} did not stop in time: killed")
                worker.process.kill()
                worker.process.join()
                clean = False
            worker.ready.close()
        self.workers.clear()
        return clean


def _say(line: str, stream: Any = None) -> None:
    """One line for the operator (stderr by default); a reader that went
    away (a closed pipe) never stops the supervisor."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr if stream is None else stream, flush=True)


#: each stops every worker gracefully (SIGHUP: the terminal went away)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _failed(code: int | None) -> int:
    return code if code is not None and code > 0 else 1
