"""Issue 3: sync handlers leave the event loop on one bounded pool per app;
updates from threads are thread-safe and ordered; flet itself is left alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import flet as ft
import pytest
from conftest import SESSION_CRASHED, FletTestClient, find_controls
from flet.controls.base_control import BaseControl
from flet.messaging.connection import Connection
from flet.messaging.session import Session
from quart import Quart

from quart_flet import OptionError, flet_blueprint

ORIGINAL_TRIGGER = BaseControl._trigger_event
SLOW_STARTED = threading.Event()


def make_app(main: Any, **opts: Any) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, **opts))
    return app


async def first_render(client: FletTestClient) -> Any:
    """Register and return the first patch that carries the page's buttons."""
    await client.register()
    return await client.receive_until(lambda m: m[0] == 2 and find_controls(m[1], _c="Button"))


def button_id(patch: Any, text: str) -> int:
    return int(find_controls(patch, _c="Button", content=text)[0]["_i"])


def blocking_main(page: ft.Page) -> None:
    """A sync main with one blocking and one quick sync handler."""
    result = ft.Text("idle")
    clicks = ft.Text("0")

    def slow(e: ft.Event[ft.Button]) -> None:
        SLOW_STARTED.set()
        time.sleep(1)
        result.value = "slow done"

    def quick(e: ft.Event[ft.Button]) -> None:
        clicks.value = str(int(clicks.value or "0") + 1)

    page.add(result, clicks, ft.Button("slow", on_click=slow), ft.Button("quick", on_click=quick))


async def test_one_blocking_sync_handler_does_not_stall_other_sessions() -> None:
    SLOW_STARTED.clear()
    app = make_app(blocking_main, max_threads=32)
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        slow_client = FletTestClient(await stack.enter_async_context(test.websocket("/ws")))
        slow_target = button_id(await first_render(slow_client), "slow")
        others = []
        for _ in range(20):
            client = FletTestClient(await stack.enter_async_context(test.websocket("/ws")))
            others.append((client, button_id(await first_render(client), "quick")))

        await slow_client.click(slow_target)
        assert await asyncio.to_thread(SLOW_STARTED.wait, 5)
        started = time.monotonic()

        async def click_twice(client: FletTestClient, target: int) -> list[float]:
            times = []
            for expected in ("1", "2"):
                begin = time.monotonic()
                await client.click(target)
                await client.patch_with(expected)
                times.append(time.monotonic() - begin)
            return times

        round_trips = await asyncio.gather(*(click_twice(c, t) for c, t in others))
        others_done = time.monotonic() - started
        await slow_client.patch_with("slow done", timeout=5)
    worst = max(max(times) for times in round_trips)
    assert others_done < 0.9, f"40 clicks took {others_done:.3f} s behind a 1 s handler"
    assert worst < 0.5, worst


def threads_main(page: ft.Page) -> None:
    texts = [ft.Text("-") for _ in range(8)]
    page.add(*texts)

    def hammer(text: ft.Text) -> None:
        for value in range(500):
            text.value = str(value)
            text.update()

    for text in texts:
        page.run_thread(hammer, text)


