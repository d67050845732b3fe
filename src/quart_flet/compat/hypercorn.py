"""Hypercorn's private names: its worker's locals, the tasks it runs, its
HTTP/2 protocol's event handling, its config loader. Imports Hypercorn only
inside functions (quart-flet may be served by another server)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

__all__ = [
    "HypercornWorker",
    "HYPERCORN_H2_HANDLE_EVENTS",
    "HYPERCORN_SEND_PINGS",
    "HYPERCORN_UDP_RUN",
    "HYPERCORN_WORKER_CONFIG",
    "HYPERCORN_WORKER_CONTEXT",
    "HYPERCORN_WORKER_LIFESPAN_TASK",
    "HYPERCORN_WORKER_SERVE",
    "h2_flush",
    "hypercorn_load_config",
    "hypercorn_workers",
    "ping_tasks",
    "quic_servers",
    "wrap_h2_handle_events",
]

#: the worker coroutine (hypercorn.asyncio.run.worker_serve), and its local
#: WorkerContext whose ``terminated`` event is set when the server starts to stop
HYPERCORN_WORKER_SERVE = "worker_serve"
HYPERCORN_WORKER_CONTEXT = "context"
#: and its (public) Config argument, for the server's ``graceful_timeout``
HYPERCORN_WORKER_CONFIG = "config"
#: and its local task running the app's lifespan (startup runs in it): which
#: worker serves this app when several serve on one loop
HYPERCORN_WORKER_LIFESPAN_TASK = "lifespan_task"
#: the per-WebSocket ping task (hypercorn.protocol.ws_stream.WSStream._send_pings)
HYPERCORN_SEND_PINGS = "WSStream._send_pings"
#: how an HTTP/2 connection hands h2's events to its streams
#: (hypercorn.protocol.h2.H2Protocol._handle_events(self, events)); its
#: ``streams``, ``stream_buffers``, ``connection`` and ``_flush`` are read
#: beside it (quart_flet.asgi.h2streams)
HYPERCORN_H2_HANDLE_EVENTS = "H2Protocol._handle_events"
#: the QUIC server's loop (hypercorn.asyncio.udp_server.UDPServer.run); its
#: ``context`` and ``transport`` attributes wake it at shutdown
HYPERCORN_UDP_RUN = "UDPServer.run"


def hypercorn_load_config(path: str | None) -> Any:
    """The Config Hypercorn's command line builds from a -c file (or its
    defaults), as ``hypercorn.__main__`` does."""
    from hypercorn.__main__ import _load_config

    return _load_config(path)


def _is_hypercorn(coro: Any, qualname: str) -> bool:
    return getattr(coro, "__qualname__", "") == qualname and "hypercorn" in getattr(
        getattr(coro, "cr_code", None), "co_filename", ""
    )


class HypercornWorker(NamedTuple):
    """A running ``worker_serve``'s locals: its WorkerContext (None before it
    makes it), its Config, and the task running the app's lifespan."""

    context: Any
    config: Any
    lifespan_task: Any


def hypercorn_workers(loop: asyncio.AbstractEventLoop) -> list[HypercornWorker]:
    """The Hypercorn workers serving on ``loop``: each ``worker_serve`` that is
    a task's own coroutine or one it awaits (``hypercorn.asyncio.serve``)."""
    found = []
    for task in asyncio.all_tasks(loop):
        coro: Any = task.get_coro()
        while coro is not None:
            if _is_hypercorn(coro, HYPERCORN_WORKER_SERVE):
                frame = getattr(coro, "cr_frame", None)
                local = {} if frame is None else frame.f_locals
                context = local.get(HYPERCORN_WORKER_CONTEXT)
                found.append(
                    HypercornWorker(
                        context if hasattr(context, "terminated") else None,
                        local.get(HYPERCORN_WORKER_CONFIG),
                        local.get(HYPERCORN_WORKER_LIFESPAN_TASK),
                    )
                )
                break
            coro = getattr(coro, "cr_await", None)
    return found


def quic_servers(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """The UDPServer of each task of ``loop`` that runs one (its ``context``,
    ``transport`` and ``datagram_received`` are Hypercorn's public attributes)."""
    found = []
    for task in asyncio.all_tasks(loop):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if _is_hypercorn(coro, HYPERCORN_UDP_RUN) and frame is not None:
            server = frame.f_locals.get("self")
            if server is not None:
                found.append(server)
    return found


def ping_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    """The tasks of ``loop`` that ping a WebSocket of Hypercorn's."""
    return [
        task
        for task in asyncio.all_tasks(loop)
        if _is_hypercorn(task.get_coro(), HYPERCORN_SEND_PINGS)
    ]


HandleEvents = Callable[[Any, list[Any]], Awaitable[None]]
_WRAPPED = "_quart_flet_wrapped"


def wrap_h2_handle_events(wrap: Callable[[HandleEvents], HandleEvents]) -> None:
    """Make ``wrap(original)`` Hypercorn's ``H2Protocol._handle_events(self,
    events)``, once per process; nothing if Hypercorn is not installed."""
    try:
        from hypercorn.protocol.h2 import H2Protocol
    except ImportError:
        return
    name = HYPERCORN_H2_HANDLE_EVENTS.split(".")[1]
    original: HandleEvents = getattr(H2Protocol, name)
    if getattr(original, _WRAPPED, False):
        return
    wrapped = wrap(original)
    setattr(wrapped, _WRAPPED, True)
    wrapped.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(H2Protocol, name, wrapped)


async def h2_flush(protocol: Any) -> None:
    """Write out what an H2Protocol's h2 connection has to send."""
    await protocol._flush()
