"""Flet APIs that assume the event loop's thread work from sync handlers,
which quart-flet runs on its thread pool (quart_flet.runtime.loopsafe):
page.navigate() and page.logout() (asyncio.create_task inside), a
components app (page.render() in a sync main, use_state setters in sync
handlers), and page events flet fires itself, whose sync handlers run on the
pool too. Flet's own classes are left alone."""

from __future__ import annotations

import asyncio
import collections
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


async def click_first_button(client: FletTestClient) -> Any:
    """Register, wait for the first render, click its first button."""
    patch = await first_patch(client)
    await client.click(int(find_controls(patch, _c="Button")[0]["_i"]))
    return patch


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
        await click_first_button(client)
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
        await click_first_button(client)
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
        assert type(session.page) is not ft.Page  # our subclass, on this page only
    for cls, name in [
        (ft.Page, "navigate"),
        (ft.Page, "logout"),
        (Session, "schedule_update"),
        (Session, "schedule_effect"),
        (Session, "start_updates_scheduler"),
    ]:
        assert getattr(cls, name).__module__.startswith("flet."), (cls, name)
    assert BaseControl._trigger_event.__module__.startswith("flet.")


N_TEXTS = 150


def texts_in(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("_c") == "Text":
            out.append(node.get("value"))
        for value in node.values():
            texts_in(value, out)
    elif isinstance(node, (list, tuple)):
        for value in node:
            texts_in(value, out)


def make_concurrent_main(other_is_async: bool) -> Any:
    active = {"now": 0, "max": 0}
    guard = threading.Lock()

    def main(page: ft.Page) -> None:
        column_a, column_b = ft.Column(), ft.Column()

        def adder(column: ft.Column, tag: str) -> Any:
            def on_click(e: ft.Event[ft.Button]) -> None:
                with guard:
                    active["now"] += 1
                    active["max"] = max(active["max"], active["now"])
                try:
                    for i in range(N_TEXTS):
                        column.controls.append(ft.Text(f"{tag}{i}"))
                        page.update()
                finally:
                    with guard:
                        active["now"] -= 1

            return on_click

        async def add_async(e: ft.Event[ft.Button]) -> None:
            for i in range(N_TEXTS):
                column_b.controls.append(ft.Text(f"b{i}"))
                page.update()
                await asyncio.sleep(0)

        other = add_async if other_is_async else adder(column_b, "b")
        page.add(
            ft.Button("a", on_click=adder(column_a, "a")),
            ft.Button("b", on_click=other),
            column_a,
            column_b,
        )

    main.active = active  # type: ignore[attr-defined]
    return main


@pytest.mark.parametrize("other_is_async", [False, True], ids=["sync+sync", "sync+async"])
async def test_two_handlers_of_one_session_at_once_lose_nothing(other_is_async: bool) -> None:
    """A double click, or a click while another handler runs: flet's diff is
    not thread-safe, so a session's sync handlers take turns, a thread's diff
    runs on the loop, and the loop's diffs wait for the session's thread.
    (Before: crashes in flet's diff, controls sent twice, some never.)"""
    main = make_concurrent_main(other_is_async)
    app = make_app(main)
    seen: list[str] = []
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        a, b = (int(c["_i"]) for c in find_controls(patch, _c="Button"))
        await client.click(a)
        await client.click(b)
        last = {f"a{N_TEXTS - 1}", f"b{N_TEXTS - 1}"}

        def collect(message: Any) -> bool:
            not_crashed(message)
            if message[0] == 2:
                texts_in(message[1], seen)
            return last <= set(seen)

        await client.receive_until(collect, timeout=60)
    counts = collections.Counter(seen)
    expected = {f"{tag}{i}" for tag in "ab" for i in range(N_TEXTS)}
    assert set(counts) >= expected, sorted(expected - set(counts))[:10]
    assert not [text for text, n in counts.items() if n > 1 and text in expected]
    assert main.active["max"] == 1


def raw_image_main(page: ft.Page) -> None:
    status = ft.Text("idle")

    def after(e: ft.Event[ft.Button]) -> None:
        status.value = "after"

    page.add(ft.RawImage(width=10, height=10), status, ft.Button("x", on_click=after))


async def test_flets_own_sync_handlers_run_on_the_loop_as_in_flet() -> None:
    """RawImage sets its own sync data-channel handler, which needs the loop
    (before: it ran on the pool and crashed the session)."""
    app = make_app(raw_image_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        (image,) = find_controls(patch, _c="RawImage")
        await client.click(
            int(image["_i"]), "data_channel_open", {"channel_name": "", "channel_id": 7}
        )
        await client.click(int(find_controls(patch, _c="Button")[0]["_i"]))
        await client.receive_until(lambda m: not_crashed(m) or "after" in str(m))
        (session,) = [e.session for e in app.extensions["quart_flet"].sessions.values()]
        raw = next(c for c in session.index.values() if isinstance(c, ft.RawImage))
        assert raw._ready.is_set()


RESULTS: dict[str, Any] = {}


def service_main(page: ft.Page) -> None:
    status = ft.Text("idle")

    def via_asyncio_run(e: ft.Event[ft.Button]) -> None:
        # a second loop, in a thread (the bound: a regression fails instead of hanging)
        RESULTS["asyncio.run"] = asyncio.run(asyncio.wait_for(ft.Clipboard().get(), 10))
        status.value = "asyncio.run done"

    def via_run_task(e: ft.Event[ft.Button]) -> None:
        RESULTS["run_task"] = page.run_task(ft.Clipboard().get).result(timeout=10)
        status.value = "run_task done"

    page.add(
        status,
        ft.Button("run", on_click=via_asyncio_run),
        ft.Button("task", on_click=via_run_task),
    )


async def answer_invokes(client: FletTestClient, until: str) -> None:
    """Play the browser: answer each method call, until ``until`` shows."""

    while True:
        message = await client.receive(10)
        not_crashed(message)
        if message[0] == INVOKE_METHOD:
            body = message[1]
            answer = {"control_id": body["control_id"], "call_id": body["call_id"]}
            await client.ws.send(encode(INVOKE_METHOD, {**answer, "result": "CLIP"}))
        if until in str(message):
            return


async def test_a_sync_handler_can_call_a_service_and_wait() -> None:
    """page.run_task(service).result() from a sync handler: the call runs on
    the session's loop while the thread waits."""
    RESULTS.clear()
    app = make_app(service_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        (target,) = find_controls(patch, _c="Button", content="task")
        await client.click(int(target["_i"]))
        await answer_invokes(client, "done")
    assert list(RESULTS.values()) == ["CLIP"]


async def test_asyncio_run_in_a_sync_handler_fails_as_in_flet_with_a_hint() -> None:
    """A sync handler sees the session's running loop (as on flet's own
    server, where it runs on the loop), so asyncio.run() refuses, as there;
    the crash report says what to use instead."""
    RESULTS.clear()
    app = make_app(service_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        patch = await first_patch(client)
        (target,) = find_controls(patch, _c="Button", content="run")
        await client.click(int(target["_i"]))
        crash = await client.receive_until(lambda m: m[0] == SESSION_CRASHED)
    assert "cannot be called from a running event loop" in crash[1]["message"]
    assert "page.run_task(" in crash[1]["message"]
    assert RESULTS == {}


def run_thread_main(page: ft.Page) -> None:
    status = ft.Text("idle")

    def work() -> None:
        status.value = page.get_upload_url("a.txt", 60)  # needs Quart's websocket context
        status.update()

    page.add(status, ft.Button("go", on_click=lambda e: page.run_thread(work)))


async def test_page_run_thread_keeps_the_callers_context(tmp_path: Any) -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(run_thread_main, upload_dir=tmp_path, secret_key="k"))
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await click_first_button(client)
        await client.receive_until(lambda m: not_crashed(m) or "/upload?" in str(m))


def dialog_main(page: ft.Page) -> None:
    status = ft.Text("open")

    def on_dismiss(e: ft.ControlEvent) -> None:  # flet fires it, from its own wrapper
        THREADS.append(threading.current_thread().name)
        status.value = "dismissed"
        status.update()

    dialog = ft.AlertDialog(title=ft.Text("hi"), on_dismiss=on_dismiss)
    page.add(status, ft.Button("open", on_click=lambda e: page.show_dialog(dialog)))


async def test_a_dialogs_sync_on_dismiss_runs_on_the_pool() -> None:
    THREADS.clear()
    app = make_app(dialog_main)
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await click_first_button(client)
        shown = await client.receive_until(
            lambda m: not_crashed(m) or (m[0] == 2 and bool(find_controls(m[1], _c="AlertDialog")))
        )
        (dialog,) = find_controls(shown[1], _c="AlertDialog")
        await client.click(int(dialog["_i"]), "dismiss")
        await client.receive_until(lambda m: not_crashed(m) or "dismissed" in str(m))
    assert len(THREADS) == 1 and THREADS[0].startswith("quart_flet"), THREADS


async def test_the_loop_never_waits_for_a_service_registry_held_by_a_thread() -> None:
    """A sync handler creating a service (ft.Clipboard()) holds the page's
    service registry while its update waits for the loop; the loop's own
    housekeeping on that registry (after every event) must not wait for it,
    or both freeze. (Seen: a sync main's final update against a click.)"""
    app = make_app(lambda page: page.add(ft.Button("b")))
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        await first_patch(FletTestClient(ws))
        (session,) = [entry.session for entry in app.extensions["quart_flet"].sessions.values()]
        services = session.page._services
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with services._lock:
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert held.wait(10)
            services.unregister_services()  # returns at once instead of blocking
            await session.after_event(session.page)
        finally:
            release.set()
            thread.join(10)
        services.unregister_services()  # and works once the thread is done


@ft.component
def Greeter() -> ft.Control:
    name, set_name = ft.use_state("nobody")
    page = ft.context.page

    def sign_in(e: ft.Event[ft.TextButton]) -> None:  # sync: in a thread
        set_name("ada")  # a re-render for the scheduler...
        page.pop_dialog()  # ...and a page update from the thread

    def sign_out(e: ft.Event[ft.Button]) -> None:
        set_name("nobody")

    def ask(e: ft.Event[ft.Button]) -> None:
        page.show_dialog(
            ft.AlertDialog(
                title=ft.Text("sign in?"), actions=[ft.TextButton("yes", on_click=sign_in)]
            )
        )

    return ft.Column(
        [
            ft.Text(f"hello {name}"),
            ft.Button("ask", on_click=ask),
            ft.Button("sign out", on_click=sign_out),
        ]
    )


async def test_a_re_render_asked_by_a_sync_handler_waits_for_it_to_return() -> None:
    """The scheduler rendered while the handler's thread still ran, its own
    patch deferred meanwhile: the tree's re-rendered buttons then pointed at
    detached controls, and the next click crashed the session ("Control must
    be added to the page first"), as seen with flet's auth_dialog example."""
    app = make_app(lambda page: page.render(Greeter))
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        client = FletTestClient(ws)
        await client.register()

        async def tap(text: str, then: str) -> Any:
            found: list[Any] = []

            def seen(m: Any) -> bool:
                found.extend(find_controls(m, content=text))
                return bool(found)

            if not [c for m in client.messages for c in find_controls(m, content=text)]:
                await client.receive_until(lambda m: not_crashed(m) or seen(m))
            ids = [c["_i"] for m in client.messages for c in find_controls(m, content=text)]
            await client.click(int(ids[-1]))
            return await client.receive_until(lambda m: not_crashed(m) or then in str(m))

        for _ in range(3):
            await tap("ask", "sign in?")
            await tap("yes", "hello ada")
            await tap("sign out", "hello nobody")


async def test_a_page_equals_only_itself_and_stays_hashable() -> None:
    """flet's diff compares the page with itself (``parent != doc``) for each
    of its children; our pages answer by identity instead of comparing
    their fields, and two pages with the same fields are not one page."""
    app = make_app(sync_navigate_main)
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            ws = await stack.enter_async_context(test_app.test_client().websocket("/ws"))
            await first_patch(FletTestClient(ws))
        first, second = [
            entry.session.page for entry in app.extensions["quart_flet"].sessions.values()
        ]
        assert first == first and not first != first
        assert first != second and second != first
        assert len({first, second, first}) == 2
        assert ft.Page.__eq__ is not type(first).__eq__  # flet's class keeps its own
