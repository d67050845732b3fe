"""Quart's ASGI WebSocket connection with a lighter receive queue.

Quart hands each WebSocket's received messages to its handler through an
``asyncio.Queue``: four deques (items, getters, putters, and the waiters of
its ``join`` event), about 3 KiB held for the socket's whole life, most of
an idle Flet session's share of Quart. :class:`LeanQueue` does the same job
for the two calls Quart makes (``await queue.put(message)`` from its receive
task, ``await queue.get()`` in ``websocket.receive()``) and holds nothing
while empty. :func:`install` makes it the app's ASGI WebSocket class unless
the app chose one of its own; every WebSocket route of the app gets it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from quart import Quart
from quart.asgi import ASGIWebsocketConnection

from quart_flet.compat import set_websocket_queue

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


class LeanWebsocketConnection(ASGIWebsocketConnection):
    """Quart's ASGI WebSocket connection, receiving through a :class:`LeanQueue`."""

    def __init__(self, app: Quart, scope: Any) -> None:
        super().__init__(app, scope)
        set_websocket_queue(self, LeanQueue())


def install(app: Quart) -> None:
    """Serve the app's WebSockets with :class:`LeanWebsocketConnection`,
    unless it has an ASGI WebSocket class of its own."""
    if app.asgi_websocket_class is ASGIWebsocketConnection:
        app.asgi_websocket_class = LeanWebsocketConnection
