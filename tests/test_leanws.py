"""quart_flet.leanws: Quart's WebSocket receive queue without standing deques."""

from __future__ import annotations

import asyncio
import sys

import pytest
from quart import Quart, websocket
from quart.asgi import ASGIWebsocketConnection

from quart_flet import QuartFlet
from quart_flet.leanws import LeanQueue, LeanWebsocketConnection


async def test_messages_come_out_in_order_and_a_getter_waits_for_a_put() -> None:
    queue = LeanQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # let the getter start waiting
    assert not waiting.done()
    await queue.put(b"first")
    queue.put_nowait(b"second")
    assert await waiting == b"first"
    assert queue.qsize() == 1
    assert await queue.get() == b"second"
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_getter_cancelled_after_its_wake_up_passes_the_message_on() -> None:
    queue = LeanQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(b"only")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == b"only"
    assert first.cancelled()


async def test_an_empty_queue_holds_no_container() -> None:
    queue = LeanQueue()
    empty = sys.getsizeof(queue)
    queue.put_nowait(b"x")
    assert await queue.get() == b"x"
    # nothing but the slots: no deque, no list of getters stays behind
    assert sys.getsizeof(queue) == empty
    assert queue._items is None and queue._getters is None


async def test_quart_flet_apps_receive_through_the_lean_queue() -> None:
    app = Quart(__name__)
    QuartFlet(app)
    assert app.asgi_websocket_class is LeanWebsocketConnection

    @app.websocket("/echo")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    async with app.test_app(), app.test_client().websocket("/echo") as ws:
        for message in (b"one", "two", b"three"):
            await ws.send(message)
            assert await ws.receive() == message


def test_an_app_s_own_websocket_class_is_kept() -> None:
    class Own(ASGIWebsocketConnection):
        pass

    app = Quart(__name__)
    app.asgi_websocket_class = Own
    QuartFlet(app)
    assert app.asgi_websocket_class is Own


async def test_a_client_leaving_cancels_a_handler_that_never_receives() -> None:
    app = Quart(__name__)
    QuartFlet(app)
    started, cancelled = asyncio.Event(), asyncio.Event()

    @app.websocket("/hold")
    async def hold() -> None:
        await websocket.accept()
        started.set()
        try:
            await asyncio.Event().wait()  # sends nothing, receives nothing
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with app.test_app():
        async with app.test_client().websocket("/hold"):
            await asyncio.wait_for(started.wait(), 5)
            assert not cancelled.is_set()
        await asyncio.wait_for(cancelled.wait(), 5)


async def test_a_handler_that_returns_stops_the_receiving() -> None:
    app = Quart(__name__)
    QuartFlet(app)
    tasks_before: set[asyncio.Task[object]] = set()

    @app.websocket("/once")
    async def once() -> None:
        await websocket.send(await websocket.receive())  # then returns

    async with app.test_app():
        tasks_before = asyncio.all_tasks()
        async with app.test_client().websocket("/once") as ws:
            await ws.send(b"ping")
            assert await ws.receive() == b"ping"
        # the receive task ended with the handler: no task of the socket is left
        left = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
        left.discard(asyncio.current_task())  # type: ignore[arg-type]
        assert not left
