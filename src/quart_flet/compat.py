"""Every private name of flet, Hypercorn, Quart and asyncio that quart-flet
touches, in one place. tests/test_compat.py fails when an upgrade changes one
of them: a name that is gone, or the source of a flet function we re-do.

Why each is needed is said where it is used; here is only what it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from flet.controls.context import _context_page
from flet.data_channel import _ProtocolMuxedDataChannel
from quart import websocket

__all__ = [
    "HYPERCORN_H2_HANDLE_EVENTS",
    "HYPERCORN_SEND_PINGS",
    "HYPERCORN_UDP_RUN",
    "HYPERCORN_WORKER_CONFIG",
    "HYPERCORN_WORKER_CONTEXT",
    "HYPERCORN_WORKER_LIFESPAN_TASK",
    "HYPERCORN_WORKER_SERVE",
    "MIRRORED",
    "QUART_HTTP_CONNECTION_HOOKS",
    "ProtocolMuxedDataChannel",
    "authorize_callback",
    "create_websocket_from_scope",
    "context_page",
    "current_websocket",
    "deliver_to_channel",
    "get_running_loop_or_none",
    "hypercorn_load_config",
    "page_services",
    "set_context_page",
    "set_registry_lock",
    "set_running_loop",
    "set_trigger_event",
    "set_websocket_queue",
    "trigger_page_event",
    "websocket_queues",
]

# ---- flet ----------------------------------------------------------------------

#: the context variable behind ``ft.context.page``
context_page = _context_page

#: the data channel flet's Connection hands out (flet.data_channel)
ProtocolMuxedDataChannel = _ProtocolMuxedDataChannel

#: flet and Quart functions whose behaviour quart_flet re-does, by the sha256 of their
#: source (first 16 hex digits) in the flet release we follow: when one
#: changes, read the new source and update the copy named beside it
MIRRORED: dict[str, tuple[str, str]] = {
    # (qualified name): (source digest, where we re-do it)
    # how a control event reaches its handler (Page inherits it): re-done in
    # quart_flet.runtime.dispatch._trigger, overridden by loopsafe.LoopSafePage
    "flet.controls.base_control.BaseControl._trigger_event": (
        "afe9ec009b324ff7",
        "quart_flet.runtime.dispatch._trigger",
    ),
    # Quart's per-WebSocket handling: re-done in quart_flet.asgi.leanws with the
    # handler in the calling task
    "quart.asgi.ASGIWebsocketConnection.__call__": (
        "3a9942b783c52b86",
        "quart_flet.asgi.leanws.LeanWebsocketConnection.__call__",
    ),
}


def set_context_page(page: Any) -> None:
    """``ft.context.page`` is ``page`` from now on in this context."""
    _context_page.set(page)  # flet's ContextVar is inferred as ContextVar[None]


def deliver_to_channel(channel: Any, payload: bytes) -> None:
    """Hand a data-channel frame's payload to flet's channel."""
    channel._deliver(payload)


def authorize_callback(page: Any, data: dict[str, Any]) -> Awaitable[None]:
    """The OAuth completion flet's own web server calls on the page."""
    result: Awaitable[None] = page._authorize_callback(data)
    return result


def trigger_page_event(page: Any, name: str, data: Any) -> Awaitable[None]:
    """Fire a page event (on_route_change...) as flet's server does."""
    result: Awaitable[None] = page._trigger_event(name, data)
    return result


def page_services(page: Any) -> Any:
    """The page's ServiceRegistry (flet.controls.page)."""
    return page._services


def set_registry_lock(services: Any, lock: Any) -> None:
    """Replace the lock a ServiceRegistry holds while it changes."""
    services._lock = lock


def set_trigger_event(control: Any, trigger: Callable[..., Awaitable[None]]) -> None:
    """Route the events flet fires on ``control`` itself (a dialog's dismiss)
    through ``trigger``."""
    control._trigger_event = trigger


# ---- Quart ---------------------------------------------------------------------


def current_websocket() -> Any:
    """The Websocket object behind Quart's ``websocket`` proxy."""
    return websocket._get_current_object()  # type: ignore[attr-defined]


def websocket_queues(
    ws: Any,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]]:
    """The receive and send callables of an accepted Quart Websocket, without
    the accept check and the sleep(0) that receive()/send() add per frame."""
    return ws._receive, ws._send


def create_websocket_from_scope(connection: Any, send: Any) -> Any:
    """The Websocket object Quart's ASGIWebsocketConnection builds from its scope."""
    return connection._create_websocket_from_scope(send)


def set_websocket_queue(connection: Any, queue: Any) -> None:
    """Replace the queue through which Quart's ASGIWebsocketConnection hands
    received messages to ``websocket.receive()`` (quart.asgi: its receive
    task awaits ``queue.put``, the Websocket gets ``queue.get``)."""
    connection.queue = queue


#: the methods of quart.asgi.ASGIHTTPConnection that quart_flet.http.uploadbody's
#: StreamingUploadConnection overrides: the request made from the ASGI scope
#: (an upload gets a streaming body), and the sending of the response (whose
#: last, empty body message ends the response: an early answer reads the
#: rest of the request body first)
QUART_HTTP_CONNECTION_HOOKS = ("_create_request_from_scope", "_send_response")

# ---- Hypercorn -------------------------------------------------------------------

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


# ---- asyncio ---------------------------------------------------------------------

#: asyncio's own hooks behind get_running_loop(), public in all but name
#: (asyncio.events exports both)
get_running_loop_or_none: Callable[[], asyncio.AbstractEventLoop | None] = asyncio._get_running_loop
set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = asyncio._set_running_loop
