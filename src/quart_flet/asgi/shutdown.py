"""Close Flet WebSockets as soon as the server starts to stop, instead of when
Hypercorn's graceful timeout runs out: wait on the ``terminated`` event of
the context of Hypercorn's ``worker_serve``, hold SIGTERM in worker
processes (``SIGTERM_GRACE``), wake each idle QUIC ``UDPServer`` with an
empty datagram, and cancel the WebSockets' ping loops.

This reads Hypercorn internals (pinned to <0.19 in pyproject; covered by
tests/asgi/test_shutdown.py). Under another server nothing is found and nothing
changes.

Why and how: docs/discussion/shutdown.md.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from quart_flet.compat.hypercorn import hypercorn_workers, ping_tasks, quic_servers

logger = logging.getLogger("quart_flet")

_LOOK_EVERY, _LOOK_FOR = 0.05, 30.0  # seconds: the context appears right after startup
# seconds a worker waits, on SIGTERM, for its shutdown trigger (Hypercorn polls
# the parent's event every 0.1 s) before dying of the signal as it would have
SIGTERM_GRACE = 1.0


def _worker_context(
    loop: asyncio.AbstractEventLoop, startup: asyncio.Task[Any] | None = None
) -> tuple[Any, Any] | None:
    """The context of the Hypercorn ``worker_serve`` running on ``loop``, once
    it has made one (right after the app's startup); ``worker_serve`` may be a
    task's own coroutine or one it awaits (``hypercorn.asyncio.serve``).

    With several servers on one loop, the worker whose lifespan task is
    ``startup`` (the task the app's startup ran in) is the app's: None until
    that one has its context. If no worker's lifespan task is ``startup``, the
    first worker with a context is taken. Returned with the worker's Config."""
    first = None
    for worker in hypercorn_workers(loop):
        found = None if worker.context is None else (worker.context, worker.config)
        if startup is not None and worker.lifespan_task is startup:
            return found
        if first is None:
            first = found
    return first


class _Stopping:
    """Whether the server has begun to stop, from its context once found."""

    def __init__(self) -> None:
        self.context: Any | None = None

    def __call__(self) -> bool:
        return self.context is not None and bool(self.context.terminated.is_set())


def on_server_shutdown(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[], Any],
    found: Callable[[float | None], Any] | None = None,
) -> Callable[[], None]:
    """Call ``callback`` when the Hypercorn serving ``loop`` begins to stop;
    returns a function that stops watching. Call it from the app's startup:
    the context is looked for until Hypercorn has made it
    (docs/discussion/shutdown.md, "Closing the sockets at once"). In a worker
    process SIGTERM is held from now on. ``found`` hears the server's graceful
    timeout (None if unknown) once its context is found.
    """
    deadline = loop.time() + _LOOK_FOR
    startup = asyncio.current_task(loop)  # Hypercorn's lifespan task, under Hypercorn
    handle: asyncio.Handle | None = None
    waiter: asyncio.Task[Any] | None = None
    stopping = _Stopping()
    sigterm = _SigtermHold(loop, stopping) if _in_worker_process() else None

    def stopped(_: object = None) -> None:
        callback()
        _wake_quic(loop)
        _stop_pings(loop)
        if sigterm is not None:
            sigterm.ignore()

    def look() -> None:
        nonlocal handle, waiter
        handle = None
        worker = _worker_context(loop, startup)
        if worker is not None:
            stopping.context, config = worker
            if found is not None:
                found(getattr(config, "graceful_timeout", None))
            if stopping():  # already stopping: a stop right after the start
                stopped()
            else:
                waiter = loop.create_task(stopping.context.terminated.wait())
                waiter.add_done_callback(lambda task: None if task.cancelled() else stopped())
        elif loop.time() < deadline:
            handle = loop.call_later(_LOOK_EVERY, look)
        else:
            logger.warning(
                "quart-flet found no Hypercorn shutdown trigger (not served by Hypercorn, "
                "or a Hypercorn release changed it): Flet WebSockets will close only "
                "after the server's graceful timeout, not when it starts to stop"
            )
            if sigterm is not None:
                sigterm.release()

    def stop() -> None:
        if handle is not None:
            handle.cancel()
        if waiter is not None and not waiter.done():
            waiter.cancel()
        if sigterm is not None and not stopping():
            sigterm.release()

    handle = loop.call_soon(look)
    return stop


def _in_worker_process() -> bool:
    """A process Hypercorn's parent started (``--workers N``): nobody handles
    SIGTERM in it, and the parent stops it with an event, then ``terminate()``."""
    return (
        multiprocessing.parent_process() is not None
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )


class _SigtermHold:
    """Keeps SIGTERM from killing a worker process while it stops gracefully."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stopping: Callable[[], bool]):
        self.loop, self.stopping = loop, stopping
        loop.add_signal_handler(signal.SIGTERM, self.on_sigterm)

    def on_sigterm(self) -> None:
        if self.stopping():
            self.ignore()
        else:  # the shutdown event may not have been seen yet: give it a moment
            self.loop.call_later(SIGTERM_GRACE, self.die_unless_stopping)

    def die_unless_stopping(self) -> None:
        if not self.stopping():
            logger.warning("SIGTERM to this worker alone: exiting at once")
            self.release()
            os.kill(os.getpid(), signal.SIGTERM)

    def ignore(self) -> None:
        """Stopping: from now on the graceful timeout bounds this worker's life."""
        # not remove_signal_handler(): it would reset SIGTERM to the default
        # first; the loop does that itself when it closes, once all is done
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def release(self) -> None:
        """Back to the default: SIGTERM kills."""
        self.loop.remove_signal_handler(signal.SIGTERM)


_wakers: set[asyncio.Task[None]] = set()


def _wake_quic(loop: asyncio.AbstractEventLoop) -> None:
    """Once the worker has stopped accepting (its ``terminated`` event), give
    each of its QUIC servers a datagram to notice it by."""
    for server in quic_servers(loop):
        if getattr(server, "transport", None) is None:
            continue
        waker = loop.create_task(_wake_when_terminated(server))
        _wakers.add(waker)
        waker.add_done_callback(_wakers.discard)


async def _wake_when_terminated(server: Any) -> None:
    await server.context.terminated.wait()
    address = server.transport.get_extra_info("sockname")
    server.datagram_received(b"", address)  # not a QUIC packet: dropped, then the flag is seen


def _stop_pings(loop: asyncio.AbstractEventLoop) -> None:
    for task in ping_tasks(loop):
        task.cancel()
