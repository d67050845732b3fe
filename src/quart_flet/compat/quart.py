"""Quart's private names: its WebSocket object's queues and the methods of
its ASGI connections. Imports Quart only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import websocket
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body

__all__ = [
    "MIRRORED",
    "QUART_HTTP_CONNECTION_HOOKS",
    "BufferedBody",
    "HTTPConnectionHooks",
    "create_websocket_from_scope",
    "current_websocket",
    "set_websocket_queue",
    "websocket_queues",
]

#: Quart functions whose behaviour quart_flet re-does (see compat.flet.MIRRORED)
MIRRORED: dict[str, tuple[str, str]] = {
    # Quart's per-WebSocket handling: re-done in quart_flet.asgi.leanws with the
    # handler in the calling task
    "quart.asgi.ASGIWebsocketConnection.__call__": (
        "3a9942b783c52b86",
        "quart_flet.asgi.leanws.LeanWebsocketConnection.__call__",
    ),
}


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


#: the methods of quart.asgi.ASGIHTTPConnection that HTTPConnectionHooks
#: routes to public ones (for quart_flet.http.uploadbody): the request made
#: from the ASGI scope (an upload gets a streaming body), and the sending of
#: the response (whose last, empty body message ends the response: an early
#: answer reads the rest of the request body first)
QUART_HTTP_CONNECTION_HOOKS = ("_create_request_from_scope", "_send_response")


class HTTPConnectionHooks(ASGIHTTPConnection):
    """Quart's HTTP connection, with the private methods quart-flet overrides
    routed to public ones a subclass may override."""

    def _create_request_from_scope(self, send: Any) -> Any:
        return self.request_from_scope(send)

    def request_from_scope(self, send: Any) -> Any:
        """The Request made from the ASGI scope, before any task reads it."""
        return super()._create_request_from_scope(send)

    async def _send_response(self, send: Any, response: Any) -> None:
        await self.send_response(send, response)

    async def send_response(self, send: Any, response: Any) -> None:
        """Send ``response`` through ``send``, its last body message ending it."""
        await super()._send_response(send, response)


class BufferedBody(Body):
    """Quart's request Body, with the bytes it holds (received, not yet
    read) in sight."""

    @property
    def buffered(self) -> bytearray:
        return self._data
