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

This reads Hypercorn internals (pinned to <0.19 in pyproject; covered by
tests/test_shutdown.py). Under another server nothing is found and nothing
changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("quart_flet")

_TRIGGER = "raise_shutdown"
_LOOK_EVERY, _LOOK_FOR = 0.05, 30.0  # seconds: the tasks appear right after startup


def _is_trigger(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", "") == _TRIGGER and "hypercorn" in getattr(
        getattr(coro, "cr_code", None), "co_filename", ""
    )


def on_server_shutdown(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]
) -> Callable[[], None]:
    """Call ``callback`` when the Hypercorn serving ``loop`` begins to stop;
    returns a function that stops watching.

    Hypercorn creates its trigger tasks only after the app's startup, so this
    looks for them a few times a second for a while (with timer callbacks,
    not a task of its own)."""
    deadline = loop.time() + _LOOK_FOR
    handle: asyncio.Handle | None = None

    def look() -> None:
        nonlocal handle
        handle = None
        triggers = [task for task in asyncio.all_tasks(loop) if _is_trigger(task)]
        for task in triggers:
            task.add_done_callback(lambda _: callback())
        if not triggers and loop.time() < deadline:
            handle = loop.call_later(_LOOK_EVERY, look)
        elif not triggers:
            logger.debug("no Hypercorn shutdown trigger: WebSockets close at server shutdown")

    def stop() -> None:
        if handle is not None:
            handle.cancel()

    handle = loop.call_soon(look)
    return stop
