"""quart_flet.asgi.leanws: Quart's WebSocket receive queue without standing deques."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart, abort, websocket
from quart.asgi import ASGIWebsocketConnection
from quart.signals import websocket_received
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from quart_flet import QuartFlet
from quart_flet.asgi.leanws import LeanQueue, LeanWebsocketConnection


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


# ---- a plain Quart websocket route on a real Hypercorn, both classes ---------


@contextlib.asynccontextmanager
async def served(app: Quart) -> AsyncIterator[str]:
    """``app`` on a real Hypercorn on 127.0.0.1; yields its ws:// base URL and
    stops the server (graceful timeout 5 s) on the way out."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listening = socket.create_server(("127.0.0.1", 0))  # clients wait in its backlog
    port = listening.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listening.detach()}"]
    config.graceful_timeout = 5
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


CLASSES = pytest.mark.parametrize(
    "connection_class",
    [ASGIWebsocketConnection, LeanWebsocketConnection],
    ids=["quart", "lean"],
)


def plain_app(connection_class: type[ASGIWebsocketConnection]) -> tuple[Quart, list[str]]:
    """A Quart app of its own websocket routes, with hooks that log."""
    app = Quart(__name__)
    app.asgi_websocket_class = connection_class
    log: list[str] = []

    @app.before_websocket
    async def before() -> None:
        log.append(f"before {websocket.path}")

    @app.after_websocket
    async def after(response: Any) -> Any:
        log.append(f"after {websocket.path}")
        return response

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        log.append(f"teardown {websocket.path} {type(error).__name__}")

    @app.websocket("/echo")
    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    @app.websocket("/accept")
    async def accept() -> None:
        await websocket.accept(headers={"X-Chosen": "yes"}, subprotocol="two")
        await websocket.send("accepted")
        await websocket.receive()

    @app.websocket("/forbidden")
    async def forbidden() -> None:
        abort(403)

    @app.websocket("/raises")
    async def raises() -> None:
        await websocket.accept()
        await websocket.receive()
        raise RuntimeError("the handler failed")

    @app.websocket("/once")
    async def once() -> None:
        await websocket.send(await websocket.receive())
        log.append("returned")

    return app, log


@CLASSES
async def test_a_plain_route_echoes_text_and_bytes_and_accepts_with_headers(
    connection_class: type[ASGIWebsocketConnection],
) -> None:
    app, log = plain_app(connection_class)
    async with served(app) as base:
        async with connect(f"{base}/echo") as ws:
            for message in ("text", b"\x00bytes", "", b"x" * 100_000):
                await ws.send(message)
                assert await ws.recv() == message
        async with connect(f"{base}/accept", subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "two"
            assert ws.response is not None and ws.response.headers["X-Chosen"] == "yes"
            assert await ws.recv() == "accepted"
    assert "before /echo" in log and "before /accept" in log


@CLASSES
async def test_a_route_that_refuses_or_fails_answers_as_quart_does(
    connection_class: type[ASGIWebsocketConnection], caplog: pytest.LogCaptureFixture
) -> None:
    app, log = plain_app(connection_class)
    async with served(app) as base:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{base}/forbidden"):
                pass
        assert refused.value.response.status_code == 403
        async with connect(f"{base}/raises") as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert "the handler failed" in caplog.text
    # handled as Quart handles it: a 500 response after accept, so a close 1000
    assert log[-2:] == ["after /raises", "teardown /raises NoneType"]


@CLASSES
async def test_a_handler_that_returns_while_the_client_sends_closes_normally(
    connection_class: type[ASGIWebsocketConnection],
) -> None:
    app, log = plain_app(connection_class)
    received: list[Any] = []

    async def on_received(message: Any) -> None:  # blinker's sender: the message
        received.append(message)

    websocket_received.connect(on_received)
    try:
        async with served(app) as base, connect(f"{base}/once") as ws:
            await ws.send("first")
            assert await ws.recv() == "first"
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # keeps sending after the handler returned
                    await ws.send("more")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    finally:
        websocket_received.disconnect(on_received)
    assert log.index("returned") < log.index("after /once") < log.index("teardown /once NoneType")
    assert received[0] == "first"  # the signal fired for each message received


@CLASSES
@pytest.mark.parametrize("waits_in", ["receive", "other work"])
async def test_a_client_leaving_cancels_the_handler_and_runs_its_teardown(
    connection_class: type[ASGIWebsocketConnection], waits_in: str
) -> None:
    app = Quart(__name__)
    app.asgi_websocket_class = connection_class
    started, cleaned_up = asyncio.Event(), asyncio.Event()
    torn_down: list[str] = []

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        torn_down.append(type(error).__name__)

    @app.websocket("/wait")
    async def wait() -> None:
        await websocket.accept()
        started.set()
        try:
            if waits_in == "receive":
                await websocket.receive()
            else:
                await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that awaits still runs
            cleaned_up.set()

    async with served(app) as base:
        ws = await connect(f"{base}/wait")
        await asyncio.wait_for(started.wait(), 10)
        await ws.close()
        await asyncio.wait_for(cleaned_up.wait(), 10)
    assert torn_down == ["CancelledError"]


async def test_a_server_stopping_cancels_a_lean_handler_and_runs_its_teardown() -> None:
    """Quart's class leaves its handler task running when the server cancels
    the connection; the lean class runs the handler in that task, so the
    handler is cancelled with it and its teardown runs."""
    app = Quart(__name__)
    QuartFlet(app)
    started, cancelled = asyncio.Event(), asyncio.Event()
    torn_down: list[str] = []

    @app.teardown_websocket
    async def teardown(error: BaseException | None) -> None:
        torn_down.append(type(error).__name__)

    @app.websocket("/hold")
    async def hold() -> None:
        await websocket.accept()
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with served(app) as base:
        ws = await connect(f"{base}/hold")
        await asyncio.wait_for(started.wait(), 10)
    # the server has stopped (graceful timeout 5 s), its connection cancelled
    assert cancelled.is_set() and torn_down == ["CancelledError"]
    with pytest.raises(ConnectionClosed):
        await ws.recv()