@pytest.mark.parametrize("attempt", range(3))
async def test_updates_from_eight_threads_all_arrive_in_order(
    attempt: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    app = make_app(threads_main)
    seen: dict[int, list[str]] = {}
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            await client.register()
            while sum(len(values) for values in seen.values()) < 8 * 500:
                message = await client.receive()
                if message[0] != 2:
                    continue
                for op in message[1]["patch"][1:]:
                    if len(op) == 4 and op[2] == "value":  # [op, node, prop, value]
                        seen.setdefault(message[1]["id"], []).append(op[3])
    assert len(seen) == 8, list(seen)
    for control_id, values in seen.items():
        assert values == [str(v) for v in range(500)], (control_id, values[:5])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def crashing_main(page: ft.Page) -> None:
    def boom(e: ft.Event[ft.Button]) -> None:
        raise ValueError("sync handler exploded")

    page.add(ft.Button("boom", on_click=boom), ft.Button("noop", on_click=lambda e: None))


async def test_a_raising_sync_handler_crashes_only_its_own_session() -> None:
    app = make_app(crashing_main)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/ws") as ws1, test.websocket("/ws") as ws2:
            victim, bystander = FletTestClient(ws1), FletTestClient(ws2)
            patch = await first_render(victim)
            bystander_patch = await first_render(bystander)
            await victim.click(button_id(patch, "boom"))
            crashed = await victim.receive_until(lambda m: m[0] == SESSION_CRASHED)
            assert "sync handler exploded" in crashed[1]["message"]
            # the bystander still works and never saw the crash
            await bystander.click(button_id(bystander_patch, "noop"))
            await bystander.click(button_id(bystander_patch, "boom"))
            await bystander.receive_until(lambda m: m[0] == SESSION_CRASHED)
            assert not [m for m in bystander.messages[:-1] if m[0] == SESSION_CRASHED]


def context_main(page: ft.Page) -> None:
    report = ft.Text("?")

    def who(e: ft.Event[ft.Button]) -> None:
        current = ft.context.page
        report.value = f"{threading.current_thread().name}|{current.session.id}"

    page.add(report, ft.Button("who", on_click=who))


async def test_ft_context_page_in_a_sync_handler_is_that_sessions_page() -> None:
    app = make_app(context_main)
    async with app.test_app() as test_app:
        test = test_app.test_client()
        async with test.websocket("/ws") as ws1, test.websocket("/ws") as ws2:
            clients = [FletTestClient(ws1), FletTestClient(ws2)]
            for client in clients:
                patch = await first_render(client)
                await client.click(button_id(patch, "who"))
            for client in clients:
                reply = await client.receive_until(
                    lambda m: m[0] == 2 and "|" in str(m[1]["patch"])
                )
                value = next(op[3] for op in reply[1]["patch"][1:] if op[2] == "value")
                thread, session_id = value.split("|")
                assert thread.startswith("quart_flet"), thread  # ran on our pool
                assert session_id == client.session_id


def generator_main(page: ft.Page) -> None:
    status = ft.Text("start")

    def steps(e: ft.Event[ft.Button]) -> Any:
        for label in ("one", "two", "three"):
            status.value = label
            yield

    page.add(status, ft.Button("go", on_click=steps))


async def test_a_sync_generator_handler_sends_an_update_per_yield() -> None:
    app = make_app(generator_main)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            await client.click(button_id(await first_render(client), "go"))
            for label in ("one", "two", "three"):
                await client.patch_with(label)


def saturating_main(page: ft.Page) -> None:
    done = ft.Text("0")
    lock = threading.Lock()

    def work(e: ft.Event[ft.Button]) -> None:
        time.sleep(0.2)
        with lock:  # handlers run in parallel threads
            done.value = str(int(done.value or "0") + 1)
            done.update()

    page.add(done, ft.Button("work", on_click=work))


async def test_a_saturated_pool_queues_work_and_drops_none() -> None:
    app = make_app(saturating_main, max_threads=2)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            target = button_id(await first_render(client), "work")
            for _ in range(6):  # 6 x 0.2 s on 2 threads: 3 rounds of queueing
                await client.click(target)
            for expected in ("1", "2", "3", "4", "5", "6"):
                await client.patch_with(expected, timeout=10)


async def test_pool_size_comes_from_the_option_or_its_env_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(context_main, max_threads=3)
    async with app.test_app():
        pool = app.extensions["quart_flet"].executor
        assert pool._max_workers == 3
    assert pool._shutdown, "the pool is shut down after serving"

    monkeypatch.setenv("FLET_MAX_THREADS", "5")
    app = make_app(context_main, max_threads=3)
    async with app.test_app():
        assert app.extensions["quart_flet"].executor._max_workers == 5

    monkeypatch.setenv("FLET_MAX_THREADS", "zero")
    with pytest.raises(OptionError, match="max_threads"):
        make_app(context_main)


async def test_sync_quart_views_keep_quarts_own_executor() -> None:
    """The Flet pool is for Flet user code: a pool busy with handlers must not
    delay the app's own sync views (nor Quart's file bodies)."""
    app = make_app(context_main, max_threads=2)

    @app.get("/thread")
    def thread_name() -> str:  # a sync Quart view goes through run_sync
        return threading.current_thread().name

    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/thread")
        name = await response.get_data(as_text=True)
        assert name and not name.startswith("quart_flet"), name


class NullConnection(Connection):  # type: ignore[misc]
    def send_message(self, message: Any) -> None:
        pass


async def test_flet_itself_is_left_alone_for_other_hosts() -> None:
    """Another Flet host in the process still runs sync handlers inline, as
    flet does: we never patch flet for the whole process."""
    app = make_app(context_main)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            await first_render(FletTestClient(ws))
    assert BaseControl._trigger_event is ORIGINAL_TRIGGER

    from flet.pubsub.pubsub_hub import PubSubHub

    connection = NullConnection()
    connection.pubsubhub = PubSubHub(loop=asyncio.get_running_loop())
    session = Session(connection)
    seen: list[str] = []
    button = ft.Button("x", on_click=lambda e: seen.append(threading.current_thread().name))
    session.page.add(button)
    await session.dispatch_event(button._i, "click", None)
    assert seen == [threading.current_thread().name]  # inline, as in plain flet


def typed_events_main(page: ft.Page) -> None:
    report = ft.Text("-")

    def tapped(e: ft.TapEvent[ft.GestureDetector]) -> None:  # sync: on the pool
        assert isinstance(e, ft.TapEvent)
        report.value = f"tap {e.local_position.x:g},{e.local_position.y:g}"

    async def container_tapped(e: ft.TapEvent[ft.Container]) -> None:  # async
        report.value = f"container {type(e).__name__} {e.local_position.x:g}"

    class Counter:
        """An object with an async __call__ and no parameters."""

        calls = 0

        async def __call__(self) -> None:
            Counter.calls += 1
            report.value = f"object {Counter.calls}"

    page.add(
        report,
        ft.GestureDetector(content=ft.Text("g"), on_tap_down=tapped),
        ft.Container(content=ft.Text("c"), on_tap_down=container_tapped),
        ft.Button("obj", on_click=Counter()),
    )


async def test_typed_events_and_callable_objects_reach_their_handlers() -> None:
    """Event types are cached per control class: each class gets its own."""
    app = make_app(typed_events_main)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            client = FletTestClient(ws)
            patch = await first_render(client)
            detector = find_controls(patch, _c="GestureDetector")[0]["_i"]
            container = find_controls(patch, _c="Container")[0]["_i"]
            tap = {"k": "mouse", "l": {"x": 3, "y": 4}, "g": {"x": 5, "y": 6}}
            for _ in range(2):  # the second time from the caches
                await client.click(detector, "tap_down", tap)
                await client.patch_with("tap 3,4")
                await client.click(container, "tap_down", {**tap, "l": {"x": 7, "y": 1}})
                await client.patch_with("container TapEvent 7")
            target = button_id(patch, "obj")
            await client.click(target)
            await client.patch_with("object 1")
            await client.click(target)
            await client.patch_with("object 2")
