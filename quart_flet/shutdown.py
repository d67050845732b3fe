"""Close Flet WebSockets as soon as the server starts to stop.

Hypercorn runs the app's shutdown (``after_serving``) only once every
connection has ended, and tells the app nothing before: open WebSockets hold
it for the whole graceful timeout, then get cancelled, which closes them with
1011 and logs tracebacks. Hypercorn's worker (``worker_serve``, asyncio and
uvloop alike, one process or many) waits for its shutdown trigger in tasks
running ``hypercorn.utils.raise_shutdown``; when one of them finishes, the
server is stopping. We watch those tasks and close every Flet WebSocket with
1001 (going away: the client reconnects) right then, whatever told the server
to stop: SIGTERM in a single process, the parent's event for ``--workers N``,
or the ``shutdown_trigger`` of ``hypercorn.asyncio.serve``.

With ``--workers N`` there is a second trap: Hypercorn's parent sets the
workers' shutdown event, and as soon as the *first* worker has exited it
``terminate()``s the others. A worker has no SIGTERM handler of its own, so
one still busy closing its connections dies mid-way: its clients see 1006,
its ``after_serving`` never runs, its temporary files stay. The same happens
when SIGTERM reaches the whole process group (systemd, ``kill -- -PGID``). So
in a worker process we hold SIGTERM: once the worker is stopping it is
ignored (the graceful timeout bounds the rest); before that, the signal gets
a moment (``SIGTERM_GRACE``) for the shutdown event to be seen, and if it is
not, the worker dies of it as before (someone killed that worker alone).

This reads Hypercorn internals (pinned to <0.19 in pyproject; covered by
tests/test_shutdown.py). Under another server nothing is found and nothing
changes.
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

logger = logging.getLogger("quart_flet")

_TRIGGER = "raise_shutdown"
_LOOK_EVERY, _LOOK_FOR = 0.05, 30.0  # seconds: the tasks appear right after startup
# seconds a worker waits, on SIGTERM, for its shutdown trigger (Hypercorn polls
# the parent's event every 0.1 s) before dying of the signal as it would have
SIGTERM_GRACE = 1.0


def _is_trigger(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", "") == _TRIGGER and "hypercorn" in getattr(
        getattr(coro, "cr_code", None), "co_filename", ""
    )


def on_server_shutdown(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]
) -> Callable[[], None]:
    """Call ``callback`` when the Hypercorn serving ``loop`` begins to stop;
    returns a function that stops watching. Call it from the app's startup.

    Hypercorn creates its trigger tasks only after the app's startup, so this
    looks for them a few times a second for a while (with timer callbacks,
    not a task of its own). In a worker process SIGTERM is held from now on."""
    deadline = loop.time() + _LOOK_FOR
    handle: asyncio.Handle | None = None
    triggers: list[asyncio.Task[Any]] = []
    sigterm = _SigtermHold(loop, triggers) if _in_worker_process() else None

    def look() -> None:
        nonlocal handle
        handle = None
        triggers.extend(task for task in asyncio.all_tasks(loop) if _is_trigger(task))
        for task in triggers:
            task.add_done_callback(lambda _: callback())
            if sigterm is not None:
                task.add_done_callback(lambda _: sigterm.ignore())
        if not triggers and loop.time() < deadline:
            handle = loop.call_later(_LOOK_EVERY, look)
        elif not triggers:
            logger.debug("no Hypercorn shutdown trigger: WebSockets close at server shutdown")
            if sigterm is not None:
                sigterm.release()

    def stop() -> None:
        if handle is not None:
            handle.cancel()
        if sigterm is not None and not sigterm.stopping():
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

    def __init__(self, loop: asyncio.AbstractEventLoop, triggers: list[asyncio.Task[Any]]):
        self.loop, self.triggers = loop, triggers
        loop.add_signal_handler(signal.SIGTERM, self.on_sigterm)

    def stopping(self) -> bool:
        return any(task.done() for task in self.triggers)

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
