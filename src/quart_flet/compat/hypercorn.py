"""Hypercorn's private names: its worker's locals, the tasks it runs, its
HTTP/2 protocol's event handling, its config loader. Imports Hypercorn only
inside functions (quart-flet may be served by another server)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "HYPERCORN_H2_HANDLE_EVENTS",
    "HYPERCORN_SEND_PINGS",
    "HYPERCORN_UDP_RUN",
    "HYPERCORN_WORKER_CONFIG",
    "HYPERCORN_WORKER_CONTEXT",
    "HYPERCORN_WORKER_LIFESPAN_TASK",
    "HYPERCORN_WORKER_SERVE",
    "hypercorn_load_config",
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
