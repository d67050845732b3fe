"""Quart's ASGI WebSocket connection, lighter for sockets held open (about
5 KiB less each): :class:`LeanQueue` holds received messages without
``asyncio.Queue``'s standing deques, and :class:`LeanWebsocketConnection`
runs the handler in the server's task for the socket instead of a task of
its own. :func:`install` makes it the app's ASGI WebSocket class unless the
app chose one of its own.

Why and how: docs/discussion/click.md, "The WebSocket itself".
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from quart import Quart
from quart.asgi import ASGIWebsocketConnection

from quart_flet.compat.quart import create_websocket_from_scope, set_websocket_queue

__all__ = ["LeanQueue", "LeanWebsocketConnection", "install"]


class LeanQueue:
    """An unbounded FIFO of one WebSocket's messages, asyncio.Queue's
    ``get``/``put`` (and their ``_nowait`` forms) without its standing deques:
    the items' deque exists while items wait, the getters' list while a getter
    waits."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._forget(waiter)
                if self._items and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the item is the next getter's
                raise
            self._forget(waiter)
        return self.get_nowait()

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        getters = self._getters
        if getters is not None:
            if waiter in getters:
                getters.remove(waiter)
            if not getters:
                self._getters = None

    def _wake_one(self) -> None:
        for waiter in self._getters or ():
            if not waiter.done():
                waiter.set_result(None)
                return


class _StopHandler:
    """The receive task's done callback: cancel the handler, once, unless the
    handler has ended already."""

    __slots__ = ("handler", "fired", "ended")

    def __init__(self, handler: asyncio.Task[Any]) -> None:
        self.handler = handler
        self.fired = False
        self.ended = False

    def __call__(self, receiver: asyncio.Future[Any]) -> None:
        if not self.ended and not self.fired:
            self.fired = True
            self.handler.cancel()


class LeanWebsocketConnection(ASGIWebsocketConnection):
    """Quart's ASGI WebSocket connection, receiving through a :class:`LeanQueue`,
    its handler run in the calling task."""

    def __init__(self, app: Quart, scope: Any) -> None:
        super().__init__(app, scope)
        set_websocket_queue(self, LeanQueue())

    async def __call__(self, receive: Any, send: Any) -> None:
        """Quart's: the handler runs until it returns or the client leaves (the
        receive task ends: the handler is cancelled, as by Quart's
        ``asyncio.wait``); the receive task's error, if any, is raised."""
        websocket = create_websocket_from_scope(self, send)
        handler = asyncio.current_task()
        assert handler is not None
        receiver = asyncio.ensure_future(self.handle_messages(receive))
        stop = _StopHandler(handler)
        receiver.add_done_callback(stop)
        try:
            await self.handle_websocket(websocket, send)
        except asyncio.CancelledError:
            if not stop.fired or handler.cancelling() > 1:
                raise  # cancelled from outside too (the server stops)
        finally:
            stop.ended = True
            if stop.fired:
                handler.uncancel()  # our cancel is spent
            if not receiver.done():  # the handler returned: stop receiving
                receiver.remove_done_callback(stop)
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
        if not receiver.cancelled() and receiver.exception() is not None:
            raise receiver.exception()  # type: ignore[misc]


def install(app: Quart) -> None:
    """Serve the app's WebSockets with :class:`LeanWebsocketConnection`,
    unless it has an ASGI WebSocket class of its own."""
    if app.asgi_websocket_class is ASGIWebsocketConnection:
        app.asgi_websocket_class = LeanWebsocketConnection
