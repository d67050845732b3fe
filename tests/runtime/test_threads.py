"""The bounded pool where sync user code runs (quart_flet.runtime.threads),
seen from outside: at most ``max_threads`` sync handlers run at once, the rest
wait their thread (the readiness probe counts them), and users whose
handlers are async never wait behind them; a task a sync handler starts on
the session's loop ends when its session does.

(Also about the pool: a blocked sync handler stalls no other session's sync
handlers, tests/runtime/test_handlers.py; each way sync code reaches the
session's loop, asyncio.create_task, get_running_loop, call_soon...,
tests/runtime/test_flet_semantics.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import flet as ft
from conftest import PATCH_CONTROL, SESSION_CRASHED, FletTestClient, browser, find_controls
from quart import Quart

from quart_flet import QuartFlet, SessionEndReason, flet_blueprint

BUSY = threading.Event()  # released at the end of each test
STARTED = threading.Semaphore(0)  # one release per blocking handler that started
SEEN: dict[str, Any] = {}


def not_crashed(message: Any) -> bool:
    assert message[0] != SESSION_CRASHED, message[1]
    return False


async def buttons(client: FletTestClient, *texts: str) -> list[int]:
    """Register; the ids of the buttons labelled ``texts``."""
    await client.register()
    first = texts[0]
    await client.receive_until(
        lambda m: not_crashed(m) or (m[0] == PATCH_CONTROL and find_controls(m[1], content=first))
    )
    return [int(find_controls(client.messages, content=text)[0]["_i"]) for text in texts]


async def pool_main(page: ft.Page) -> None:  # async: main itself takes no thread
    status = ft.Text("idle")

    def block(e: ft.Event[ft.Button]) -> None:  # sync: a pool thread until BUSY
        STARTED.release()
        BUSY.wait(30)
        status.value = "block done"

    async def ping(e: ft.Event[ft.Button]) -> None:
        status.value = "pong"
        status.update()

    page.add(status, ft.Button("block", on_click=block), ft.Button("ping", on_click=ping))


async def test_at_most_max_threads_sync_handlers_run_and_async_users_go_on() -> None:
    """max_threads=2 and three users' blocking sync handlers: two run, the
    third waits for a thread (readiness says busy 2, queued 1), while a
    fourth user's async handler answers; once released, all three finish."""
    BUSY.clear()
    app = Quart(__name__)
    QuartFlet(app, ready_path="/readyz")
    app.register_blueprint(flet_blueprint(pool_main, max_threads=2))
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        users = []
        for _ in range(4):
            client = FletTestClient(await stack.enter_async_context(test.websocket("/ws")))
            users.append((client, await buttons(client, "block", "ping")))
        blockers, (pinger, (_, ping)) = users[:3], users[3]
        try:
            for client, (block, _) in blockers:
                await client.click(block)
            for _ in range(2):
                assert await asyncio.to_thread(STARTED.acquire, True, 10)
            await pinger.click(ping)
            await pinger.patch_with("pong")  # the pool is full; the loop is not
            pool = (await (await test.get("/readyz")).get_json())["pool"]
            assert pool == {"threads": 2, "busy": 2, "queued": 1}
            assert not STARTED.acquire(blocking=False)  # the third has not started
        finally:
            BUSY.set()
        for client, _ in blockers:
            await client.patch_with("block done")
        pool = (await (await test.get("/readyz")).get_json())["pool"]
        assert pool == {"threads": 2, "busy": 0, "queued": 0}


async def forever() -> None:
    """A task that runs until it is cancelled."""
    SEEN["task thread"] = threading.current_thread().name
    try:
        await asyncio.Event().wait()
    finally:
        SEEN["ended"].set()


def task_main(page: ft.Page) -> None:
    status = ft.Text("idle")

    def start(e: ft.Event[ft.Button]) -> None:  # sync: in a pool thread
        SEEN["handler thread"] = threading.current_thread().name
        SEEN["loop"] = asyncio.get_running_loop()
        SEEN["task"] = asyncio.create_task(forever())
        status.value = "started"

    page.add(status, ft.Button("start", on_click=start))


async def test_a_task_a_sync_handler_starts_ends_when_its_session_expires() -> None:
    """The task a sync handler starts through its running loop runs on the
    server's loop, outlives the handler and the disconnect (the session is
    held), and is cancelled when the session expires, with the end hook."""
    SEEN.clear()
    SEEN["ended"] = asyncio.Event()
    ends: list[SessionEndReason] = []
    ended_hook = asyncio.Event()

    async def on_end(page: ft.Page, reason: SessionEndReason) -> None:
        ends.append(reason)
        ended_hook.set()

    app = Quart(__name__)
    app.register_blueprint(
        flet_blueprint(task_main, on_session_end=on_end, session_timeout_seconds=0.5)
    )
    async with app.test_app() as test_app:
        async with browser(test_app).websocket("/ws") as ws:
            client = FletTestClient(ws)
            (start,) = await buttons(client, "start")
            await client.click(start)
            await client.patch_with("started")
        task = SEEN["task"]
        assert SEEN["handler thread"].startswith("quart_flet")  # ran in the pool
        assert isinstance(task, asyncio.Task) and not task.done()  # held: still running
        await asyncio.wait_for(ended_hook.wait(), 10)
        await asyncio.wait_for(SEEN["ended"].wait(), 10)
        assert ends == [SessionEndReason.EXPIRED]
        assert task.cancelled()
    assert SEEN["task thread"] == threading.current_thread().name  # the loop's
    assert SEEN["loop"].time() > 0  # the session's loop, usable from the thread
