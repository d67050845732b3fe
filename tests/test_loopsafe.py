"""Flet APIs that assume the event loop's thread work from sync handlers,
which quart-flet runs on its thread pool (quart_flet.loopsafe):
page.navigate() and page.logout() (asyncio.create_task inside), a
components app (page.render() in a sync main, use_state setters in sync
handlers), and page events flet fires itself, whose sync handlers run on the
pool too. Flet's own classes are left alone."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import flet as ft
import pytest
from conftest import INVOKE_METHOD, SESSION_CRASHED, FletTestClient, encode, find_controls
from flet.controls.base_control import BaseControl
from flet.messaging.session import Session
from quart import Quart

from quart_flet import flet_blueprint

THREADS: list[str] = []


def make_app(main: Any) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main))
    return app


def not_crashed(message: Any) -> bool:
    assert message[0] != SESSION_CRASHED, message[1]
    return False


async def first_patch(client: FletTestClient, control: str = "Button") -> Any:
    await client.register()
    return await client.receive_until(
        lambda m: not_crashed(m) or (m[0] == 2 and find_controls(m[1], _c=control))
    )


def sync_navigate_main(page: ft.Page) -> None:
    def visit_store(e: ft.Event[ft.Button]) -> None:
        THREADS.append(threading.current_thread().name)
        page.navigate("/store", tab="1")  # flet: "use this in synchronous callbacks"

    page.add(ft.Button("store", on_click=visit_store))


async def test_page_navigate_from_a_sync_handler_reaches_the_client() -> None:
    THREADS.clear()
    app = make_app(sync_navigate_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        await client.click(int(find_controls(patch, _c="Button")[0]["_i"]))
        call = await client.receive_until(
            lambda m: not_crashed(m) or (m[0] == INVOKE_METHOD and m[1]["name"] == "push_route")
        )
        assert call[1]["args"] == {"route": "/store?tab=1"}
        await ws.send(
            encode(
                INVOKE_METHOD,
                {"control_id": call[1]["control_id"], "call_id": call[1]["call_id"]},
            )
        )
    assert len(THREADS) == 1 and THREADS[0].startswith("quart_flet"), THREADS


def sync_logout_main(page: ft.Page) -> None:
    status = ft.Text("signed in")

    def on_logout(e: ft.ControlEvent) -> None:  # flet fires this one itself
        THREADS.append(threading.current_thread().name)
        status.value = "signed out"
        status.update()

    page.on_logout = on_logout
    page.add(status, ft.Button("logout", on_click=lambda e: page.logout()))


async def test_page_logout_from_a_sync_handler_fires_a_sync_on_logout_on_the_pool() -> None:
    THREADS.clear()
    app = make_app(sync_logout_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        await client.click(int(find_controls(patch, _c="Button")[0]["_i"]))
        await client.receive_until(
            lambda m: not_crashed(m) or (m[0] == 2 and "signed out" in str(m))
        )
    assert len(THREADS) == 1 and THREADS[0].startswith("quart_flet"), THREADS


@ft.component
def Counter() -> ft.Control:
    count, set_count = ft.use_state(0)

    def add(e: ft.Event[ft.Button]) -> None:  # a sync handler: runs in a worker thread
        set_count(count + 1)

    return ft.Column([ft.Text(f"count {count}"), ft.Button("add", on_click=add)])


def components_main(page: ft.Page) -> None:  # sync main: a worker thread too
    page.render(Counter)


async def test_a_components_app_with_sync_main_and_handlers_works() -> None:
    app = make_app(components_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        assert "count 0" in str(patch)
        button = int(find_controls(patch, _c="Button")[0]["_i"])
        for expected in range(1, 6):
            await client.click(button)
            await client.receive_until(
                lambda m, n=expected: not_crashed(m) or (m[0] == 2 and f"count {n}" in str(m))
            )


async def test_flet_classes_are_left_alone() -> None:
    app = make_app(sync_navigate_main)
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        ws = await stack.enter_async_context(test_app.test_client().websocket("/ws"))
        await first_patch(FletTestClient(ws))
        (session,) = [entry.session for entry in app.extensions["quart_flet"].sessions.values()]
        assert session.page.navigate is not ft.Page.navigate  # bound on this page only
    for cls, name in [
        (ft.Page, "navigate"),
        (ft.Page, "logout"),
        (Session, "schedule_update"),
        (Session, "schedule_effect"),
        (Session, "start_updates_scheduler"),
    ]:
        assert getattr(cls, name).__module__.startswith("flet."), (cls, name)
    assert BaseControl._trigger_event.__module__.startswith("flet.")


def create_task_main(page: ft.Page) -> None:
    def on_click(e: ft.Event[ft.Button]) -> None:
        # what asyncio.create_task(page.push_route(...)) does first (without
        # leaving a never-awaited coroutine behind in the test)
        asyncio.get_running_loop()

    page.add(ft.Button("go", on_click=on_click))


async def test_asyncio_create_task_in_a_sync_handler_crashes_with_a_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(create_task_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        await client.click(int(find_controls(patch, _c="Button")[0]["_i"]))
        crash = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
    assert "no running event loop" in crash[1]["message"]
    assert "page.run_task(" in crash[1]["message"]
    assert "page.run_task(" in caplog.text
