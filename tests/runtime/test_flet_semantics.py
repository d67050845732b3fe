"""Flet apps written for flet's own server run the same here, though our sync
code runs in threads (issue 11): a sync handler's ``asyncio.create_task``,
``asyncio.get_running_loop()`` in a sync ``main``/``before_main`` or in a
class used as ``main``; a client message over the size limit; and a pool
busy with handlers delaying nothing else (the order of a session's events is
in tests/runtime/test_turns.py). Minimal apps of our own, at the protocol
layer, against the real flet Session."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import flet as ft
import pytest
from conftest import (
    INVOKE_METHOD,
    PATCH_CONTROL,
    SESSION_CRASHED,
    UPDATE_CONTROL_PROPS,
    FletTestClient,
    encode,
    find_controls,
)
from quart import Quart

from quart_flet import flet_blueprint

SEEN: dict[str, Any] = {}
BUSY = threading.Event()  # released at the end of tests that block the pool


def make_app(main: Any, **opts: Any) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, **opts))
    return app


def not_crashed(message: Any) -> bool:
    assert message[0] != SESSION_CRASHED, message[1]
    return False


async def button(client: FletTestClient, text: str) -> int:
    """Register and return the id of the button labelled ``text``."""
    await client.register()
    patch = await client.receive_until(
        lambda m: not_crashed(m) or (m[0] == PATCH_CONTROL and find_controls(m[1], content=text))
    )
    return int(find_controls(patch, content=text)[0]["_i"])


def sessions(app: Quart) -> list[Any]:
    return [entry.session for entry in app.extensions["quart_flet"].sessions.values()]


# ---- 1. asyncio.create_task and the running loop in sync code ---------------


def create_task_main(how: str) -> Any:
    def main(page: ft.Page) -> None:
        status = ft.Text("idle")

        async def later(label: str) -> None:
            await asyncio.sleep(0)
            SEEN["task thread"] = threading.current_thread().name
            SEEN["task page"] = ft.context.page is page  # the caller's context
            status.value = label
            page.update()

        def go(e: ft.Event[ft.Button]) -> None:
            SEEN["handler thread"] = threading.current_thread().name
            if how == "asyncio.create_task":
                SEEN["task"] = asyncio.create_task(later("ran"))
            elif how == "get_running_loop":
                SEEN["task"] = asyncio.get_running_loop().create_task(later("ran"))
            elif how == "get_event_loop":
                SEEN["task"] = asyncio.get_event_loop().create_task(later("ran"))
            elif how == "ensure_future":
                SEEN["task"] = asyncio.ensure_future(later("ran"))
            else:  # call_soon + call_later from the thread
                loop = asyncio.get_running_loop()
                loop.call_soon(lambda: loop.call_later(0.01, loop.create_task, later("ran")))

        page.add(status, ft.Button("go", on_click=go))

    return main


@pytest.mark.parametrize(
    "how",
    ["asyncio.create_task", "get_running_loop", "get_event_loop", "ensure_future", "call_soon"],
)
async def test_a_sync_handler_starts_a_task_on_the_sessions_loop(how: str) -> None:
    """flet's routing pattern: ``lambda e: asyncio.create_task(page.push_route(..))``."""
    SEEN.clear()
    app = make_app(create_task_main(how))
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.click(await button(client, "go"))
        await client.receive_until(lambda m: not_crashed(m) or "ran" in str(m))
    assert SEEN["handler thread"].startswith("quart_flet")  # still off the loop
    assert SEEN["task thread"] == threading.current_thread().name  # the loop's
    assert SEEN["task page"] is True
    if "task" in SEEN:
        assert isinstance(SEEN["task"], asyncio.Task)


def push_route_main(page: ft.Page) -> None:
    def route_change() -> None:
        page.views.clear()
        page.views.append(
            ft.View(
                route="/",
                controls=[
                    ft.Button("store", on_click=lambda: asyncio.create_task(page.push_route("/s")))
                ],
            )
        )
        if page.route == "/s":
            page.views.append(ft.View(route="/s", controls=[ft.Text("in the store")]))
        page.update()

    page.on_route_change = route_change
    route_change()


async def test_push_route_from_a_sync_lambda_navigates() -> None:
    app = make_app(push_route_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.click(await button(client, "store"))
        call = await client.receive_until(
            lambda m: not_crashed(m) or (m[0] == INVOKE_METHOD and m[1]["name"] == "push_route")
        )
        assert call[1]["args"] == {"route": "/s"}
        answer = {"control_id": call[1]["control_id"], "call_id": call[1]["call_id"]}
        await ws.send(encode(INVOKE_METHOD, answer))
        # the browser has changed its address: it tells the page
        page_id = call[1]["control_id"]
        await ws.send(encode(UPDATE_CONTROL_PROPS, {"id": page_id, "props": {"route": "/s"}}))
        await client.click(page_id, "route_change", {"route": "/s"})
        await client.receive_until(lambda m: not_crashed(m) or "in the store" in str(m))


class ProgressApp:
    """A class used as ``main`` that keeps the running loop, as flet's cookbook
    does, and feeds progress from a worker thread both ways it shows."""

    def __init__(self, page: ft.Page) -> None:
        self.page = page
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.consumer = asyncio.create_task(self.consume())
        self.text = ft.Text("0")
        self.page.add(self.text, ft.Button("start", on_click=self.start))

    async def consume(self) -> None:
        while True:
            self.text.value = f"queued {await self.queue.get()}"
            self.page.update()

    async def show(self, step: int) -> None:
        self.text.value = f"step {step}"
        self.page.update()

    def work(self) -> None:  # in a thread of asyncio.to_thread
        for step in (1, 2, 3):
            asyncio.run_coroutine_threadsafe(self.show(step), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.queue.put(4), self.loop).result(10)

    async def start(self, e: ft.Event[ft.Button]) -> None:
        await asyncio.to_thread(self.work)


async def test_a_class_as_main_keeps_the_running_loop() -> None:
    app = make_app(ProgressApp)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.click(await button(client, "start"))
        for text in ("step 1", "step 2", "step 3", "queued 4"):
            await client.receive_until(lambda m, t=text: not_crashed(m) or t in str(m))


def loop_in_before_main(page: ft.Page) -> None:
    SEEN["before_main loop"] = asyncio.get_running_loop()


async def test_before_main_sees_the_running_loop() -> None:
    SEEN.clear()
    app = make_app(lambda page: page.add(ft.Button("b")), before_main=loop_in_before_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        reply = await client.register()
        assert reply[1]["error"] == ""
    assert isinstance(SEEN["before_main loop"], asyncio.AbstractEventLoop)


def failing_task_main(page: ft.Page) -> None:
    async def fail() -> None:
        raise ValueError("the task failed")

    page.add(ft.Button("go", on_click=lambda e: asyncio.create_task(fail())))


async def test_an_error_in_such_a_task_is_reported_to_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(failing_task_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.click(await button(client, "go"))
        crash = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
    assert "the task failed" in crash[1]["message"]
    assert "Unhandled error in task failing_task_main.<locals>.fail" in caplog.text


def forever_main(page: ft.Page) -> None:
    async def tick() -> None:
        try:
            while True:
                await asyncio.sleep(0.01)
        finally:
            SEEN["ended"].set()

    SEEN["task"] = asyncio.create_task(tick())
    page.add(ft.Button("b"))


async def test_tasks_of_sync_code_end_with_the_session() -> None:
    SEEN.clear()
    SEEN["ended"] = asyncio.Event()
    app = make_app(forever_main)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            await button(FletTestClient(ws), "b")
        registry = app.extensions["quart_flet"]
        assert not SEEN["task"].done()  # a held session keeps its tasks
        for key in list(registry.sessions):
            registry.evict(key)  # the session ends (as at its timeout)
        await asyncio.wait_for(SEEN["ended"].wait(), 10)
    assert SEEN["task"].cancelled()


def loop_bound_main(page: ft.Page) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    status = ft.Text("idle")

    async def consume() -> None:
        status.value = await queue.get()
        page.update()

    def put(e: ft.Event[ft.Button]) -> None:
        SEEN["put thread"] = threading.current_thread().name
        queue.put_nowait("got it")

    page.run_task(consume)
    page.add(status, ft.Button("put", on_click=put))


async def test_a_handler_touching_a_loop_bound_object_runs_on_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Queue.put_nowait() wakes its getter through the loop's non-thread-safe
    call_soon: such a handler runs on the loop, as in flet, with one warning."""
    SEEN.clear()
    app = make_app(loop_bound_main)
    async with app.test_app() as test_app:
        for _ in range(2):
            async with test_app.test_client().websocket("/ws") as ws:
                client = FletTestClient(ws)
                await client.click(await button(client, "put"))
                await client.receive_until(lambda m: not_crashed(m) or "got it" in str(m))
            assert SEEN["put thread"] == threading.current_thread().name
    warnings = [r for r in caplog.records if "loop_bound_main.<locals>.put" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "put_nowait" in warnings[0].getMessage()


def thread_safe_queue_main(page: ft.Page) -> None:
    import queue

    inbox: queue.Queue[str] = queue.Queue()
    status = ft.Text("idle")

    def put(e: ft.Event[ft.Button]) -> None:
        SEEN["put thread"] = threading.current_thread().name
        inbox.put_nowait("x")
        status.value = "put done"

    page.add(status, ft.Button("put", on_click=put))


async def test_a_thread_safe_queue_stays_in_the_pool() -> None:
    SEEN.clear()
    app = make_app(thread_safe_queue_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.click(await button(client, "put"))
        await client.receive_until(lambda m: not_crashed(m) or "put done" in str(m))
    assert SEEN["put thread"].startswith("quart_flet")


# ---- 2. a client message over the size limit ------------------------------


def picker_main(page: ft.Page) -> None:
    status = ft.Text("idle")
    picker = ft.FilePicker()

    async def pick(e: ft.Event[ft.Button]) -> None:
        try:
            await picker.pick_files(with_data=True)
        except Exception as error:
            status.value = f"pick failed: {error}"
            page.update()

    async def ping(e: ft.Event[ft.Button]) -> None:
        status.value = "still alive"
        page.update()

    page.add(status, ft.Button("pick", on_click=pick), ft.Button("ping", on_click=ping))


async def test_an_oversized_answer_fails_its_call_and_the_page_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = 64 * 1024
    app = make_app(picker_main, max_message_size=limit)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.register()
        patch = await client.receive_until(
            lambda m: (
                not_crashed(m) or (m[0] == PATCH_CONTROL and find_controls(m[1], content="ping"))
            )
        )
        pick, ping = (int(find_controls(patch, content=t)[0]["_i"]) for t in ("pick", "ping"))
        await client.click(pick)
        call = await client.receive_until(
            lambda m: not_crashed(m) or (m[0] == INVOKE_METHOD and m[1]["name"] == "pick_files")
        )
        files = [{"name": "big.bin", "size": limit, "bytes": bytes(limit + 1)}]
        answer = {"control_id": call[1]["control_id"], "call_id": call[1]["call_id"]}
        await ws.send(encode(INVOKE_METHOD, {**answer, "result": files}))
        failed = await client.receive_until(lambda m: not_crashed(m) or "pick failed" in str(m))
        assert "exceeds max_message_size (65536 bytes)" in str(failed)
        await client.click(ping)  # same connection, still served
        await client.receive_until(lambda m: not_crashed(m) or "still alive" in str(m))
    assert "exceeds max_message_size" in caplog.text


async def test_the_default_message_limit_is_flets_16_mib() -> None:
    app = make_app(picker_main)
    options = app.extensions["quart_flet"].mounts["flet"].options
    assert options.max_message_size == 16 * 1024 * 1024


# ---- 3. a busy pool delays nothing but user code ---------------------------


async def busy_main(page: ft.Page) -> None:
    def block(e: ft.Event[ft.Button]) -> None:  # holds one of the pool's threads
        SEEN["blocked"]()
        BUSY.wait(30)

    page.add(ft.Text(page.get_upload_url("busy.txt", 60)), ft.Button("block", on_click=block))


async def other_main(page: ft.Page) -> None:
    page.add(ft.Text("other app"))


async def test_a_busy_pool_delays_no_page_load(tmp_path: Any) -> None:
    """Both threads of the pool asleep in handlers: the index, the client's
    files, an upload and a new session of an async app are all served while
    they sleep, and a sync after_serving registered after the blueprint runs."""
    SEEN.clear()
    BUSY.clear()
    app = Quart(__name__)
    options = {"max_threads": 2, "upload_dir": tmp_path, "secret_key": "k"}
    app.register_blueprint(flet_blueprint(busy_main, **options))
    app.register_blueprint(flet_blueprint(other_main, name="other"), url_prefix="/other")
    app.after_serving(lambda: SEEN.setdefault("after_serving", threading.current_thread().name))
    loop = asyncio.get_running_loop()
    both_blocked = asyncio.Event()
    count = [0]

    def blocked() -> None:
        count[0] += 1
        if count[0] == 2:
            loop.call_soon_threadsafe(both_blocked.set)

    SEEN["blocked"] = blocked
    took: dict[str, float] = {}
    async with app.test_app() as test_app:
        client_ = test_app.test_client()
        try:
            async with client_.websocket("/ws") as one, client_.websocket("/ws") as two:
                urls = []
                for ws in (one, two):
                    client = FletTestClient(ws)
                    await client.register()
                    patch = await client.receive_until(
                        lambda m: not_crashed(m) or find_controls(m, content="block")
                    )
                    urls += [c["value"] for c in find_controls(patch, _c="Text")]
                    await client.click(int(find_controls(patch, content="block")[0]["_i"]))
                await asyncio.wait_for(both_blocked.wait(), 10)

                start = time.perf_counter()
                response = await client_.get("/")
                assert response.status_code == 200
                took["index"] = time.perf_counter() - start

                start = time.perf_counter()
                response = await client_.get("/flutter_bootstrap.js")
                assert response.status_code == 200 and await response.get_data()
                took["client file"] = time.perf_counter() - start

                start = time.perf_counter()
                response = await client_.put(urls[0], data=b"hello")
                assert response.status_code == 200, await response.get_data()
                took["upload"] = time.perf_counter() - start

                start = time.perf_counter()
                async with client_.websocket("/other/ws") as ws:
                    other = FletTestClient(ws)
                    await other.register()
                    await other.receive_until(lambda m: not_crashed(m) or "other app" in str(m))
                took["new session"] = time.perf_counter() - start
                assert not BUSY.is_set() and count[0] == 2  # still blocked throughout
        finally:
            BUSY.set()
    assert (tmp_path / "busy.txt").read_bytes() == b"hello"
    assert "after_serving" in SEEN
    # generous for a loaded CI machine: queued behind the handlers, these
    # would wait for the 30 s BUSY timeout instead
    assert max(took.values()) < 1.0, took
